"""The ``intunedd`` CLI against a scripted fake of the daemon's HTTP API (httpx.MockTransport).

No sockets, no sleeping: the CLI's HTTP client, sleep and clock all come in through ``CliContext``.
"""

from __future__ import annotations

import functools
import io
import json
import re
import sys
import tarfile
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
import httpx
import pytest
from click.testing import CliRunner, Result

from intunedd.cli import CliContext, cli

Handler = Callable[[httpx.Request], httpx.Response]
WS = "ws1"
RUNS = f"/api/v1/workspace/{WS}/projects/quotes"


def reply(status: int = 200, body: Any = None, **kwargs: Any) -> Handler:
    return lambda _request: httpx.Response(status, json=body, **kwargs)


def api_error(status: int, code: str, message: str) -> Handler:
    body = {"code": code, "category": "user", "message": message, "retirable": False, "correlationId": "c1"}
    return reply(status, body)


class FakeDaemon:
    """Routes (method, path) to scripted replies; the last reply of a route repeats."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.routes: dict[tuple[str, str], list[Handler]] = {
            ("GET", "/api/v1/info"): [reply(200, {"workspaceId": WS, "version": "0.1.0"})]
        }

    def on(self, method: str, path: str, *handlers: Handler) -> None:
        self.routes[(method, path)] = list(handlers)

    def handle(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        handlers = self.routes.get((request.method, request.url.path))
        if not handlers:
            return api_error(404, "not-found", f"no route {request.method} {request.url.path}")(request)
        handler = handlers.pop(0) if len(handlers) > 1 else handlers[0]
        return handler(request)

    def paths(self) -> list[str]:
        return [f"{r.method} {r.url.path}" for r in self.requests]


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


CLEAN_ENV = {
    "INTUNEDD_URL": None,
    "INTUNEDD_WORKSPACE": None,
    "INTUNEDD_PROJECT": None,
    "INTUNEDD_CONFIG": None,
    "INTUNEDD_API_KEY": "k1",
}


@pytest.fixture(autouse=True)
def _in_tmp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Project discovery reads ./Intuned.json, so every test starts in an empty directory.
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def daemon() -> FakeDaemon:
    return FakeDaemon()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def invoke(daemon: FakeDaemon, clock: FakeClock) -> Callable[..., Result]:
    def run(*args: str, env: dict[str, str | None] | None = None, input: str | None = None) -> Result:
        state = CliContext(
            client_factory=functools.partial(httpx.Client, transport=httpx.MockTransport(daemon.handle)),
            sleep=clock.sleep,
            monotonic=clock.monotonic,
        )
        return CliRunner().invoke(cli, list(args), obj=state, env={**CLEAN_ENV, **(env or {})}, input=input)

    return run


def _all_command_paths(group: click.Group, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield prefix
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from _all_command_paths(command, (*prefix, name))
        else:
            yield (*prefix, name)


@pytest.mark.parametrize("path", list(_all_command_paths(cli)), ids=" ".join)
def test_every_command_has_help(invoke: Callable[..., Result], path: tuple[str, ...]) -> None:
    result = invoke(*path, "--help")
    assert result.exit_code == 0, result.output
    assert "Usage: " in result.stdout


def test_version(invoke: Callable[..., Result]) -> None:
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.stdout.startswith("intunedd, version ")


# --- workspace, auth, project resolution -----------------------------------------------------


def test_workspace_is_discovered_once_and_key_is_sent(invoke: Callable[..., Result], daemon: FakeDaemon) -> None:
    daemon.on("GET", f"{RUNS}/runs/r1", reply(200, {"id": "r1", "status": "pending", "attempts": []}))
    result = invoke("runs", "get", "r1", "-p", "quotes")
    assert result.exit_code == 0, result.output
    assert daemon.paths() == ["GET /api/v1/info", f"GET {RUNS}/runs/r1"]
    assert all(r.headers["x-api-key"] == "k1" for r in daemon.requests)


@pytest.mark.parametrize(
    ("args", "env"),
    [(["--workspace", "w9"], {}), ([], {"INTUNEDD_WORKSPACE": "w9"})],
    ids=["option", "environment"],
)
def test_given_workspace_skips_discovery(
    invoke: Callable[..., Result], daemon: FakeDaemon, args: list[str], env: dict[str, str]
) -> None:
    daemon.on("GET", "/api/v1/workspace/w9/projects", reply(200, []))
    result = invoke(*args, "projects", "list", env=env)
    assert result.exit_code == 0, result.output
    assert daemon.paths() == ["GET /api/v1/workspace/w9/projects"]
    assert result.stdout == "no projects deployed\n"


def test_url_option_sets_base_url(invoke: Callable[..., Result], daemon: FakeDaemon) -> None:
    daemon.on("GET", "/health", reply(200, {"status": "ok", "version": "0.1.0"}))
    result = invoke("--url", "http://daemon.test:9000/", "health", env={"INTUNEDD_API_KEY": None})
    assert result.exit_code == 0, result.output
    assert str(daemon.requests[0].url) == "http://daemon.test:9000/health"
    assert "x-api-key" not in daemon.requests[0].headers
    assert result.stdout.splitlines() == ["status:  ok", "version: 0.1.0"]


def test_missing_api_key_is_a_usage_error(invoke: Callable[..., Result], daemon: FakeDaemon) -> None:
    result = invoke("projects", "list", env={"INTUNEDD_API_KEY": None})
    assert result.exit_code == 2
    assert "no API key" in result.stderr
    assert daemon.requests == []


def test_project_comes_from_intuned_jsonc_in_cwd(invoke: Callable[..., Result], daemon: FakeDaemon) -> None:
    Path("Intuned.jsonc").write_text('{\n  // the name\n  "projectName": "quotes",\n}\n')
    daemon.on("POST", f"{RUNS}/run/r1/cancel", reply(200, {"runId": "r1", "status": "canceled"}))
    result = invoke("runs", "cancel", "r1")
    assert result.exit_code == 0, result.output
    assert daemon.paths()[-1] == f"POST {RUNS}/run/r1/cancel"
    assert result.stdout.splitlines() == ["runId:  r1", "status: canceled"]


def test_project_precedence_leaf_over_group_over_environment(invoke: Callable[..., Result], daemon: FakeDaemon) -> None:
    Path("Intuned.json").write_text('{"projectName": "from-file"}')
    for name in ("leaf", "group", "env"):
        daemon.on("POST", f"/api/v1/workspace/{WS}/projects/{name}/run/r1/cancel", reply(200, {}))
    env = {"INTUNEDD_PROJECT": "env"}
    assert invoke("-p", "group", "runs", "cancel", "r1", "-p", "leaf", env=env).exit_code == 0
    assert invoke("-p", "group", "runs", "cancel", "r1", env=env).exit_code == 0
    assert invoke("runs", "cancel", "r1", env=env).exit_code == 0
    cancels = [p for p in daemon.paths() if p.endswith("/cancel")]
    assert [p.split("/")[6] for p in cancels] == ["leaf", "group", "env"]


def test_no_project_is_a_usage_error(invoke: Callable[..., Result], daemon: FakeDaemon) -> None:
    result = invoke("runs", "list")
    assert result.exit_code == 2
    assert "no project" in result.stderr
    assert daemon.requests == []


# --- runs start ------------------------------------------------------------------------------

BODY = {"api": "list", "parameters": {"url": "http://127.0.0.1:8431/"}}


@pytest.mark.parametrize("form", ["inline", "at-file", "path", "stdin"])
def test_runs_start_reads_data_in_every_form(invoke: Callable[..., Result], daemon: FakeDaemon, form: str) -> None:
    Path("body.json").write_text(json.dumps(BODY))
    data = {"inline": json.dumps(BODY), "at-file": "@body.json", "path": "body.json", "stdin": "-"}[form]
    daemon.on("POST", f"{RUNS}/run/start", reply(201, {"runId": "r1", "status": "pending"}))
    result = invoke("runs", "start", data, "-p", "quotes", input=json.dumps(BODY))
    assert result.exit_code == 0, result.output
    assert json.loads(daemon.requests[-1].content) == BODY
    assert result.stdout.splitlines() == ["runId:  r1", "status: pending"]


@pytest.mark.parametrize(
    ("data", "message"),
    [("{nope", "not valid JSON"), ("@missing.json", "cannot read"), ("missing.json", "cannot read")],
)
def test_runs_start_bad_data_is_a_usage_error(
    invoke: Callable[..., Result], daemon: FakeDaemon, data: str, message: str
) -> None:
    result = invoke("runs", "start", data, "-p", "quotes")
    assert result.exit_code == 2
    assert message in result.stderr
    assert daemon.requests == []


def test_runs_start_body_must_be_an_object(invoke: Callable[..., Result]) -> None:
    Path("list.json").write_text("[1, 2]")
    result = invoke("runs", "start", "@list.json", "-p", "quotes")
    assert result.exit_code == 2
    assert "must be a JSON object" in result.stderr


def _start_then(daemon: FakeDaemon, *results: dict[str, Any]) -> None:
    daemon.on("POST", f"{RUNS}/run/start", reply(201, {"runId": "r1", "status": "pending"}))
    daemon.on("GET", f"{RUNS}/run/r1/result", *(reply(200, body) for body in results))


def test_wait_polls_with_backoff_until_completed(
    invoke: Callable[..., Result], daemon: FakeDaemon, clock: FakeClock
) -> None:
    _start_then(
        daemon,
        {"runId": "r1", "status": "pending"},
        {"runId": "r1", "status": "started"},
        {"runId": "r1", "status": "started"},
        {"runId": "r1", "status": "completed", "result": {"title": "Quotes", "quotes": ["a", "b"]}},
    )
    result = invoke("runs", "start", json.dumps(BODY), "--wait", "--project", "quotes")
    assert result.exit_code == 0, result.output
    assert daemon.paths().count(f"GET {RUNS}/run/r1/result") == 4
    assert clock.sleeps == pytest.approx([0.1, 0.15, 0.225])
    assert "status: completed" in result.stdout
    assert '"title": "Quotes"' in result.stdout
    assert "started run r1" in result.stderr


def test_wait_backoff_is_capped_at_one_second(
    invoke: Callable[..., Result], daemon: FakeDaemon, clock: FakeClock
) -> None:
    _start_then(daemon, *[{"runId": "r1", "status": "pending"}] * 12, {"runId": "r1", "status": "completed"})
    assert invoke("runs", "start", json.dumps(BODY), "--wait", "-p", "quotes").exit_code == 0
    assert max(clock.sleeps) == 1.0
    assert clock.sleeps == sorted(clock.sleeps)


def test_wait_json_prints_the_final_result(invoke: Callable[..., Result], daemon: FakeDaemon) -> None:
    final = {"runId": "r1", "status": "completed", "result": [1, 2]}
    _start_then(daemon, {"runId": "r1", "status": "pending"}, final)
    result = invoke("runs", "start", json.dumps(BODY), "--wait", "-p", "quotes", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == final
    assert result.stderr == ""


@pytest.mark.parametrize("status", ["failed", "canceled"])
def test_wait_exits_1_when_the_run_does_not_complete(
    invoke: Callable[..., Result], daemon: FakeDaemon, status: str
) -> None:
    error = {"message": "Timeout 30000ms exceeded", "code": "script-execution-exception"}
    _start_then(daemon, {"runId": "r1", "status": status, "message": "nope", "error": error})
    result = invoke("runs", "start", json.dumps(BODY), "--wait", "-p", "quotes")
    assert result.exit_code == 1
    assert f"status:  {status}" in result.stdout
    assert "error:   Timeout 30000ms exceeded (script-execution-exception)" in result.stdout


def test_wait_timeout_gives_up(invoke: Callable[..., Result], daemon: FakeDaemon, clock: FakeClock) -> None:
    _start_then(daemon, {"runId": "r1", "status": "pending"})
    result = invoke("runs", "start", json.dumps(BODY), "--wait", "--timeout", "2", "-p", "quotes")
    assert result.exit_code == 1
    assert result.stderr.endswith("error: run r1 still pending after 2s (timeout)\n")
    assert sum(clock.sleeps) == pytest.approx(2.0)


# --- runs list / get -------------------------------------------------------------------------

RUN_ITEMS: dict[str, Any] = {
    "items": [
        {"id": "r2", "apiName": "details/get", "status": "failed", "runType": "STANDALONE",
         "createdAt": "2026-01-02T00:00:00Z", "startedAt": "2026-01-02T00:00:01Z", "endedAt": None,
         "runDuration": 1500, "attemptsCount": 3, "error": {"message": "boom", "code": "x"}},
        {"id": "r1", "apiName": "list", "status": "completed", "runType": "STANDALONE",
         "createdAt": "2026-01-01T00:00:00Z", "startedAt": "2026-01-01T00:00:01Z",
         "endedAt": "2026-01-01T00:00:02Z", "runDuration": None, "attemptsCount": 1},
    ],
    "total": 7,
}  # fmt: skip


def test_runs_list_sends_paging_and_repeated_filters(invoke: Callable[..., Result], daemon: FakeDaemon) -> None:
    daemon.on("GET", f"{RUNS}/runs", reply(200, RUN_ITEMS))
    filters = ["status=failed", "api_name=x", "started_at>2026-01-01T00:00:00Z"]
    args = [arg for f in filters for arg in ("-f", f)]
    result = invoke("runs", "list", "-p", "quotes", "-l", "10", "-o", "5", *args)
    assert result.exit_code == 0, result.output
    params = daemon.requests[-1].url.params
    assert params["limit"] == "10"
    assert params["offset"] == "5"
    assert params.get_list("filter") == filters


def test_runs_list_defaults(invoke: Callable[..., Result], daemon: FakeDaemon) -> None:
    daemon.on("GET", f"{RUNS}/runs", reply(200, {"items": [], "total": 0}))
    result = invoke("runs", "list", "-p", "quotes")
    assert result.exit_code == 0, result.output
    assert dict(daemon.requests[-1].url.params) == {"limit": "50", "offset": "0"}
    assert result.stdout == "no runs (total 0)\n"


def test_runs_list_table_is_aligned(invoke: Callable[..., Result], daemon: FakeDaemon) -> None:
    daemon.on("GET", f"{RUNS}/runs", reply(200, RUN_ITEMS))
    result = invoke("runs", "list", "-p", "quotes")
    assert result.exit_code == 0, result.output
    header, first, second, footer = result.stdout.splitlines()
    column = header.index("STATUS")
    assert first[column:].startswith("failed")
    assert second[column:].startswith("completed")
    assert "1.50s" in first
    assert "boom (x)" in first
    assert footer == "1-2 of 7"


def test_runs_list_json_is_the_raw_response(invoke: Callable[..., Result], daemon: FakeDaemon) -> None:
    daemon.on("GET", f"{RUNS}/runs", reply(200, RUN_ITEMS))
    result = invoke("--json", "runs", "list", "-p", "quotes")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == RUN_ITEMS


PLAYWRIGHT_ERROR = {
    "message": "Page.goto: net::ERR_CONNECTION_REFUSED at http://127.0.0.1:8432/\nCall log:\n  - navigating",
    "code": "script-execution-exception",
}


def test_multi_line_errors_keep_tables_and_blocks_aligned(invoke: Callable[..., Result], daemon: FakeDaemon) -> None:
    failed = {**RUN_ITEMS["items"][0], "error": PLAYWRIGHT_ERROR}
    daemon.on("GET", f"{RUNS}/runs", reply(200, {"items": [failed], "total": 1}))
    daemon.on("GET", f"{RUNS}/runs/r2", reply(200, {**failed, "attempts": []}))
    table = invoke("runs", "list", "-p", "quotes").stdout.splitlines()
    assert len(table) == 3
    assert table[1].endswith("  Page.goto: net::ERR_CONNECTIO… (script-execution-exception)")
    block = invoke("runs", "get", "r2", "-p", "quotes").stdout.splitlines()
    at = block.index("error:         Page.goto: net::ERR_CONNECTION_REFUSED at http://127.0.0.1:8432/")
    assert block[at + 1 :] == [
        "               Call log:",
        "                 - navigating (script-execution-exception)",
        "attempts: none yet",
    ]


@pytest.mark.parametrize("bad", ["status", "=failed", "status=", "status~x"])
def test_malformed_filter_is_a_usage_error(invoke: Callable[..., Result], bad: str) -> None:
    result = invoke("runs", "list", "-p", "quotes", "-f", bad)
    assert result.exit_code == 2
    assert "<field><op><value>" in result.stderr


RUN_DETAIL: dict[str, Any] = {
    "id": "r1", "apiName": "list", "status": "completed", "runType": "STANDALONE",
    "createdAt": "2026-01-01T00:00:00Z", "startedAt": "2026-01-01T00:00:01Z", "endedAt": "2026-01-01T00:00:09Z",
    "runDuration": 8000, "attemptsCount": 2, "parameters": {"url": "u"}, "result": {"title": "T"},
    "attempts": [
        {"number": 1, "status": "failed", "startedAt": "a", "endedAt": "b", "hasTrace": True, "hasLog": True,
         "error": {"message": "flaky", "code": "automation-error"}},
        {"number": 2, "status": "completed", "startedAt": "c", "endedAt": "d", "hasTrace": False, "hasLog": True},
    ],
}  # fmt: skip


def test_runs_get_shows_attempts_table(invoke: Callable[..., Result], daemon: FakeDaemon) -> None:
    daemon.on("GET", f"{RUNS}/runs/r1", reply(200, RUN_DETAIL))
    result = invoke("runs", "get", "r1", "-p", "quotes")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "runDuration:   8.00s" in lines
    attempts_at = lines.index("attempts:")
    assert lines[attempts_at + 1].split() == ["#", "STATUS", "STARTED", "ENDED", "TRACE", "LOG", "ERROR"]
    assert lines[attempts_at + 2].split()[:6] == ["1", "failed", "a", "b", "yes", "yes"]
    assert lines[attempts_at + 2].endswith("flaky (automation-error)")


def test_attempts_get_defaults_to_latest(invoke: Callable[..., Result], daemon: FakeDaemon) -> None:
    daemon.on("GET", f"{RUNS}/runs/r1", reply(200, RUN_DETAIL))
    result = invoke("attempts", "get", "r1", "-p", "quotes", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["number"] == 2
    result = invoke("attempts", "get", "r1", "1", "-p", "quotes")
    assert "error:     flaky (automation-error)" in result.stdout


# --- errors ----------------------------------------------------------------------------------


def test_api_error_prints_message_and_code(invoke: Callable[..., Result], daemon: FakeDaemon) -> None:
    daemon.on("GET", f"{RUNS}/runs/nope", api_error(404, "not-found", "run nope not found"))
    result = invoke("runs", "get", "nope", "-p", "quotes")
    assert result.exit_code == 1
    assert result.stderr == "error: run nope not found (not-found)\n"
    assert result.stdout == ""


def test_non_json_error_still_reports(invoke: Callable[..., Result], daemon: FakeDaemon) -> None:
    daemon.on("GET", f"/api/v1/workspace/{WS}/projects", reply(502, content=b"bad gateway"))
    result = invoke("projects", "list")
    assert result.exit_code == 1
    assert result.stderr == "error: HTTP 502: bad gateway (http-502)\n"


def test_unreachable_daemon(invoke: Callable[..., Result], daemon: FakeDaemon) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("Connection refused", request=request)

    daemon.on("GET", "/api/v1/info", refuse)
    result = invoke("projects", "list")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: cannot reach intunedd at http://127.0.0.1:8420")
    assert result.stderr.endswith("(connection-error)\n")


# --- attempts log / trace --------------------------------------------------------------------

LOG = b'{"level":"info","msg":"hello"}\n{"level":"info","msg":"bye"}\n'


def test_attempts_log_writes_latest_attempt_to_default_file(invoke: Callable[..., Result], daemon: FakeDaemon) -> None:
    daemon.on("GET", f"{RUNS}/runs/r1", reply(200, RUN_DETAIL))
    log_reply = reply(200, content=LOG, headers={"content-type": "application/x-ndjson"})
    daemon.on("GET", f"{RUNS}/runs/r1/attempts/2/log", log_reply)
    result = invoke("attempts", "log", "r1", "-p", "quotes")
    assert result.exit_code == 0, result.output
    assert Path("log_r1_2.jsonl").read_bytes() == LOG
    assert result.stdout == f"wrote {len(LOG)} bytes to log_r1_2.jsonl\n"
    assert not Path("log_r1_2.jsonl.part").exists()


def test_attempts_log_to_stdout_skips_the_detail_lookup(invoke: Callable[..., Result], daemon: FakeDaemon) -> None:
    daemon.on("GET", f"{RUNS}/runs/r1/attempts/1/log", reply(200, content=LOG))
    result = invoke("attempts", "log", "r1", "1", "-o", "-", "-p", "quotes")
    assert result.exit_code == 0, result.output
    assert result.stdout_bytes == LOG
    assert daemon.paths() == ["GET /api/v1/info", f"GET {RUNS}/runs/r1/attempts/1/log"]


def test_attempts_trace_to_named_file(invoke: Callable[..., Result], daemon: FakeDaemon) -> None:
    daemon.on("GET", f"{RUNS}/runs/r1", reply(200, RUN_DETAIL))
    daemon.on("GET", f"{RUNS}/runs/r1/attempts/2/trace", reply(200, content=b"PK\x03\x04zip"))
    result = invoke("attempts", "trace", "r1", "-o", "t.zip", "-p", "quotes", "--json")
    assert result.exit_code == 0, result.output
    assert Path("t.zip").read_bytes() == b"PK\x03\x04zip"
    assert json.loads(result.stdout) == {"runId": "r1", "attempt": 2, "path": "t.zip", "bytes": 7}


def test_attempts_trace_default_name(invoke: Callable[..., Result], daemon: FakeDaemon) -> None:
    daemon.on("GET", f"{RUNS}/runs/r1/attempts/1/trace", reply(200, content=b"zip"))
    assert invoke("attempts", "trace", "r1", "1", "-p", "quotes").exit_code == 0
    assert Path("trace_r1_1.zip").read_bytes() == b"zip"


def test_missing_artifact_leaves_no_file(invoke: Callable[..., Result], daemon: FakeDaemon) -> None:
    daemon.on("GET", f"{RUNS}/runs/r1/attempts/1/trace", api_error(404, "not-found", "no trace recorded"))
    result = invoke("attempts", "trace", "r1", "1", "-p", "quotes")
    assert result.exit_code == 1
    assert result.stderr == "error: no trace recorded (not-found)\n"
    assert list(Path().iterdir()) == []


def test_run_without_attempts(invoke: Callable[..., Result], daemon: FakeDaemon) -> None:
    daemon.on("GET", f"{RUNS}/runs/r1", reply(200, {**RUN_DETAIL, "attempts": []}))
    result = invoke("attempts", "log", "r1", "-p", "quotes")
    assert result.exit_code == 1
    assert result.stderr == "error: run r1 has no attempts yet (no-attempts)\n"


# --- projects deploy -------------------------------------------------------------------------


def _make_project(root: Path, settings: str | None) -> Path:
    files = {
        "api/x.py": "async def automation(page, params, **kwargs): return 1\n",
        "api/nested/y.py": "async def automation(page, params, **kwargs): return 2\n",
        "api/__pycache__/x.cpython-311.pyc": "junk",
        "api/stale.pyc": "junk",
        ".git/HEAD": "ref: refs/heads/main\n",
        ".venv/bin/python": "",
        "node_modules/a/index.js": "",
        ".parameters/api/x/default.json": "{}",
        "auth-sessions-instances/me/auth-session.json": '{"cookies": [{"name": "sid", "value": "secret"}]}',
    }
    if settings is not None:
        files["Intuned.jsonc"] = settings
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def _members(request: httpx.Request) -> set[str]:
    with tarfile.open(fileobj=io.BytesIO(request.content), mode="r:gz") as tar:
        return {m.name for m in tar.getmembers() if m.isfile()}


DEPLOYED = {"projectName": "shop", "version": 3, "apis": ["nested/y", "x"], "deployedAt": "2026-01-01T00:00:00Z"}


def test_deploy_sends_a_filtered_gzip_tarball(
    invoke: Callable[..., Result], daemon: FakeDaemon, tmp_path: Path
) -> None:
    project = _make_project(tmp_path / "proj", '{"projectName": "shop", /* c */ "apiAccess": {"enabled": true},}')
    daemon.on("POST", f"/api/v1/workspace/{WS}/projects/shop/deploy", reply(201, DEPLOYED))
    result = invoke("projects", "deploy", str(project))
    assert result.exit_code == 0, result.output
    request = daemon.requests[-1]
    assert request.headers["content-type"] == "application/gzip"
    assert _members(request) == {"Intuned.jsonc", "api/x.py", "api/nested/y.py", ".parameters/api/x/default.json"}
    assert result.stdout.splitlines() == [
        "projectName: shop",
        "version:     3",
        "apis:        nested/y, x",
        "deployedAt:  2026-01-01T00:00:00Z",
    ]


@pytest.mark.parametrize(
    ("settings", "args", "expected"),
    [(None, [], "proj"), ('{"projectName": "shop"}', ["--name", "other"], "other")],
    ids=["directory-name", "name-option"],
)
def test_deploy_name(
    invoke: Callable[..., Result],
    daemon: FakeDaemon,
    tmp_path: Path,
    settings: str | None,
    args: list[str],
    expected: str,
) -> None:
    project = _make_project(tmp_path / "proj", settings)
    daemon.on("POST", f"/api/v1/workspace/{WS}/projects/{expected}/deploy", reply(201, DEPLOYED))
    result = invoke("projects", "deploy", str(project), *args)
    assert result.exit_code == 0, result.output


def test_deploy_needs_an_api_directory(invoke: Callable[..., Result], daemon: FakeDaemon) -> None:
    Path("empty").mkdir()
    result = invoke("projects", "deploy", "empty")
    assert result.exit_code == 2
    assert "has no api/ directory" in result.stderr


def test_projects_list_table_and_json(invoke: Callable[..., Result], daemon: FakeDaemon) -> None:
    listing = [
        {"name": "quotes", "version": 2, "apis": ["details/get", "list"], "deployedAt": "2026-01-01T00:00:00Z",
         "apiAccess": True, "maxConcurrentRequests": 2},
    ]  # fmt: skip
    daemon.on("GET", f"/api/v1/workspace/{WS}/projects", reply(200, listing))
    table = invoke("projects", "list").stdout.splitlines()
    assert table[0].split("  ")[0] == "NAME"
    assert table[1].split() == ["quotes", "2", "details/get,", "list", "2026-01-01T00:00:00Z", "yes", "2"]
    assert json.loads(invoke("projects", "list", "--json").stdout) == listing


# --- local commands: keys create, serve ------------------------------------------------------


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "intunedd.toml"
    path.write_text(f'state_dir = "{tmp_path / "state"}"\n[server]\nport = 9999\n')
    return path


def _fake_module(monkeypatch: pytest.MonkeyPatch, name: str, **attrs: Any) -> None:
    # The real modules are imported lazily by the commands; a stand-in in sys.modules keeps these
    # tests about the CLI's own behaviour.
    monkeypatch.setitem(sys.modules, name, types.SimpleNamespace(**attrs))


def test_keys_create(invoke: Callable[..., Result], monkeypatch: pytest.MonkeyPatch, config_file: Path) -> None:
    calls: list[tuple[Any, str]] = []

    def create_api_key(settings: Any, name: str) -> str:
        calls.append((settings, name))
        return "sk-secret"

    _fake_module(monkeypatch, "intunedd.store.keys", create_api_key=create_api_key)
    result = invoke("keys", "create", "--name", "quickstart", "--config", str(config_file), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"key": "sk-secret"}
    settings, name = calls[0]
    assert (settings.server.port, name) == (9999, "quickstart")

    result = invoke("keys", "create", "--config", str(config_file))
    assert result.stdout == "sk-secret\n"
    assert "cannot be shown again" in result.stderr
    assert calls[1][1] == "default"


def test_serve_loads_settings(
    invoke: Callable[..., Result], monkeypatch: pytest.MonkeyPatch, config_file: Path
) -> None:
    served: list[tuple[Any, int | None]] = []
    _fake_module(monkeypatch, "intunedd.daemon", serve=lambda settings, ready_fd: served.append((settings, ready_fd)))
    result = invoke("serve", "--config", str(config_file), "--ready-fd", "7")
    assert result.exit_code == 0, result.output
    settings, ready_fd = served[0]
    assert (settings.server.port, ready_fd) == (9999, 7)
    assert settings.state_dir.endswith("state")


def test_serve_reports_config_errors(invoke: Callable[..., Result], monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_module(monkeypatch, "intunedd.daemon", serve=lambda settings, ready_fd: None)
    result = invoke("serve", "--config", "nope.toml")
    assert result.exit_code == 1
    assert result.stderr == "error: config file nope.toml does not exist (config-error)\n"


# --- jobs ------------------------------------------------------------------------------------

JOBS = f"{RUNS}/jobs"
JOB_BODY: dict[str, Any] = {
    "id": "daily",
    "payload": [{"apiName": "list", "parameters": {"page": 1}}, {"apiName": "list", "parameters": {"page": 2}}],
    "configuration": {"retry": {"maximumAttempts": 3}, "maxConcurrentRequests": 2},
    "schedule": {"intervals": [{"every": "30m"}]},
}
JOB: dict[str, Any] = {
    **JOB_BODY,
    "sink": None, "proxy": None, "auth_session": None, "state": "ACTIVE", "created_at": "2026-01-01T00:00:00Z",
    "next_run_time": "2026-01-01T00:30:00Z", "last_run_time": None, "projectId": "quotes", "source": "API",
}  # fmt: skip


def _listed_job(job_id: str, schedule: Any, items: int = 1, **extra: Any) -> dict[str, Any]:
    return {
        "id": job_id, "workspace_id": WS, "project_id": "quotes", "configuration": {},
        "payload": [{"apiName": "list", "parameters": {}}] * items, "schedule": schedule, "state": "ACTIVE",
        "next_run_time": None, "last_run_time": None, "created_at": "2026-01-01T00:00:00Z", "source": "API",
        **extra,
    }  # fmt: skip


JOB_LIST = [
    _listed_job("every-30m", {"intervals": [{"every": "30m"}]}, items=2, next_run_time="2026-01-01T00:30:00Z"),
    _listed_job("two-calendars", {"calendars": [{"hour": 1}, {"hour": 2}]}, state="PAUSED"),
    _listed_job("manual", None, items=0, source="CODE", last_run_time="2026-01-01T00:00:00Z"),
    _listed_job("mixed", {"intervals": [{"every": 3_600_000}], "calendars": [{"hour": 1}]}),
    _listed_job("many", {"intervals": [{"every": "1h"}, {"every": 90_500}]}),
]


@pytest.mark.parametrize("form", ["inline", "at-file", "path", "stdin"])
def test_jobs_create_posts_the_job(invoke: Callable[..., Result], daemon: FakeDaemon, form: str) -> None:
    Path("job.json").write_text(json.dumps(JOB_BODY))
    data = {"inline": json.dumps(JOB_BODY), "at-file": "@job.json", "path": "job.json", "stdin": "-"}[form]
    daemon.on("POST", JOBS, reply(201, {"id": "daily", "message": "created"}))
    result = invoke("jobs", "create", data, "-p", "quotes", input=json.dumps(JOB_BODY))
    assert result.exit_code == 0, result.output
    assert daemon.paths()[-1] == f"POST {JOBS}"
    assert json.loads(daemon.requests[-1].content) == JOB_BODY
    assert result.stdout.splitlines() == ["id:      daily", "message: created"]


@pytest.mark.parametrize(
    ("body", "message"),
    [({"payload": []}, 'needs an "id"'), ({"id": ""}, 'needs an "id"'), ([1], "the job must be a JSON object")],
)
def test_jobs_create_rejects_bodies_without_an_id(
    invoke: Callable[..., Result], daemon: FakeDaemon, body: Any, message: str
) -> None:
    result = invoke("jobs", "create", json.dumps(body) if isinstance(body, dict) else "-", "-p", "q", input="[1]")
    assert result.exit_code == 2
    assert message in result.stderr
    assert daemon.requests == []


def test_jobs_create_reports_the_daemons_validation_error(invoke: Callable[..., Result], daemon: FakeDaemon) -> None:
    daemon.on("POST", JOBS, api_error(400, "bad-request", "Invalid job: schedule.intervals[0].every: too short"))
    result = invoke("jobs", "create", json.dumps(JOB_BODY), "-p", "quotes")
    assert result.exit_code == 1
    assert result.stderr == "error: Invalid job: schedule.intervals[0].every: too short (bad-request)\n"


def test_jobs_update_puts_the_job_without_its_id(invoke: Callable[..., Result], daemon: FakeDaemon) -> None:
    Path("job.json").write_text(json.dumps(JOB_BODY))
    daemon.on("PUT", f"{JOBS}/daily", reply(200, {"id": "daily", "message": "updated job successfully"}))
    result = invoke("jobs", "update", "daily", "@job.json", "-p", "quotes", "--json")
    assert result.exit_code == 0, result.output
    sent = json.loads(daemon.requests[-1].content)
    assert "id" not in sent
    assert sent == {k: v for k, v in JOB_BODY.items() if k != "id"}
    assert json.loads(result.stdout) == {"id": "daily", "message": "updated job successfully"}


def test_jobs_update_refuses_a_different_id(invoke: Callable[..., Result], daemon: FakeDaemon) -> None:
    result = invoke("jobs", "update", "weekly", json.dumps(JOB_BODY), "-p", "quotes")
    assert result.exit_code == 2
    assert "DATA is job 'daily' but JOB_ID is 'weekly'" in result.stderr
    assert daemon.requests == []


def test_jobs_get_block_and_json(invoke: Callable[..., Result], daemon: FakeDaemon) -> None:
    daemon.on("GET", f"{JOBS}/daily", reply(200, JOB))
    result = invoke("jobs", "get", "daily", "-p", "quotes")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "id:              daily" in lines
    assert "state:           ACTIVE" in lines
    assert "scheduleSummary: every 30m" in lines
    assert "last_run_time:   -" in lines
    assert lines[lines.index("payload:") + 1] == "  ["
    assert json.loads(invoke("jobs", "get", "daily", "-p", "quotes", "--json").stdout) == JOB


def test_jobs_list_table(invoke: Callable[..., Result], daemon: FakeDaemon) -> None:
    daemon.on("GET", JOBS, reply(200, JOB_LIST))
    result = invoke("jobs", "list", "-p", "quotes")
    assert result.exit_code == 0, result.output
    header, *rows, footer = result.stdout.splitlines()
    assert re.split(r"\s{2,}", header) == [
        "ID",
        "STATE",
        "SOURCE",
        "ITEMS",
        "SCHEDULE",
        "NEXT RUN",
        "LAST RUN",
    ]
    schedule_at = header.index("SCHEDULE")
    summaries = [row[schedule_at:].split("  ")[0] for row in rows]
    assert summaries == ["every 30m", "2 calendars", "-", "every 1h + 1 calendar", "2 intervals"]
    assert rows[0].split()[:4] == ["every-30m", "ACTIVE", "API", "2"]
    assert rows[1].split()[:4] == ["two-calendars", "PAUSED", "API", "1"]
    assert rows[2].split()[:4] == ["manual", "ACTIVE", "CODE", "0"]
    assert "2026-01-01T00:30:00Z" in rows[0]
    assert footer == "1-5 of 5"
    assert daemon.paths() == ["GET /api/v1/info", f"GET {JOBS}"]
    assert not daemon.requests[-1].url.params


def test_jobs_list_limit_and_offset_slice_client_side(invoke: Callable[..., Result], daemon: FakeDaemon) -> None:
    daemon.on("GET", JOBS, reply(200, JOB_LIST))
    result = invoke("jobs", "list", "-p", "quotes", "-l", "2", "-o", "1")
    assert result.exit_code == 0, result.output
    _, *rows, footer = result.stdout.splitlines()
    assert [row.split()[0] for row in rows] == ["two-calendars", "manual"]
    assert footer == "2-3 of 5"
    as_json = invoke("jobs", "list", "-p", "quotes", "--limit", "2", "--offset", "3", "--json")
    assert json.loads(as_json.stdout) == JOB_LIST[3:5]
    assert invoke("jobs", "list", "-p", "quotes", "-o", "9").stdout == "no jobs (total 5)\n"


def test_jobs_list_rejects_a_non_list(invoke: Callable[..., Result], daemon: FakeDaemon) -> None:
    daemon.on("GET", JOBS, reply(200, {"jobs": []}))
    result = invoke("jobs", "list", "-p", "quotes")
    assert result.exit_code == 1
    assert result.stderr == "error: the job list is not a JSON array (bad-response)\n"


@pytest.mark.parametrize("flag", ["-y", "--yes"])
def test_jobs_delete_with_yes_does_not_ask(invoke: Callable[..., Result], daemon: FakeDaemon, flag: str) -> None:
    daemon.on("DELETE", f"{JOBS}/daily", reply(204))
    result = invoke("jobs", "delete", "daily", flag, "-p", "quotes")
    assert result.exit_code == 0, result.output
    assert daemon.paths()[-1] == f"DELETE {JOBS}/daily"
    assert result.stdout == "deleted job daily\n"
    assert result.stderr == ""


def test_jobs_delete_asks_first(invoke: Callable[..., Result], daemon: FakeDaemon) -> None:
    daemon.on("DELETE", f"{JOBS}/daily", reply(204))
    result = invoke("jobs", "delete", "daily", "-p", "quotes", "--json", input="y\n")
    assert result.exit_code == 0, result.output
    assert "Delete job 'daily' of project 'quotes'? [y/N]" in result.stderr
    assert json.loads(result.stdout) == {"id": "daily", "message": "deleted"}
    assert daemon.paths()[-1] == f"DELETE {JOBS}/daily"


@pytest.mark.parametrize("answer", ["n\n", "\n", ""])
def test_jobs_delete_declined_aborts(invoke: Callable[..., Result], daemon: FakeDaemon, answer: str) -> None:
    result = invoke("jobs", "delete", "daily", "-p", "quotes", input=answer)
    assert result.exit_code == 1
    assert "Aborted!" in result.stderr
    assert result.stdout == ""
    assert daemon.requests == []


def test_jobs_delete_missing_job(invoke: Callable[..., Result], daemon: FakeDaemon) -> None:
    daemon.on("DELETE", f"{JOBS}/nope", api_error(404, "not-found", "job 'nope' not found in project 'quotes'"))
    result = invoke("jobs", "delete", "nope", "-y", "-p", "quotes")
    assert result.exit_code == 1
    assert result.stderr == "error: job 'nope' not found in project 'quotes' (not-found)\n"


@pytest.mark.parametrize(
    ("action", "answer", "lines"),
    [
        ("trigger", {"jobRunId": "jr1", "message": "JobRun started"}, ["jobRunId: jr1", "message:  JobRun started"]),
        ("pause", {"message": "Paused"}, ["message: Paused"]),
        ("resume", {"message": "Resumed"}, ["message: Resumed"]),
    ],
)
def test_jobs_actions(
    invoke: Callable[..., Result], daemon: FakeDaemon, action: str, answer: dict[str, Any], lines: list[str]
) -> None:
    daemon.on("POST", f"{JOBS}/daily/{action}", reply(200, answer))
    result = invoke("jobs", action, "daily", "-p", "quotes")
    assert result.exit_code == 0, result.output
    assert daemon.paths()[-1] == f"POST {JOBS}/daily/{action}"
    assert daemon.requests[-1].content == b""
    assert result.stdout.splitlines() == lines
    assert json.loads(invoke("jobs", action, "daily", "-p", "quotes", "--json").stdout) == answer


def test_jobs_trigger_on_a_paused_job(invoke: Callable[..., Result], daemon: FakeDaemon) -> None:
    daemon.on("POST", f"{JOBS}/daily/trigger", api_error(409, "conflict", "job 'daily' is paused"))
    result = invoke("jobs", "trigger", "daily", "-p", "quotes")
    assert result.exit_code == 1
    assert result.stderr == "error: job 'daily' is paused (conflict)\n"


# --- jobruns ---------------------------------------------------------------------------------


def _job_run(job_run_id: str, status: str = "COMPLETED", **extra: Any) -> dict[str, Any]:
    return {
        "id": job_run_id, "start_time": "2026-01-01T00:00:00Z", "end_time": "2026-01-01T00:01:00Z",
        "workspace_id": WS, "project_id": "quotes", "job_id": "daily", "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:01:00Z", "type": "MANUAL", "status": status, "payloads": 5,
        "successful_runs": 4, "failed_runs": 1, "error": None, "reason": None,
        "job_configuration_snapshot": {"payload": [], "configuration": {"maxConcurrentRequests": 2}},
        "counts": {"pending": 0, "running": 0, "completed": 4, "failed": 1, "canceled": 0},
        **extra,
    }  # fmt: skip


ALL_JOB_RUNS = [_job_run(f"jr{i:02d}") for i in range(25)]


def _paged(request: httpx.Request) -> httpx.Response:
    size = int(request.url.params["pageSize"])
    number = int(request.url.params["pageNumber"])
    window = ALL_JOB_RUNS[(number - 1) * size : number * size]
    return httpx.Response(200, json={"jobRuns": window, "totalCount": len(ALL_JOB_RUNS)})


def _page_params(daemon: FakeDaemon) -> list[tuple[str, str]]:
    return [
        (r.url.params["pageSize"], r.url.params["pageNumber"]) for r in daemon.requests if r.url.path.endswith("/runs")
    ]


@pytest.mark.parametrize(
    ("args", "pages", "ids"),
    [
        ([], [("50", "1")], range(25)),
        (["-l", "10"], [("10", "1")], range(10)),
        (["-l", "10", "-o", "20"], [("10", "3")], range(20, 25)),
        (["--limit", "5", "--offset", "10"], [("5", "3")], range(10, 15)),
        (["-l", "10", "-o", "15"], [("10", "2"), ("10", "3")], range(15, 25)),
        (["-l", "10", "-o", "3"], [("10", "1"), ("10", "2")], range(3, 13)),
        (["-l", "10", "-o", "23"], [("10", "3")], range(23, 25)),
        (["-l", "4", "-o", "22"], [("4", "6"), ("4", "7")], range(22, 25)),
        (["-l", "600"], [("500", "1")], range(25)),
        (["-l", "10", "-o", "40"], [("10", "5")], range(0)),
    ],
    ids=[
        "defaults", "first-page", "aligned", "aligned-long-flags", "straddling", "straddling-first",
        "short-last-page", "straddling-past-the-end", "capped-page-size", "past-the-end",
    ],
)  # fmt: skip
def test_jobruns_list_converts_limit_and_offset_to_pages(
    invoke: Callable[..., Result], daemon: FakeDaemon, args: list[str], pages: list[tuple[str, str]], ids: range
) -> None:
    daemon.on("GET", f"{JOBS}/daily/runs", _paged)
    result = invoke("jobruns", "list", "daily", "-p", "quotes", "--json", *args)
    assert result.exit_code == 0, result.output
    assert _page_params(daemon) == pages
    data = json.loads(result.stdout)
    assert [jr["id"] for jr in data["jobRuns"]] == [f"jr{i:02d}" for i in ids]
    assert data["totalCount"] == 25


def test_jobruns_list_fetches_pages_beyond_the_largest_page_size(
    invoke: Callable[..., Result], daemon: FakeDaemon
) -> None:
    many = [{"id": f"jr{i}"} for i in range(700)]

    def paged(request: httpx.Request) -> httpx.Response:
        size, number = int(request.url.params["pageSize"]), int(request.url.params["pageNumber"])
        return httpx.Response(200, json={"jobRuns": many[(number - 1) * size : number * size], "totalCount": 700})

    daemon.on("GET", f"{JOBS}/daily/runs", paged)
    result = invoke("jobruns", "list", "daily", "-p", "quotes", "-l", "650", "-o", "10", "--json")
    assert result.exit_code == 0, result.output
    assert _page_params(daemon) == [("500", "1"), ("500", "2")]
    assert [jr["id"] for jr in json.loads(result.stdout)["jobRuns"]] == [f"jr{i}" for i in range(10, 660)]


def test_jobruns_list_table(invoke: Callable[..., Result], daemon: FakeDaemon) -> None:
    running = _job_run(
        "jr-b", "RUNNING", type="SCHEDULED", end_time=None,
        counts={"pending": 3, "running": 2, "completed": 1, "failed": 0, "canceled": 0},
    )  # fmt: skip
    daemon.on("GET", f"{JOBS}/daily/runs", reply(200, {"jobRuns": [running, _job_run("jr-a")], "totalCount": 9}))
    result = invoke("jobruns", "list", "daily", "-p", "quotes")
    assert result.exit_code == 0, result.output
    header, first, second, footer = result.stdout.splitlines()
    assert header.split() == ["ID", "TYPE", "STATUS", "PENDING", "RUNNING", "COMPLETED", "FAILED", "START", "END"]
    assert first.split() == ["jr-b", "SCHEDULED", "RUNNING", "3", "2", "1", "0", "2026-01-01T00:00:00Z", "-"]
    assert second.split()[:7] == ["jr-a", "MANUAL", "COMPLETED", "0", "0", "4", "1"]
    assert first.index("RUNNING") == header.index("STATUS")
    assert footer == "1-2 of 9"


def test_jobruns_list_empty_and_missing_job(invoke: Callable[..., Result], daemon: FakeDaemon) -> None:
    daemon.on("GET", f"{JOBS}/daily/runs", reply(200, {"jobRuns": [], "totalCount": 0}))
    assert invoke("jobruns", "list", "daily", "-p", "quotes").stdout == "no JobRuns (total 0)\n"
    daemon.on("GET", f"{JOBS}/nope/runs", api_error(404, "not-found", "job 'nope' not found in project 'quotes'"))
    result = invoke("jobruns", "list", "nope", "-p", "quotes")
    assert result.exit_code == 1
    assert result.stderr == "error: job 'nope' not found in project 'quotes' (not-found)\n"


RESULTS_URL = f"http://127.0.0.1:8420{JOBS}/daily/runs/jr1/results?expires=99&signature=abc"
JOB_RUN_GET: dict[str, Any] = {
    "jobRun": _job_run("jr1", reason={"type": "job-run-terminated", "message": "terminated by user"}),
    "results": {"signed_url": RESULTS_URL, "format": "jsonl", "signed_url_expiration": "2026-01-01T01:00:00Z"},
}


def test_jobruns_get_with_job(invoke: Callable[..., Result], daemon: FakeDaemon) -> None:
    daemon.on("GET", f"{JOBS}/daily/runs/jr1", reply(200, JOB_RUN_GET))
    result = invoke("jobruns", "get", "jr1", "--job", "daily", "-p", "quotes")
    assert result.exit_code == 0, result.output
    assert daemon.paths() == ["GET /api/v1/info", f"GET {JOBS}/daily/runs/jr1"]
    lines = result.stdout.splitlines()
    assert "status:          COMPLETED" in lines
    assert "reason:          job-run-terminated: terminated by user" in lines
    assert "counts:          pending 0, running 0, completed 4, failed 1, canceled 0" in lines
    assert f"results:         {RESULTS_URL}" in lines
    assert "resultsExpire:   2026-01-01T01:00:00Z" in lines
    assert not any("job_configuration_snapshot" in line for line in lines)
    as_json = invoke("jobruns", "get", "jr1", "--job", "daily", "-p", "quotes", "--json")
    assert json.loads(as_json.stdout) == JOB_RUN_GET


def test_jobruns_get_without_results(invoke: Callable[..., Result], daemon: FakeDaemon) -> None:
    daemon.on("GET", f"{JOBS}/daily/runs/jr1", reply(200, {"jobRun": _job_run("jr1", "RUNNING", end_time=None)}))
    result = invoke("jobruns", "get", "jr1", "--job", "daily", "-p", "quotes")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1].split(None, 1) == ["results:", "none yet"]


def _two_jobs_one_owning(daemon: FakeDaemon, owner_reply: Handler) -> None:
    daemon.on("GET", JOBS, reply(200, [_listed_job("first", None), _listed_job("daily", None), _listed_job("z", None)]))
    daemon.on("GET", f"{JOBS}/first/runs/jr1", api_error(404, "not-found", "JobRun 'jr1' not found for job 'first'"))
    daemon.on("GET", f"{JOBS}/daily/runs/jr1", owner_reply)


def test_jobruns_get_finds_the_job_by_probing(invoke: Callable[..., Result], daemon: FakeDaemon) -> None:
    _two_jobs_one_owning(daemon, reply(200, JOB_RUN_GET))
    result = invoke("jobruns", "get", "jr1", "-p", "quotes", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == JOB_RUN_GET
    assert daemon.paths() == [
        "GET /api/v1/info",
        f"GET {JOBS}",
        f"GET {JOBS}/first/runs/jr1",
        f"GET {JOBS}/daily/runs/jr1",
    ]


def test_jobruns_get_unknown_run(invoke: Callable[..., Result], daemon: FakeDaemon) -> None:
    _two_jobs_one_owning(daemon, api_error(404, "not-found", "nope"))
    result = invoke("jobruns", "get", "jr1", "-p", "quotes")
    assert result.exit_code == 1
    assert result.stderr == "error: JobRun jr1 not found in any job of project quotes (not-found)\n"
    assert len([p for p in daemon.paths() if p.endswith("/runs/jr1")]) == 3


def test_jobruns_get_probe_stops_on_other_errors(invoke: Callable[..., Result], daemon: FakeDaemon) -> None:
    daemon.on("GET", JOBS, reply(200, [_listed_job("first", None), _listed_job("daily", None)]))
    daemon.on("GET", f"{JOBS}/first/runs/jr1", api_error(500, "internal-error", "database is locked"))
    result = invoke("jobruns", "get", "jr1", "-p", "quotes")
    assert result.exit_code == 1
    assert result.stderr == "error: database is locked (internal-error)\n"
    assert f"GET {JOBS}/daily/runs/jr1" not in daemon.paths()


def test_jobruns_get_with_an_unknown_job(invoke: Callable[..., Result], daemon: FakeDaemon) -> None:
    daemon.on("GET", f"{JOBS}/x/runs/jr1", api_error(404, "not-found", "JobRun 'jr1' not found for job 'x'"))
    result = invoke("jobruns", "get", "jr1", "--job", "x", "-p", "quotes")
    assert result.exit_code == 1
    assert result.stderr == "error: JobRun 'jr1' not found for job 'x' (not-found)\n"


def test_jobruns_terminate_with_job(invoke: Callable[..., Result], daemon: FakeDaemon) -> None:
    daemon.on("POST", f"{JOBS}/daily/runs/jr1/terminate", reply(200, {"message": "JobRun terminated"}))
    result = invoke("jobruns", "terminate", "jr1", "--job", "daily", "-p", "quotes")
    assert result.exit_code == 0, result.output
    assert daemon.paths() == ["GET /api/v1/info", f"POST {JOBS}/daily/runs/jr1/terminate"]
    assert result.stdout == "message: JobRun terminated\n"


def test_jobruns_terminate_finds_the_job(invoke: Callable[..., Result], daemon: FakeDaemon) -> None:
    _two_jobs_one_owning(daemon, reply(200, JOB_RUN_GET))
    daemon.on("POST", f"{JOBS}/daily/runs/jr1/terminate", reply(200, {"message": "JobRun terminated"}))
    result = invoke("jobruns", "terminate", "jr1", "-p", "quotes", "--json")
    assert result.exit_code == 0, result.output
    assert daemon.paths()[-1] == f"POST {JOBS}/daily/runs/jr1/terminate"
    assert json.loads(result.stdout) == {"message": "JobRun terminated"}


AGGREGATE = b'{"apiInfo":{"name":"list","runId":"r1"}}\n{"apiInfo":{"name":"list","runId":"r2"}}\n'


def _serve_results(daemon: FakeDaemon) -> None:
    daemon.on("GET", f"{JOBS}/daily/runs/jr1", reply(200, JOB_RUN_GET))
    results = reply(200, content=AGGREGATE, headers={"content-type": "application/x-ndjson"})
    daemon.on("GET", f"{JOBS}/daily/runs/jr1/results", results)


def test_jobruns_results_downloads_the_signed_url(invoke: Callable[..., Result], daemon: FakeDaemon) -> None:
    _serve_results(daemon)
    result = invoke("jobruns", "results", "jr1", "--job", "daily", "-p", "quotes")
    assert result.exit_code == 0, result.output
    assert Path("jobrun_jr1.jsonl").read_bytes() == AGGREGATE
    assert not Path("jobrun_jr1.jsonl.part").exists()
    assert result.stdout == f"wrote {len(AGGREGATE)} bytes to jobrun_jr1.jsonl\n"
    download = daemon.requests[-1]
    assert str(download.url) == RESULTS_URL
    assert "x-api-key" not in download.headers  # the signature authorizes it; the key stays home
    assert daemon.requests[-2].headers["x-api-key"] == "k1"


def test_jobruns_results_to_stdout_and_file(invoke: Callable[..., Result], daemon: FakeDaemon) -> None:
    _serve_results(daemon)
    to_stdout = invoke("jobruns", "results", "jr1", "--job", "daily", "-p", "quotes", "-o", "-")
    assert to_stdout.exit_code == 0, to_stdout.output
    assert to_stdout.stdout_bytes == AGGREGATE
    to_file = invoke("jobruns", "results", "jr1", "--job", "daily", "-p", "quotes", "--output", "out.jsonl", "--json")
    assert Path("out.jsonl").read_bytes() == AGGREGATE
    expected = {"jobRunId": "jr1", "jobId": "daily", "path": "out.jsonl", "bytes": len(AGGREGATE)}
    assert json.loads(to_file.stdout) == expected


def test_jobruns_results_finds_the_job(invoke: Callable[..., Result], daemon: FakeDaemon) -> None:
    _serve_results(daemon)
    _two_jobs_one_owning(daemon, reply(200, JOB_RUN_GET))
    result = invoke("jobruns", "results", "jr1", "-p", "quotes", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["jobId"] == "daily"
    assert Path("jobrun_jr1.jsonl").read_bytes() == AGGREGATE


def test_jobruns_results_before_the_run_ends(invoke: Callable[..., Result], daemon: FakeDaemon) -> None:
    daemon.on("GET", f"{JOBS}/daily/runs/jr1", reply(200, {"jobRun": _job_run("jr1", "RUNNING", end_time=None)}))
    result = invoke("jobruns", "results", "jr1", "--job", "daily", "-p", "quotes")
    assert result.exit_code == 1
    assert result.stderr == "error: JobRun jr1 has no results yet: it is RUNNING (no-results)\n"
    assert list(Path().iterdir()) == []


def test_jobruns_results_expired_link(invoke: Callable[..., Result], daemon: FakeDaemon) -> None:
    daemon.on("GET", f"{JOBS}/daily/runs/jr1", reply(200, JOB_RUN_GET))
    expired = api_error(403, "forbidden", "The signed URL is invalid or has expired")
    daemon.on("GET", f"{JOBS}/daily/runs/jr1/results", expired)
    result = invoke("jobruns", "results", "jr1", "--job", "daily", "-p", "quotes")
    assert result.exit_code == 1
    assert result.stderr == "error: The signed URL is invalid or has expired (forbidden)\n"
    assert list(Path().iterdir()) == []


# --- sinks deliveries ------------------------------------------------------------------------

DELIVERIES = f"/api/v1/workspace/{WS}/deliveries"
LONG_ERROR = "ConnectError: [Errno 111] Connection refused\nwhile POSTing to http://hooks.test/in"


def _delivery(delivery_id: str, status: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": delivery_id, "runId": "run1", "projectName": "quotes", "kind": "webhook",
        "sink": {"type": "webhook", "url": "http://hooks.test/in", "headers": {"Authorization": "****"}},
        "status": status, "attempts": 0, "createdAt": "2026-01-01T00:00:00Z", "updatedAt": "2026-01-01T00:00:00Z",
        "nextAttemptAt": None, "firstAttemptAt": None, "deliveredAt": None, "lastStatus": None, "lastError": None,
        **extra,
    }  # fmt: skip


DELIVERY_ITEMS: dict[str, Any] = {
    "items": [
        _delivery("d1", "pending", attempts=2, lastStatus=503, nextAttemptAt="2026-01-01T00:00:09Z",
                  lastError="HTTP 503"),
        _delivery("d2", "delivered", runId="run2", kind="s3", attempts=1, lastStatus=200,
                  deliveredAt="2026-01-01T00:00:05Z", sink={"type": "s3", "bucket": "b"}),
        _delivery("d3", "failed", attempts=7, lastError=LONG_ERROR),
    ],
    "total": 12,
}  # fmt: skip


def test_deliveries_list_defaults_and_table(invoke: Callable[..., Result], daemon: FakeDaemon) -> None:
    daemon.on("GET", DELIVERIES, reply(200, DELIVERY_ITEMS))
    result = invoke("sinks", "deliveries", "list")
    assert result.exit_code == 0, result.output
    assert daemon.paths() == ["GET /api/v1/info", f"GET {DELIVERIES}"]
    assert dict(daemon.requests[-1].url.params) == {"limit": "50", "offset": "0"}
    header, pending, delivered, failed, footer = result.stdout.splitlines()
    assert [c.strip() for c in header.split("  ") if c.strip()] == [
        "ID", "RUN", "KIND", "STATUS", "ATTEMPTS", "LAST STATUS", "NEXT / DELIVERED", "LAST ERROR",
    ]  # fmt: skip
    assert pending.split() == ["d1", "run1", "webhook", "pending", "2", "503", "2026-01-01T00:00:09Z", "HTTP", "503"]
    assert delivered.split() == ["d2", "run2", "s3", "delivered", "1", "200", "2026-01-01T00:00:05Z", "-"]
    assert failed.split()[:7] == ["d3", "run1", "webhook", "failed", "7", "-", "-"]
    column = header.index("LAST ERROR")
    shown = failed[column:]
    assert len(shown) == 40
    assert shown == "ConnectError: [Errno 111] Connection re…"
    assert pending.index("2026-01-01T00:00:09Z") == header.index("NEXT / DELIVERED")
    assert footer == "1-3 of 12"


def test_deliveries_list_sends_filters_and_paging(invoke: Callable[..., Result], daemon: FakeDaemon) -> None:
    daemon.on("GET", DELIVERIES, reply(200, {"items": [], "total": 4}))
    result = invoke("sinks", "deliveries", "list", "--status", "failed", "--run", "run1", "-l", "2", "-o", "4")
    assert result.exit_code == 0, result.output
    assert daemon.requests[-1].url.path == DELIVERIES
    assert dict(daemon.requests[-1].url.params) == {"status": "failed", "run": "run1", "limit": "2", "offset": "4"}
    assert result.stdout == "no deliveries (total 4)\n"


def test_deliveries_list_footer_counts_from_the_offset(invoke: Callable[..., Result], daemon: FakeDaemon) -> None:
    daemon.on("GET", DELIVERIES, reply(200, {"items": DELIVERY_ITEMS["items"][:1], "total": 12}))
    result = invoke("sinks", "deliveries", "list", "--limit", "1", "--offset", "10")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "11-11 of 12"


def test_deliveries_list_json_is_the_raw_response(invoke: Callable[..., Result], daemon: FakeDaemon) -> None:
    daemon.on("GET", DELIVERIES, reply(200, DELIVERY_ITEMS))
    for args in (["--json", "sinks", "deliveries", "list"], ["sinks", "deliveries", "list", "--json"]):
        result = invoke(*args)
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout) == DELIVERY_ITEMS


def test_deliveries_list_rejects_an_unknown_status(invoke: Callable[..., Result], daemon: FakeDaemon) -> None:
    result = invoke("sinks", "deliveries", "list", "--status", "lost")
    assert result.exit_code == 2
    assert "'lost' is not one of 'pending', 'delivered', 'failed'" in result.stderr
    assert daemon.requests == []


def test_deliveries_list_reports_the_daemons_error(invoke: Callable[..., Result], daemon: FakeDaemon) -> None:
    daemon.on("GET", DELIVERIES, api_error(400, "bad-request", "limit must be at most 500"))
    result = invoke("sinks", "deliveries", "list", "-l", "501")
    assert result.exit_code == 1
    assert result.stderr == "error: limit must be at most 500 (bad-request)\n"


def test_deliveries_get_block_and_json(invoke: Callable[..., Result], daemon: FakeDaemon) -> None:
    delivery = DELIVERY_ITEMS["items"][2]
    daemon.on("GET", f"{DELIVERIES}/d3", reply(200, delivery))
    result = invoke("sinks", "deliveries", "get", "d3")
    assert result.exit_code == 0, result.output
    assert daemon.paths()[-1] == f"GET {DELIVERIES}/d3"
    lines = result.stdout.splitlines()
    assert "id:             d3" in lines
    assert "status:         failed" in lines
    assert "nextAttemptAt:  -" in lines
    at = lines.index("sink:")
    assert lines[at + 1 : at + 7] == [
        "  {",
        '    "type": "webhook",',
        '    "url": "http://hooks.test/in",',
        '    "headers": {',
        '      "Authorization": "****"',
        "    }",
    ]
    error_at = lines.index("lastError:      ConnectError: [Errno 111] Connection refused")
    assert lines[error_at + 1] == "                while POSTing to http://hooks.test/in"
    result = invoke("sinks", "deliveries", "get", "d3", "--json")
    assert json.loads(result.stdout) == delivery


def test_deliveries_get_unknown(invoke: Callable[..., Result], daemon: FakeDaemon) -> None:
    daemon.on("GET", f"{DELIVERIES}/nope", api_error(404, "not-found", "delivery 'nope' not found"))
    result = invoke("sinks", "deliveries", "get", "nope")
    assert result.exit_code == 1
    assert result.stderr == "error: delivery 'nope' not found (not-found)\n"
    assert result.stdout == ""


def test_deliveries_retry_posts_and_shows_the_pending_delivery(
    invoke: Callable[..., Result], daemon: FakeDaemon
) -> None:
    retried = _delivery("d3", "pending", attempts=7, nextAttemptAt="2026-01-02T00:00:00Z", lastError="HTTP 503")
    daemon.on("POST", f"{DELIVERIES}/d3/retry", reply(200, retried))
    result = invoke("sinks", "deliveries", "retry", "d3")
    assert result.exit_code == 0, result.output
    assert daemon.paths() == ["GET /api/v1/info", f"POST {DELIVERIES}/d3/retry"]
    assert daemon.requests[-1].headers["x-api-key"] == "k1"
    lines = result.stdout.splitlines()
    assert "status:         pending" in lines
    assert "nextAttemptAt:  2026-01-02T00:00:00Z" in lines
    result = invoke("--workspace", WS, "sinks", "deliveries", "retry", "d3", "--json")
    assert json.loads(result.stdout) == retried
    assert daemon.paths()[-1] == f"POST {DELIVERIES}/d3/retry"


@pytest.mark.parametrize(
    ("status", "code", "message"),
    [(409, "conflict", "delivery 'd2' was already delivered"), (404, "not-found", "delivery 'd2' not found")],
)
def test_deliveries_retry_errors(
    invoke: Callable[..., Result], daemon: FakeDaemon, status: int, code: str, message: str
) -> None:
    daemon.on("POST", f"{DELIVERIES}/d2/retry", api_error(status, code, message))
    result = invoke("sinks", "deliveries", "retry", "d2")
    assert result.exit_code == 1
    assert result.stderr == f"error: {message} ({code})\n"
    assert result.stdout == ""


def test_deliveries_ids_are_quoted_into_the_path(invoke: Callable[..., Result], daemon: FakeDaemon) -> None:
    result = invoke("sinks", "deliveries", "get", "a/b")
    assert result.exit_code == 1
    assert daemon.requests[-1].url.raw_path.decode() == f"{DELIVERIES}/a%2Fb"


# --- helpers ---------------------------------------------------------------------------------
