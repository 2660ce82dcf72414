"""Hostile input at the HTTP layer gets a 4xx, never a 500; keys can be listed and revoked;
artifacts stream; websocket subscribers and connections are bounded."""

from __future__ import annotations

import json
import socket
import sqlite3
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import trio
from trio_websocket import open_websocket_url
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, RejectConnection, RejectData, Request, TextMessage

from .conftest import Daemon, DaemonFactory, api_error

pytestmark = pytest.mark.e2e

APIS = {
    "api/echo.py": "async def automation(page, params, **kwargs):\n    return params\n",
    "api/huge_error.py": (
        "async def automation(page, params, **kwargs):\n    raise ValueError('e' * params['size'])\n"
    ),
}
HUGE = "9" * 30
DEEP = b'{"api": "echo", "parameters": {"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}"


@pytest.fixture(scope="module")
def project(daemon: Daemon) -> str:
    daemon.deploy("hardening", APIS)
    return "hardening"



def _finished_run(daemon: Daemon, project: str) -> tuple[str, dict[str, Any]]:
    run_id = daemon.start_run(project, {"api": "echo", "parameters": {"x": 1}, "retry": {"maximumAttempts": 1}})
    daemon.wait_for(project, run_id)
    return run_id, daemon.detail(project, run_id)


def test_non_ascii_signature_is_refused(daemon: Daemon, project: str) -> None:
    run_id, _ = _finished_run(daemon, project)
    path = daemon.path(project, f"/runs/{run_id}/attempts/1/log")
    response = httpx.get(f"{daemon.url}{path}", params={"expires": "9999999999", "signature": "é" * 64})
    assert api_error(response, 403)["details"]["field"] == "signature"


@pytest.mark.parametrize(
    "text",
    [
        f"run_duration>{HUGE}",
        f"run_duration<-{HUGE}",
        "created_at>0001-01-01T00:00:00+01:00",
        "ended_at<9999-12-31T23:59:59-01:00",
        "started_at>0001-01-01T00:00:00.000+23:59",
    ],
)
def test_filters_out_of_range_are_refused(daemon: Daemon, project: str, text: str) -> None:
    with daemon.client() as c:
        response = c.get(daemon.path(project, "/runs"), params={"filter": text})
    assert api_error(response, 400)["details"]["field"] == "filter"


def test_filters_at_the_calendar_ends_sort_as_dates(daemon: Daemon, project: str) -> None:
    run_id, _ = _finished_run(daemon, project)
    with daemon.client() as c:
        after_year_999 = c.get(daemon.path(project, "/runs"), params={"filter": "created_at>0999-01-01"})
        before_year_999 = c.get(daemon.path(project, "/runs"), params={"filter": "created_at<0999-01-01"})
    assert run_id in [r["id"] for r in after_year_999.json()["items"]]
    assert before_year_999.json()["total"] == 0


@pytest.mark.parametrize("name", ["offset", "limit"])
def test_run_list_integers_beyond_64_bits(daemon: Daemon, project: str, name: str) -> None:
    with daemon.client() as c:
        response = c.get(daemon.path(project, "/runs"), params={name: HUGE})
    assert api_error(response, 400)["details"]["field"] == name


def test_job_run_page_number_beyond_64_bits(daemon: Daemon, project: str) -> None:
    job = {"id": "hardening-job", "payload": [{"apiName": "echo", "parameters": {}}], "configuration": {}}
    with daemon.client() as c:
        assert c.post(daemon.path(project, "/jobs"), json=job).status_code == 201
        response = c.get(daemon.path(project, "/jobs/hardening-job/runs"), params={"pageNumber": HUGE})
    assert api_error(response, 400)["details"]["field"] == "pageNumber"


def test_delivery_offset_beyond_64_bits(daemon: Daemon) -> None:
    with daemon.client() as c:
        response = c.get(f"/api/v1/workspace/{daemon.workspace}/deliveries", params={"offset": HUGE})
    assert api_error(response, 400)["details"]["field"] == "offset"


