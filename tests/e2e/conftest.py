"""End-to-end fixtures: the daemon started as a user starts it (``intunedd.harness``), real
Chromium, local pages (a threaded HTTP server on 127.0.0.1) and a webhook receiver."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from intunedd.harness import INTUNEDD, DaemonProcess, project_archive

__all__ = ["Daemon", "DaemonFactory", "api_error", "Receiver", "free_port", "project_archive"]


class _Pages(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        name = self.path.strip("/").split("?")[0] or "index"
        body = f"<html><head><title>page {name}</title></head><body><h1>{name}</h1></body></html>".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="session")
def site() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Pages)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Daemon(DaemonProcess):
    def cli(self, *args: str, cwd: Path | None = None, input: str | None = None) -> subprocess.CompletedProcess[str]:
        """``intunedd ARGS`` as a user runs it, pointed at this daemon by the environment."""
        env = {**os.environ, "INTUNEDD_URL": self.url, "INTUNEDD_API_KEY": self.key}
        for name in ("INTUNEDD_PROJECT", "INTUNEDD_WORKSPACE"):
            env.pop(name, None)
        return subprocess.run(
            [*INTUNEDD, *args], env=env, cwd=cwd or self.state_dir, capture_output=True, text=True, input=input,
            timeout=120,
        )  # fmt: skip


DaemonFactory = Callable[..., Daemon]


def api_error(response: httpx.Response, status: int) -> dict[str, Any]:
    """The canonical error body of ``response``, which must have ``status``."""
    assert response.status_code == status, response.text
    body = dict(response.json())
    assert set(body) >= {"code", "category", "message", "retirable", "correlationId"}
    return body


@pytest.fixture(scope="session")
def daemon_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonFactory]:
    """``make(section__key=value, ...)``: a started daemon with those settings (pool size 2)."""
    started: list[Daemon] = []

    def make(**settings: Any) -> Daemon:
        # Test receivers and moto listen on 127.0.0.1, which sinks may not reach by default.
        sections: dict[str, dict[str, Any]] = {"pool": {"size": 2}, "sinks": {"allow_networks": ["127.0.0.0/8"]}}
        for name, value in settings.items():
            section, _, key = name.partition("__")
            sections.setdefault(section, {})[key] = value
        daemon = Daemon(tmp_path_factory.mktemp("daemon"), sections)
        started.append(daemon)
        daemon.start()
        return daemon

    yield make
    for daemon in started:
        if daemon.process and daemon.process.poll() is None:
            daemon.process.kill()
            daemon.process.wait()


@pytest.fixture(scope="session")
def daemon(daemon_factory: DaemonFactory) -> Daemon:
    """One shared daemon for tests that don't restart or reconfigure it."""
    return daemon_factory()


@dataclass
class Receiver:
    """Behaviour per path: ``ok``, ``fail-N`` (500 N times, then 200), ``reject`` (400), ``hang``,
    ``toggle`` (503 until ``open`` is set), ``dup`` (keeps the body but answers 500 once)."""

    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    open: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def at(self, path: str) -> list[dict[str, Any]]:
        with self.lock:
            return [r for r in self.requests if r["path"] == path]

    def wait_for(self, path: str, n: int, timeout: float = 20) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(found := self.at(path)) < n:
            assert time.monotonic() < deadline, f"{path}: {len(found)} of {n} requests arrived"
            time.sleep(0.02)
        return found

    def answer_log(self, path: str) -> list[int]:
        with self.lock:
            return [r["status"] for r in self.requests if r["path"] == path and "status" in r]

    def answer(self, path: str) -> int:
        with self.lock:
            seen = self.counts[path] = self.counts.get(path, 0) + 1
        kind = path.strip("/").split("/")[0]
        if kind.startswith("fail-"):
            return 500 if seen <= int(kind.removeprefix("fail-")) else 200
        if kind == "hang":
            time.sleep(3)
            return 200
        if kind == "toggle":
            return 200 if self.open.is_set() else 503
        if kind == "dup":
            return 500 if seen == 1 else 200
        return {"ok": 200, "reject": 400}[kind]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            record = {"path": self.path, "headers": dict(self.headers), "body": body}
            with state.lock:
                state.requests.append(record)  # on arrival: a test may wait for a hanging request
            status = record["status"] = state.answer(self.path)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    server.shutdown()
    server.server_close()
