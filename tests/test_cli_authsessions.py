"""``intunedd authsessions list|get|create|update|validate|delete|import`` against the scripted
daemon of test_cli (httpx.MockTransport), with its fake clock: no sockets, no sleeping."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result

from intunedd.cli import CliContext, cli

from .test_cli import CLEAN_ENV, WS, FakeClock, FakeDaemon, api_error, reply

SESSIONS = f"/api/v1/workspace/{WS}/projects/quotes/auth-sessions"
SESSION = {
    "id": "login",
    "type": "CREDENTIALS",
    "status": "READY",
    "source": "API",
    "proxy": "http://bob:****@p.test:8080",
    "hasState": True,
    "createdAt": "2026-12-01T10:00:00.000Z",
    "updatedAt": "2026-12-01T10:05:00.000Z",
    "lastCheckedAt": None,
}
OP = "op-1"


@pytest.fixture(autouse=True)
def _in_tmp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def daemon() -> FakeDaemon:
    return FakeDaemon()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def invoke(daemon: FakeDaemon, clock: FakeClock) -> Callable[..., Result]:
    def run(*args: str, input: str | None = None) -> Result:
        state = CliContext(
            client_factory=functools.partial(httpx.Client, transport=httpx.MockTransport(daemon.handle)),
            sleep=clock.sleep,
            monotonic=clock.monotonic,
        )
        return CliRunner().invoke(cli, [*args, "-p", "quotes"], obj=state, env=CLEAN_ENV, input=input)

    return run


def _sent(daemon: FakeDaemon, method: str = "POST") -> object:
    [body] = [json.loads(r.content) for r in daemon.requests if r.method == method]
    return body


def test_list_prints_a_table_and_json(invoke: Callable[..., Result], daemon: FakeDaemon) -> None:
    daemon.on("GET", SESSIONS, reply(200, [SESSION]))
    table = invoke("authsessions", "list")
    assert table.exit_code == 0, table.output
    header, row = table.stdout.splitlines()
    assert header.split() == ["ID", "TYPE", "STATUS", "SOURCE", "PROXY", "UPDATED"]
    assert row.split() == ["login", "CREDENTIALS", "READY", "API", SESSION["proxy"], SESSION["updatedAt"]]
    as_json = invoke("authsessions", "list", "--json")
    assert json.loads(as_json.stdout) == [SESSION]


def test_list_says_when_there_are_none(invoke: Callable[..., Result], daemon: FakeDaemon) -> None:
    daemon.on("GET", SESSIONS, reply(200, []))
    assert invoke("authsessions", "list").stdout == "no AuthSessions\n"


def test_get_prints_a_block(invoke: Callable[..., Result], daemon: FakeDaemon) -> None:
    daemon.on("GET", f"{SESSIONS}/login", reply(200, SESSION))
    result = invoke("authsessions", "get", "login")
    assert result.exit_code == 0, result.output
    assert "status:        READY" in result.stdout.splitlines()


def test_create_sends_the_input_file_and_proxy(
    invoke: Callable[..., Result], daemon: FakeDaemon, tmp_path: Path
) -> None:
    (tmp_path / "params.json").write_text('{"username": "ann"}')
    daemon.on("POST", f"{SESSIONS}/create", reply(201, {"status": "started", "operationId": OP}))
    result = invoke("authsessions", "create", "login", "--input", "@params.json", "--proxy", "http://p.test:1")
    assert result.exit_code == 0, result.output
    assert _sent(daemon) == {"parameters": {"username": "ann"}, "id": "login", "proxy": "http://p.test:1"}
    assert result.stdout.splitlines() == ["status:      started", f"operationId: {OP}"]


def test_create_without_an_id_lets_the_daemon_pick_one(invoke: Callable[..., Result], daemon: FakeDaemon) -> None:
    daemon.on("POST", f"{SESSIONS}/create", reply(201, {"status": "started", "operationId": OP}))
    assert invoke("authsessions", "create", "--input", "{}").exit_code == 0
    assert _sent(daemon) == {"parameters": {}}


def test_create_wait_polls_until_done(invoke: Callable[..., Result], daemon: FakeDaemon, clock: FakeClock) -> None:
    daemon.on("POST", f"{SESSIONS}/create", reply(201, {"status": "started", "operationId": OP}))
    daemon.on(
        "GET",
        f"{SESSIONS}/create/{OP}/result",
        reply(200, {"status": "pending"}),
        reply(200, {"status": "in_progress", "runId": "r1"}),
        reply(200, {"status": "done", "authSessionId": "login"}),
    )
    result = invoke("authsessions", "create", "login", "--input", "{}", "--wait", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"status": "done", "authSessionId": "login"}
    assert clock.sleeps == [0.1, 0.15000000000000002]


def test_update_wait_exits_1_when_the_operation_fails(invoke: Callable[..., Result], daemon: FakeDaemon) -> None:
    failed = {"status": "failed", "message": "no", "error": {"code": "create-attempts-failed", "message": "no"}}
    daemon.on("POST", f"{SESSIONS}/login/update", reply(201, {"status": "started", "operationId": OP}))
    daemon.on("GET", f"{SESSIONS}/login/update/{OP}/result", reply(200, failed))
    result = invoke("authsessions", "update", "login", "--input", '{"u": 1}', "--wait")
    assert result.exit_code == 1
    assert "error:   no (create-attempts-failed)" in result.stdout.splitlines()
    assert _sent(daemon) == {"parameters": {"u": 1}}


def test_validate_wait_gives_up_after_the_timeout(
    invoke: Callable[..., Result], daemon: FakeDaemon, clock: FakeClock
) -> None:
    daemon.on("POST", f"{SESSIONS}/login/validate/start", reply(201, {"status": "pending", "operationId": OP}))
    daemon.on("GET", f"{SESSIONS}/login/validate/{OP}/result", reply(200, {"status": "pending"}))
    result = invoke("authsessions", "validate", "login", "--no-auto-recreate", "--wait", "--timeout", "2")
    assert result.exit_code != 0
    assert f"operation {OP} still pending after 2s" in result.output
    assert _sent(daemon) == {"autoRecreate": False}
    assert sum(clock.sleeps) == pytest.approx(2)


def test_delete_asks_unless_yes(invoke: Callable[..., Result], daemon: FakeDaemon) -> None:
    daemon.on("DELETE", f"{SESSIONS}/login", reply(204))
    refused = invoke("authsessions", "delete", "login", input="n\n")
    assert refused.exit_code != 0 and daemon.requests == []
    done = invoke("authsessions", "delete", "login", "-y")
    assert (done.exit_code, done.stdout) == (0, "deleted AuthSession login\n")


def test_import_puts_the_state_file(invoke: Callable[..., Result], daemon: FakeDaemon, tmp_path: Path) -> None:
    storage = {"cookies": [{"name": "sid", "value": "v", "domain": "x.test"}], "origins": []}
    (tmp_path / "state.json").write_text(json.dumps(storage))
    recorded = {**SESSION, "type": "RECORDER"}
    daemon.on("PUT", f"{SESSIONS}/login/state", reply(200, recorded))
    result = invoke("authsessions", "import", "login", "state.json", "--json")
    assert result.exit_code == 0, result.output
    assert (_sent(daemon, "PUT"), json.loads(result.stdout)) == (storage, recorded)


def test_a_daemon_error_is_shown(invoke: Callable[..., Result], daemon: FakeDaemon) -> None:
    daemon.on("GET", f"{SESSIONS}/nope", api_error(404, "not-found", "auth session 'nope' not found"))
    result = invoke("authsessions", "get", "nope")
    assert result.exit_code != 0
    assert "auth session 'nope' not found" in result.output