@pytest.mark.parametrize("path", ["/run/start", "/run", "/jobs"])
def test_deeply_nested_json_is_refused(daemon: Daemon, project: str, path: str) -> None:
    with daemon.client() as c:
        response = c.post(daemon.path(project, path), content=DEEP)
    body = api_error(response, 400)
    assert body["details"]["field"] == "body"
    assert "64" in body["message"]


def test_nesting_at_the_limit_is_accepted(daemon: Daemon, project: str) -> None:
    nested: Any = "leaf"
    for _ in range(62):  # the body object and "parameters" are two more levels: 64 in all
        nested = [nested]
    run_id = daemon.start_run(project, {"api": "echo", "parameters": {"a": nested}})
    assert daemon.wait_for(project, run_id)["result"] == {"a": nested}


def test_signed_urls_use_the_configured_base_not_the_host_header(daemon: Daemon, project: str) -> None:
    run_id, _ = _finished_run(daemon, project)
    with daemon.client() as c:
        detail = c.get(daemon.path(project, f"/runs/{run_id}"), headers={"host": "evil.example"}).json()
    url = urlsplit(detail["attempts"][0]["logUrl"])
    assert f"{url.scheme}://{url.netloc}" == daemon.url
    assert httpx.get(detail["attempts"][0]["logUrl"]).status_code == 200


def test_public_base_url_setting(daemon_factory: DaemonFactory) -> None:
    daemon = daemon_factory(server__public_base_url="https://intunedd.example.com/")
    daemon.deploy("public", APIS)
    run_id, detail = _finished_run(daemon, "public")
    log_url = detail["attempts"][0]["logUrl"]
    assert log_url.startswith(f"https://intunedd.example.com/api/v1/workspace/{daemon.workspace}/projects/public")
    local = daemon.url + log_url.removeprefix("https://intunedd.example.com")
    assert httpx.get(local).status_code == 200


def _vm_hwm_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_artifact_downloads_stream(daemon: Daemon, project: str) -> None:
    run_id, _ = _finished_run(daemon, project)
    log_dir = daemon.state_dir / "artifacts"
    logs = [p for p in log_dir.rglob("*") if p.is_file() and run_id in str(p) and p.suffix == ".jsonl"]
    assert logs, list(log_dir.rglob("*"))
    size = 400 * 1024 * 1024
    with open(logs[0], "r+b") as f:  # sparse: no disk used, but a whole-file read needs 400 MB
        f.truncate(size)
    assert daemon.process is not None
    before = _vm_hwm_kib(daemon.process.pid)
    received = 0
    with daemon.client() as c, c.stream("GET", daemon.path(project, f"/runs/{run_id}/attempts/1/log")) as response:
        assert response.status_code == 200
        for chunk in response.iter_bytes():
            received += len(chunk)
    assert received == size
    grown_mib = (_vm_hwm_kib(daemon.process.pid) - before) / 1024
    assert grown_mib < 100, f"the daemon's peak RSS grew by {grown_mib:.0f} MiB serving a 400 MiB file"


# -- API keys ---------------------------------------------------------------------------------


def _keys(daemon: Daemon, key: str) -> httpx.Response:
    return httpx.get(f"{daemon.url}/api/v1/workspace/{daemon.workspace}/keys", headers={"x-api-key": key})


def _wait_refused(daemon: Daemon, key: str, timeout: float = 5) -> float:
    """Seconds until ``key`` gets a 401."""
    start = time.monotonic()
    while _keys(daemon, key).status_code != 401:
        assert time.monotonic() - start < timeout, "the revoked key still works"
        time.sleep(0.05)
    return time.monotonic() - start


def test_keys_list_and_revoke_over_http(daemon: Daemon) -> None:
    created = daemon.cli("--json", "keys", "create", "--name", "to-revoke", "--config", str(daemon.config_path))
    assert created.returncode == 0, created.stderr
    key = json.loads(created.stdout)["key"]
    assert _keys(daemon, key).status_code == 200  # now cached as valid
    listed = _keys(daemon, daemon.key).json()["items"]
    mine = next(k for k in listed if k["name"] == "to-revoke")
    assert mine["prefix"] == key[:8]
    assert mine["revokedAt"] is None and mine["createdAt"]
    assert set(mine) == {"id", "name", "prefix", "createdAt", "revokedAt"}
    assert key not in json.dumps(listed)
    revoked = httpx.post(
        f"{daemon.url}/api/v1/workspace/{daemon.workspace}/keys/{mine['id']}/revoke", headers={"x-api-key": daemon.key}
    )
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["revokedAt"]
    assert _wait_refused(daemon, key) < 1.5
    again = next(k for k in _keys(daemon, daemon.key).json()["items"] if k["id"] == mine["id"])
    assert again["revokedAt"] == revoked.json()["revokedAt"]


