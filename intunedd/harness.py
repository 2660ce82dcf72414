"""A real daemon in a child process, started as a user starts it, for tests and benchmarks.

``intunedd keys create`` makes a key, ``intunedd serve --config FILE --ready-fd N`` runs the
daemon; the daemon writes its bound URLs to fd N once its sockets are bound and its browser
pool is warm, so a caller waits on that pipe (bounded by a timeout) instead of polling.
The first start binds port 0; the port the kernel chose is written back into the config so
a restart comes back on the same URL.
"""

from __future__ import annotations

import io
import json
import os
import select
import signal
import subprocess
import sys
import tarfile
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

INTUNEDD = [sys.executable, "-m", "intunedd"]
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 60.0
HTTP_TIMEOUT_S = 30.0
DEPLOY_TIMEOUT_S = 300.0
TERMINAL = frozenset({"completed", "failed", "canceled"})


def project_archive(files: dict[str, str], settings: dict[str, Any] | None = None) -> bytes:
    """A deployable tar.gz of ``files`` (dedented) plus an Intuned.json of ``settings``, unless
    ``files`` bring their own settings file."""
    own = "Intuned.json" in files or "Intuned.jsonc" in files
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, text in {**files, **({} if own else {"Intuned.json": json.dumps(settings or {})})}.items():
            data = textwrap.dedent(text).encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = int(time.time())
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def toml_value(value: Any) -> str:
    """A TOML value: JSON's scalars and arrays are TOML's, but a table is written ``{key = value}``."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))} = {toml_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(value)


def config_text(state_dir: Path, sections: dict[str, dict[str, Any]]) -> str:
    lines = [f"state_dir = {json.dumps(str(state_dir))}"]
    for section, values in sections.items():
        lines.append(f"[{section}]")
        lines += [f"{key} = {toml_value(value)}" for key, value in values.items()]
    return "\n".join(lines) + "\n"


def create_key(config_path: Path, name: str) -> str:
    out = subprocess.run(
        [*INTUNEDD, "--json", "keys", "create", "--name", name, "--config", str(config_path)],
        capture_output=True,
        check=True,
        timeout=60,
    )
    return str(json.loads(out.stdout)["key"])


def _read_line(fd: int, timeout_s: float) -> bytes:
    """One line from a pipe within ``timeout_s``; b"" when the writer closed it first."""
    deadline = time.monotonic() + timeout_s
    data = b""
    while not data.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise TimeoutError(f"no ready signal within {timeout_s:g}s")
        chunk = os.read(fd, 4096)
        if not chunk:
            return b""
        data += chunk
    return data


@dataclass
class DaemonProcess:
    state_dir: Path
    sections: dict[str, dict[str, Any]] = field(default_factory=dict)
    key_name: str = "tests"
    key: str = ""
    url: str = ""
    workspace: str = ""
    process: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self.sections.setdefault("server", {}).setdefault("port", 0)
        self.sections["server"].setdefault("host", "127.0.0.1")
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(config_text(self.state_dir, self.sections))
        self.key = self.key or create_key(self.config_path, self.key_name)

    @property
    def config_path(self) -> Path:
        return self.state_dir / "intunedd.toml"

    @property
    def log_path(self) -> Path:
        return self.state_dir / "daemon.log"

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1]) if self.url else int(self.sections["server"]["port"])

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:] if self.log_path.exists() else ""

    def start(self, timeout_s: float = START_TIMEOUT_S) -> None:
        read_end, write_end = os.pipe()
        try:
            with open(self.log_path, "ab") as log:
                self.process = subprocess.Popen(
                    [*INTUNEDD, "serve", "--config", str(self.config_path), "--ready-fd", str(write_end)],
                    stdout=log,
                    stderr=log,
                    pass_fds=(write_end,),
                )
            os.close(write_end)
            try:
                line = _read_line(read_end, timeout_s)
            except TimeoutError as e:
                raise RuntimeError(f"daemon not ready: {e}:\n{self.log_tail()}") from e
        finally:
            os.close(read_end)
        if not line:
            self.process.wait(timeout=STOP_TIMEOUT_S)
            raise RuntimeError(f"daemon exited {self.process.returncode} before ready:\n{self.log_tail()}")
        self.url = json.loads(line)["urls"][0]
        if self.sections["server"]["port"] == 0:
            self.sections["server"]["port"] = self.port
            self.config_path.write_text(config_text(self.state_dir, self.sections))
        with self.client() as c:
            self.workspace = c.get("/api/v1/info").raise_for_status().json()["workspaceId"]

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> int:
        """SIGTERM (the daemon drains and stops its workers), then SIGKILL if it lingers."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        return int(self.process.returncode)

    def kill9(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"x-api-key": self.key}, timeout=HTTP_TIMEOUT_S, **kwargs)

    def async_client(self, **kwargs: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, headers={"x-api-key": self.key}, timeout=HTTP_TIMEOUT_S, **kwargs)

    def path(self, project: str, rest: str = "") -> str:
        return f"/api/v1/workspace/{self.workspace}/projects/{project}{rest}"

    def deploy(self, project: str, files: dict[str, str], settings: dict[str, Any] | None = None) -> dict[str, Any]:
        with self.client() as c:
            # A deploy may build the project's Python environment: minutes on a cold cache.
            archive = project_archive(files, settings)
            r = c.post(self.path(project, "/deploy"), content=archive, timeout=DEPLOY_TIMEOUT_S)
        if r.status_code != 201:
            raise AssertionError(f"deploy {project}: {r.status_code} {r.text}")
        return dict(r.json())

    def start_run(self, project: str, body: dict[str, Any]) -> str:
        with self.client() as c:
            r = c.post(self.path(project, "/run/start"), json=body)
        if r.status_code != 201:
            raise AssertionError(f"run/start: {r.status_code} {r.text}")
        return str(r.json()["runId"])

    def result(self, project: str, run_id: str) -> dict[str, Any]:
        return self._get(self.path(project, f"/run/{run_id}/result"))

    def detail(self, project: str, run_id: str) -> dict[str, Any]:
        return self._get(self.path(project, f"/runs/{run_id}"))

    def _get(self, path: str) -> dict[str, Any]:
        with self.client() as c:
            r = c.get(path)
        if r.status_code != 200:
            raise AssertionError(f"GET {path}: {r.status_code} {r.text}")
        return dict(r.json())

    def wait_for(
        self, project: str, run_id: str, statuses: frozenset[str] | set[str] = TERMINAL, timeout: float = 60
    ) -> dict[str, Any]:
        """Poll the run's result until its status is in ``statuses``; bounded by ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.result(project, run_id)
            if result["status"] in statuses:
                return result
            if time.monotonic() > deadline:
                raise AssertionError(f"run {run_id} still {result['status']} after {timeout}s")
            time.sleep(0.05)
