"""A browser host as the pool's ``remote_endpoints`` see one: ``playwright run-server`` on this
machine, for tests and benchmarks. Each client connection gets a browser of its own, launched by
the server from its Playwright registry; here that registry holds the system's headless shell where
Playwright's own download would be (what a host that ran ``playwright install chromium`` has)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from .workers.browser import find_browser, playwright_revision

START_TIMEOUT_S = 30.0


def headless_shell_registry(root: Path) -> Path:
    """``root`` made a Playwright registry whose headless shell is the system's."""
    name = f"chromium_headless_shell-{playwright_revision('chromium-headless-shell')}"
    executable = root / name / "chrome-headless-shell-linux64" / "chrome-headless-shell"
    if not executable.exists():
        executable.parent.mkdir(parents=True, exist_ok=True)
        system = find_browser("auto", True)
        if system is None:  # Playwright's own browsers are installed: the registry is theirs
            raise RuntimeError("no system headless shell to serve; run-server can use Playwright's own")
        executable.symlink_to(system)
    return root


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


class PlaywrightServer:
    """``playwright run-server`` on 127.0.0.1, in a process group of its own with its browsers."""

    def __init__(self, registry: Path, port: int | None = None) -> None:
        self.registry = registry
        self.port = port or _free_port()
        self.url = f"ws://127.0.0.1:{self.port}/"
        command = [sys.executable, "-m", "playwright", "run-server", "--host", "127.0.0.1", "--port", str(self.port)]
        self.process = subprocess.Popen(
            command,
            env={**os.environ, "PLAYWRIGHT_BROWSERS_PATH": str(registry)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _listening(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"playwright run-server did not listen on {self.port}")
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL to the server and the browsers it launched: a host that stops answering."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=10)

    def restarted(self) -> PlaywrightServer:
        """The host back on the same address."""
        return PlaywrightServer(self.registry, self.port)