def test_revoke_unknown_key_is_404(daemon: Daemon) -> None:
    response = httpx.post(
        f"{daemon.url}/api/v1/workspace/{daemon.workspace}/keys/nope/revoke", headers={"x-api-key": daemon.key}
    )
    assert api_error(response, 404)["details"]["field"] == "keyId"


def test_keys_revoked_from_the_cli_stop_working_within_a_second(daemon: Daemon) -> None:
    created = daemon.cli("--json", "keys", "create", "--name", "cli-revoke", "--config", str(daemon.config_path))
    key = json.loads(created.stdout)["key"]
    assert _keys(daemon, key).status_code == 200
    listed = daemon.cli("--json", "keys", "list", "--config", str(daemon.config_path))
    assert listed.returncode == 0, listed.stderr
    assert key[:8] in [k["prefix"] for k in json.loads(listed.stdout)]
    assert key not in listed.stdout
    revoked = daemon.cli("keys", "revoke", key[:8], "--config", str(daemon.config_path))
    assert revoked.returncode == 0, revoked.stderr
    assert _wait_refused(daemon, key) < 1.5
    human = daemon.cli("keys", "list", "--config", str(daemon.config_path))
    row = next(line for line in human.stdout.splitlines() if "cli-revoke" in line)
    assert row.endswith("Z"), row  # the REVOKED column holds the time


def test_keys_created_before_prefixes_are_listed_without_one(daemon_factory: DaemonFactory) -> None:
    daemon = daemon_factory()
    db = sqlite3.connect(daemon.state_dir / "intunedd.db")
    with db:
        db.execute("INSERT INTO api_keys (id, name, key_hash, created_at) VALUES ('old', 'old', 'h', '2020')")
    db.close()
    old = next(k for k in _keys(daemon, daemon.key).json()["items"] if k["id"] == "old")
    assert old["prefix"] is None
    # Revoking the key in use is allowed, and it stops working too.
    me = next(k for k in _keys(daemon, daemon.key).json()["items"] if k["prefix"] == daemon.key[:8])
    with daemon.client() as c:
        assert c.delete(f"/api/v1/workspace/{daemon.workspace}/keys/{me['id']}").status_code == 200
    _wait_refused(daemon, daemon.key)


# -- websocket bounds -------------------------------------------------------------------------


def _ws_url(daemon: Daemon, query: str = "") -> str:
    return daemon.url.replace("http", "ws") + f"/api/v1/workspace/{daemon.workspace}/events{query}"


async def test_websocket_connections_per_key_are_bounded(daemon_factory: DaemonFactory) -> None:
    daemon = await trio.to_thread.run_sync(lambda: daemon_factory(events__max_connections_per_key=2))
    headers = [("x-api-key", daemon.key)]
    with trio.fail_after(30):
        async with open_websocket_url(_ws_url(daemon), extra_headers=headers):
            async with open_websocket_url(_ws_url(daemon), extra_headers=headers):
                status, body = await trio.to_thread.run_sync(_handshake, daemon)
                assert status == 429
                assert json.loads(body)["details"]["field"] == "x-api-key"
            # One closed: there is room again once the daemon has seen it go.
            while (await trio.to_thread.run_sync(_handshake, daemon))[0] != 101:
                await trio.sleep(0.05)


