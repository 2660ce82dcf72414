"""The ``intunedd`` CLI against a scripted fake of the daemon's HTTP API (httpx.MockTransport).

No sockets, no sleeping: the CLI's HTTP client, sleep and clock all come in through ``CliContext``.
"""

from __future__ import annotations

import functools
import io
import json
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
    served: list[Any] = []
    _fake_module(monkeypatch, "intunedd.daemon", serve=served.append)
    result = invoke("serve", "--config", str(config_file))
    assert result.exit_code == 0, result.output
    assert served[0].server.port == 9999
    assert served[0].state_dir.endswith("state")


def test_serve_reports_config_errors(invoke: Callable[..., Result], monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_module(monkeypatch, "intunedd.daemon", serve=lambda settings: None)
    result = invoke("serve", "--config", "nope.toml")
    assert result.exit_code == 1
    assert result.stderr == "error: config file nope.toml does not exist (config-error)\n"


# --- helpers ---------------------------------------------------------------------------------
