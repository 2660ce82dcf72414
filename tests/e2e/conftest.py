"""End-to-end harness: the daemon started as a user starts it, real Chromium, local pages.

``intunedd keys create`` then ``intunedd serve --config FILE`` run as subprocesses; tests
drive the daemon over HTTP. Pages come from a threaded HTTP server on 127.0.0.1.
"""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import tarfile
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

INTUNEDD = [sys.executable, "-m", "intunedd"]
START_TIMEOUT_S = 60.0
TERMINAL = {"completed", "failed", "canceled"}


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


def project_archive(files: dict[str, str], settings: dict[str, Any] | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        all_files = {**files, "Intuned.json": json.dumps(settings or {})}
        for name, text in all_files.items():
            data = textwrap.dedent(text).encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@dataclass
class Daemon:
    state_dir: Path
    config_path: Path
    port: int
    key: str
    process: subprocess.Popen[bytes] | None = None
    workspace: str = ""
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log_path = self.state_dir / "daemon.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"x-api-key": self.key}, timeout=30, **kwargs)

    def cli(self, *args: str, cwd: Path | None = None, input: str | None = None) -> subprocess.CompletedProcess[str]:
        """``intunedd ARGS`` as a user runs it, pointed at this daemon by the environment."""
        env = {**os.environ, "INTUNEDD_URL": self.url, "INTUNEDD_API_KEY": self.key}
        for name in ("INTUNEDD_PROJECT", "INTUNEDD_WORKSPACE"):
            env.pop(name, None)
        return subprocess.run(
            [*INTUNEDD, *args], env=env, cwd=cwd or self.state_dir, capture_output=True, text=True, input=input,
            timeout=120,
        )  # fmt: skip

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [*INTUNEDD, "serve", "--config", str(self.config_path)], stdout=log, stderr=log
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"daemon exited {self.process.returncode}: {self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        else:
            raise RuntimeError(f"daemon did not become healthy: {self.log_tail()}")
        with self.client() as c:
            self.workspace = c.get("/api/v1/info").json()["workspaceId"]

    def log_tail(self) -> str:
        return self.log_path.read_text()[-3000:] if self.log_path.exists() else ""

    def kill9(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=60)
        return int(self.process.returncode)

    def path(self, project: str, rest: str = "") -> str:
        return f"/api/v1/workspace/{self.workspace}/projects/{project}{rest}"

    def deploy(self, project: str, files: dict[str, str], settings: dict[str, Any] | None = None) -> dict[str, Any]:
        with self.client() as c:
            r = c.post(self.path(project, "/deploy"), content=project_archive(files, settings))
            assert r.status_code == 201, r.text
            return dict(r.json())

    def start_run(self, project: str, body: dict[str, Any]) -> str:
        with self.client() as c:
            r = c.post(self.path(project, "/run/start"), json=body)
            assert r.status_code == 201, r.text
            return str(r.json()["runId"])

    def result(self, project: str, run_id: str) -> dict[str, Any]:
        with self.client() as c:
            r = c.get(self.path(project, f"/run/{run_id}/result"))
            assert r.status_code == 200, r.text
            return dict(r.json())

    def detail(self, project: str, run_id: str) -> dict[str, Any]:
        with self.client() as c:
            r = c.get(self.path(project, f"/runs/{run_id}"))
            assert r.status_code == 200, r.text
            return dict(r.json())

    def wait_for(self, project: str, run_id: str, statuses: set[str] = TERMINAL, timeout: float = 60) -> dict[str, Any]:
        """Poll the result until its status is in ``statuses``; bounded by ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.result(project, run_id)
            if result["status"] in statuses:
                return result
            if time.monotonic() > deadline:
                raise AssertionError(f"run {run_id} still {result['status']} after {timeout}s")
            time.sleep(0.05)


DaemonFactory = Callable[..., Daemon]


@pytest.fixture(scope="session")
def daemon_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonFactory]:
    started: list[Daemon] = []

    def make(**settings: Any) -> Daemon:
        state = tmp_path_factory.mktemp("daemon")
        port = free_port()
        sections: dict[str, dict[str, Any]] = {"server": {"port": port}, "pool": {"size": 2}}
        for name, value in settings.items():
            section, _, key = name.partition("__")
            sections.setdefault(section, {})[key] = value
        lines = [f'state_dir = "{state}"']
        for section, values in sections.items():
            lines.append(f"[{section}]")
            lines += [f"{k} = {json.dumps(v)}" for k, v in values.items()]
        config = state / "intunedd.toml"
        config.write_text("\n".join(lines) + "\n")
        out = subprocess.run(
            [*INTUNEDD, "--json", "keys", "create", "--name", "tests", "--config", str(config)],
            capture_output=True,
            check=True,
            env={**os.environ},
        )
        daemon = Daemon(state, config, port, json.loads(out.stdout)["key"])
        daemon.start()
        started.append(daemon)
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
