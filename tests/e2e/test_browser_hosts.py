"""Browsers on other hosts (``pool.remote_endpoints``), end to end: two ``playwright run-server``
processes on 127.0.0.1 take the daemon's workers; one is killed while runs are on it, and they
complete on the other; back, it is used again."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Message, Request

from intunedd.browser_host import PlaywrightServer, headless_shell_registry

from .conftest import Daemon, DaemonFactory

pytestmark = pytest.mark.e2e
APIS = {
    "api/visit.py": (
        "async def automation(page, params, **kwargs):\n"
        "    await page.goto(params['url'])\n"
        "    await page.wait_for_timeout(params['ms'])\n"
        "    return await page.title()\n"
    ),
}
RUNS = 6
TIMEOUT_S = 120


@pytest.fixture
def hosts(tmp_path: Path) -> Iterator[list[PlaywrightServer]]:
    registry = headless_shell_registry(tmp_path / "registry")
    started = [PlaywrightServer(registry), PlaywrightServer(registry)]
    yield started
    for host in started:
        host.kill()


def _pool(daemon: Daemon) -> dict[str, object]:
    return dict(httpx.get(f"{daemon.url}/health", timeout=30).json()["pool"])


def _wait(check: object, what: str, timeout: float = TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"still not {what}"
        time.sleep(0.1)


def test_runs_spread_over_two_hosts_and_finish_on_one_when_the_other_is_killed(
    daemon_factory: DaemonFactory, hosts: list[PlaywrightServer], site: str
) -> None:
    a, b = hosts
    daemon = daemon_factory(
        pool__remote_endpoints=[{"url": a.url, "capacity": 1}, {"url": b.url, "capacity": 1}],
        runs__default_max_attempts=3,
    )
    pool = _pool(daemon)
    assert pool["size"] == 2 and pool["idle"] == 2
    assert [(h["host"], h["live"], h["up"]) for h in pool["hosts"]] == [  # type: ignore[attr-defined]
        (f"ws://127.0.0.1:{a.port}", 1, True),
        (f"ws://127.0.0.1:{b.port}", 1, True),
    ]
    daemon.deploy("hosts", APIS, {"replication": {"maxConcurrentRequests": 2}})
    run_ids = [
        daemon.start_run("hosts", {"api": "visit", "parameters": {"url": f"{site}/p{i}", "ms": 1500}})
        for i in range(RUNS)
    ]
    # Both hosts busy (one worker each), then host A goes away under its run.
    _wait(lambda: sum(daemon.result("hosts", r)["status"] == "started" for r in run_ids) == 2, "two started")
    a.kill()
    results = [daemon.wait_for("hosts", r, timeout=TIMEOUT_S) for r in run_ids]
    assert [r["status"] for r in results] == ["completed"] * RUNS, results
    assert sorted(r["result"] for r in results) == sorted(f"page p{i}" for i in range(RUNS))
    retried = [daemon.detail("hosts", r)["attempts"] for r in run_ids]
    crashed = [attempts[0]["error"] for attempts in retried if len(attempts) > 1]
    assert crashed, "the run on host A was not retried"
    assert all(error["code"] == "script-process-crashed" for error in crashed), crashed
    hosts_now = _pool(daemon)["hosts"]
    assert [h["up"] for h in hosts_now] == [False, True]  # type: ignore[index]
    assert hosts_now[0]["failures"] >= 1  # type: ignore[index]
    # Back on its address, host A is tried again after its backoff and takes a worker.
    hosts.append(a.restarted())
    _wait(lambda: [(h["up"], h["live"]) for h in _pool(daemon)["hosts"]] == [(True, 1), (True, 1)], "A back")  # type: ignore[attr-defined]
    daemon.stop()


class HostileHost:
    """A browser host that takes the websocket handshake (wsproto's), then sends ``garbage`` or
    stalls, on 127.0.0.1; its URL carries a token that must never be shown."""

    def __init__(self, behaviour: str) -> None:
        self.behaviour = behaviour
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"ws://127.0.0.1:{self.server.getsockname()[1]}/hostile-token-{behaviour}"
        self.connections: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return  # closed
            self.connections.append(connection)
            threading.Thread(target=self._answer, args=(connection,), daemon=True).start()

    def _answer(self, connection: socket.socket) -> None:
        ws = WSConnection(ConnectionType.SERVER)
        try:
            while True:
                data = connection.recv(65536)
                if not data:
                    return
                ws.receive_data(data)
                for event in ws.events():
                    if isinstance(event, Request):
                        connection.sendall(ws.send(AcceptConnection()))
                        if self.behaviour == "garbage":
                            connection.sendall(ws.send(Message(data="}{ not playwright \x00" * 100)))
                            connection.sendall(ws.send(Message(data=bytes(range(256)) * 64)))
        except OSError:
            return

    def close(self) -> None:
        self.server.close()
        for connection in self.connections:
            connection.close()


@pytest.mark.parametrize("behaviour", ["garbage", "stall"])
def test_a_host_that_answers_garbage_or_stalls_is_taken_out_and_runs_go_to_the_good_one(
    daemon_factory: DaemonFactory, hosts: list[PlaywrightServer], site: str, behaviour: str
) -> None:
    good = hosts[0]
    hostile = HostileHost(behaviour)
    try:
        daemon = daemon_factory(
            pool__remote_endpoints=[{"url": hostile.url, "capacity": 1}, {"url": good.url, "capacity": 1}],
            pool__start_timeout_s=3,
        )
        # Taken out, and tried again after its backoff (1 s, then 2 s), failing each time.
        _wait(lambda: _pool(daemon)["hosts"][0]["failures"] >= 2, "the hostile host tried twice")  # type: ignore[index]
        daemon.deploy("hostile", APIS, {"replication": {"maxConcurrentRequests": 2}})
        run_ids = [
            daemon.start_run("hostile", {"api": "visit", "parameters": {"url": f"{site}/h{i}", "ms": 0}})
            for i in range(3)
        ]
        results = [daemon.wait_for("hostile", r, timeout=TIMEOUT_S) for r in run_ids]
        assert [r.get("result") for r in results] == [f"page h{i}" for i in range(3)], results
        hostile_now, good_now = _pool(daemon)["hosts"]  # type: ignore[misc]
        assert hostile_now["failures"] >= 2 and (good_now["up"], good_now["live"]) == (True, 1)
        assert "hostile-token" not in daemon.log_path.read_text(errors="replace")
        daemon.stop()
    finally:
        hostile.close()
