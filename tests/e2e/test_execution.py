"""Execution details: extend_timeout, proxies, worker recycling."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from intunedd.workers.browser import find_browser

from .conftest import DaemonFactory

pytestmark = pytest.mark.e2e

APIS = {
    "api/extends.py": """
        import asyncio
        from intuned_runtime import extend_timeout, extend_payload

        async def automation(page, params, **kwargs):
            for i in range(4):
                await asyncio.sleep(0.6)
                extend_timeout()
            extend_payload({"api": "extends", "parameters": {"child": True}})
            return "outlived the timeout"
    """,
    "api/visit.py": """
        async def automation(page, params, **kwargs):
            await page.goto(params["url"])
            return await page.content()
    """,
    "api/pid.py": """
        import os

        async def automation(page, params, **kwargs):
            return os.getpid()
    """,
    "api/family.py": """
        import psutil

        async def automation(page, params, **kwargs):
            me = psutil.Process()
            return [me.pid, *[child.pid for child in me.children(recursive=True)]]
    """,
    "api/hang.py": """
        import asyncio

        async def automation(page, params, **kwargs):
            await asyncio.sleep(60)
    """,
}


class _Proxy(BaseHTTPRequestHandler):
    """Answers every proxied request itself, and remembers the credentials it was sent."""

    seen: list[dict[str, Any]] = []

    def do_GET(self) -> None:  # noqa: N802
        auth = self.headers.get("Proxy-Authorization")
        if auth is None:
            # Chromium sends credentials only after a 407 challenge.
            self.send_response(407)
            self.send_header("Proxy-Authenticate", 'Basic realm="test"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        _Proxy.seen.append({"url": self.path, "auth": auth})
        body = b"<html><body>served by the proxy</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def proxy() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Proxy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_extend_timeout_resets_the_deadline_and_payloads_are_echoed(daemon_factory: DaemonFactory) -> None:
    daemon = daemon_factory()
    daemon.deploy("exec", APIS)
    run_id = daemon.start_run(
        "exec", {"api": "extends", "parameters": {}, "requestTimeout": 1, "retry": {"maximumAttempts": 1}}
    )
    result = daemon.wait_for("exec", run_id)
    assert result["status"] == "completed", result
    assert result["extendedPayloads"] == [{"api": "extends", "parameters": {"child": True}}]
    daemon.stop()


def test_proxy_is_applied_with_credentials(daemon_factory: DaemonFactory, proxy: str) -> None:
    daemon = daemon_factory()
    daemon.deploy("exec", APIS)
    body = {
        "api": "visit",
        "parameters": {"url": "http://shop.invalid/item"},
        "proxy": f"http://alice:s3cret@{proxy}",
        "retry": {"maximumAttempts": 1},
    }
    run_id = daemon.start_run("exec", body)
    result = daemon.wait_for("exec", run_id)
    assert "served by the proxy" in result["result"]
    assert _Proxy.seen[-1]["url"] == "http://shop.invalid/item"
    assert _Proxy.seen[-1]["auth"] == "Basic YWxpY2U6czNjcmV0"  # alice:s3cret
    configuration = daemon.detail("exec", run_id)["configuration"]
    assert "s3cret" not in configuration["proxy"]
    daemon.stop()


def test_workers_are_recycled_after_n_attempts(daemon_factory: DaemonFactory) -> None:
    daemon = daemon_factory(pool__size=1, pool__recycle_after_attempts=2)
    daemon.deploy("exec", APIS)
    pids = [
        daemon.wait_for("exec", daemon.start_run("exec", {"api": "pid", "parameters": {}}))["result"] for _ in range(4)
    ]
    assert pids[0] == pids[1] != pids[2] == pids[3]
    with daemon.client() as c:
        assert c.get("/health").json()["pool"]["recycled"] >= 1
    daemon.stop()


def test_recordings_are_kept_per_attempt(daemon_factory: DaemonFactory, site: str) -> None:
    daemon = daemon_factory(runs__record_video=True)
    daemon.deploy("exec", APIS)
    run_id = daemon.start_run("exec", {"api": "visit", "parameters": {"url": f"{site}/video"}})
    assert daemon.wait_for("exec", run_id)["status"] == "completed"
    attempt = daemon.detail("exec", run_id)["attempts"][0]
    video = httpx.get(attempt["videoUrl"])
    assert video.status_code == 200
    assert video.content[:4] == b"\x1a\x45\xdf\xa3"  # the EBML magic of a WebM file
    daemon.stop()


@pytest.fixture
def cdp_browser(tmp_path: Path) -> Iterator[str]:
    """A Chromium on its own, reachable over CDP: the shape of a browser on another host."""
    profile = tmp_path / "profile"
    process = subprocess.Popen(
        [
            find_browser("auto", True) or "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--remote-debugging-port=0",
            f"--user-data-dir={profile}",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    port_file = profile / "DevToolsActivePort"
    deadline = time.monotonic() + 20
    while not (port_file.exists() and port_file.read_text().strip()):
        assert time.monotonic() < deadline, "Chromium did not open its debugging port"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port_file.read_text().split()[0]}"
    process.kill()
    process.wait()


def test_remote_browser_over_cdp(daemon_factory: DaemonFactory, cdp_browser: str, site: str) -> None:
    daemon = daemon_factory(pool__remote_endpoint=cdp_browser, pool__remote_protocol="cdp", pool__size=1)
    daemon.deploy("exec", APIS)
    run_id = daemon.start_run("exec", {"api": "visit", "parameters": {"url": f"{site}/remote"}})
    result = daemon.wait_for("exec", run_id)
    assert result["status"] == "completed", result
    assert "<h1>remote</h1>" in result["result"]
    # A setup_context hook needs a browser of the attempt's own, which a remote browser cannot give.
    hook = "async def setup_context(*, cdp_url, api_name, api_parameters):\n    pass\n"
    daemon.deploy("hooked", {**APIS, "hooks/setup_context.py": hook})
    result = daemon.wait_for("hooked", daemon.start_run("hooked", {"api": "visit", "parameters": {"url": site}}))
    assert result["error"]["code"] == "script-unexpected-error"
    assert "hooks/setup_context.py needs a local browser" in result["error"]["message"]
    daemon.stop()


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:  # it may exit between any two looks
        return False


def _gone(pids: list[int], timeout: float = 15) -> bool:
    """True once none of ``pids`` is a live (non-zombie) process; bounded by ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = [p for p in pids if _alive(p)]
        if not alive:
            return True
        time.sleep(0.05)
    return False


def test_no_process_outlives_a_killed_worker_or_daemon(daemon_factory: DaemonFactory) -> None:
    daemon = daemon_factory(pool__size=1)
    daemon.deploy("exec", APIS)
    family = daemon.wait_for("exec", daemon.start_run("exec", {"api": "family", "parameters": {}}))["result"]
    assert len(family) > 1, "the worker should have a browser below it"
    body = {"api": "hang", "parameters": {}, "requestTimeout": 1, "retry": {"maximumAttempts": 1}}
    assert daemon.wait_for("exec", daemon.start_run("exec", body))["error"]["code"] == "script-timeout"
    assert _gone(family), "the timed-out worker or its browser outlived it"
    survivors = daemon.wait_for("exec", daemon.start_run("exec", {"api": "family", "parameters": {}}))["result"]
    daemon.kill9()
    assert _gone(survivors), "workers or browsers outlived a kill -9 of the daemon"