def _idle_subscriber(daemon: Daemon, query: str) -> tuple[socket.socket, WSConnection]:
    """A websocket client that reads nothing, with a tiny receive buffer so the kernel cannot
    hold the events for it: they pile up in the daemon."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(30)
    sock.connect(("127.0.0.1", daemon.port))
    ws = WSConnection(ConnectionType.CLIENT)
    target = f"/api/v1/workspace/{daemon.workspace}/events{query}"
    sock.sendall(ws.send(Request(host="127.0.0.1", target=target, extra_headers=[(b"x-api-key", daemon.key.encode())])))
    return sock, ws


def _handshake(daemon: Daemon) -> tuple[int, bytes]:
    """The daemon's answer to a websocket handshake: its status and, when refused, its body."""
    sock, ws = _idle_subscriber(daemon, "")
    with sock:
        body = b""
        while data := sock.recv(65536):
            ws.receive_data(data)
            for event in ws.events():
                if isinstance(event, AcceptConnection):
                    return 101, b""
                if isinstance(event, RejectConnection):
                    status = event.status_code
                elif isinstance(event, RejectData):
                    body += event.data
                    if event.body_finished:
                        return status, body
    raise AssertionError("the daemon closed the connection without answering the handshake")


def _read_to_the_end(sock: socket.socket, ws: WSConnection) -> tuple[int, int | None]:
    """Messages received and the close code, reading until the daemon closes the connection."""
    messages, code = 0, None
    while data := sock.recv(65536):
        ws.receive_data(data)
        for event in ws.events():
            if isinstance(event, TextMessage) and event.message_finished:
                messages += 1
            elif isinstance(event, CloseConnection):
                code = event.code
    return messages, code


def test_subscriber_over_its_byte_budget_is_disconnected(daemon_factory: DaemonFactory) -> None:
    daemon = daemon_factory(events__subscriber_buffer_bytes=64 * 1024)
    daemon.deploy("ws-bytes", APIS)
    sock, ws = _idle_subscriber(daemon, "?type=run.failed&type=attempt.finished")
    body = {"api": "huge_error", "parameters": {"size": 6000}, "retry": {"maximumAttempts": 1}}
    runs = [daemon.start_run("ws-bytes", body) for _ in range(20)]
    for run_id in runs:  # 40 events of over 6 KB: far more than 64 KiB
        daemon.wait_for("ws-bytes", run_id)
    with sock:
        messages, code = _read_to_the_end(sock, ws)
    assert code == 1013
    assert messages < 40


async def test_huge_event_payloads_are_truncated(daemon_factory: DaemonFactory) -> None:
    daemon = await trio.to_thread.run_sync(lambda: daemon_factory(events__max_event_bytes=4096))
    await trio.to_thread.run_sync(daemon.deploy, "ws-cap", APIS)
    body = {"api": "huge_error", "parameters": {"size": 6000}, "retry": {"maximumAttempts": 1}}
    with trio.fail_after(60):
        async with open_websocket_url(
            _ws_url(daemon, "?type=run.failed"), extra_headers=[("x-api-key", daemon.key)]
        ) as ws:
            run_id = await trio.to_thread.run_sync(daemon.start_run, "ws-cap", body)
            message = await ws.get_message()
    assert len(message) <= 4096
    event = json.loads(message)
    assert event["run_id"] == run_id
    assert event["data"]["error"]["code"] == "script-execution-exception"
    assert event["data"]["error"]["message"].startswith("eeee")
    assert "truncated" in event["data"]["error"]["message"]
    # The run itself keeps the whole error.
    result = await trio.to_thread.run_sync(daemon.result, "ws-cap", run_id)
    assert result["error"]["message"] == "e" * 6000


@pytest.mark.parametrize("path", ["/api/v1/workspace/w/projects", "/v1/sync/scrape"])
def test_a_refusal_before_the_body_arrived_ends_the_connection(daemon: Daemon, path: str) -> None:
    """A 401 given before the body was sent closes the connection and says so, so a client's next
    request goes on a new connection instead of waiting on this one forever."""
    body = b'{"url": "http://127.0.0.1/"}'
    with socket.create_connection(("127.0.0.1", daemon.port), timeout=20) as client:
        client.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n".encode())
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += client.recv(65536)
        assert answer.startswith(b"HTTP/1.1 401") and b"connection: close" in answer.lower()
        client.sendall(body + b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
        rest = b""
        while chunk := client.recv(65536):  # a TimeoutError here is the defect
            rest += chunk
        assert b"HTTP/1.1" not in rest  # closed, the pipelined request not taken from the old body's bytes
