"""The browser worker child, driven over its socket exactly as the daemon drives it.

Each test spawns the real ``python -m intunedd.workers.child`` with real Chromium, writes a tiny
Intuned-style project into tmp_path, and serves pages from a local HTTP server on port 0.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import socket
import subprocess
import sys
import zipfile
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from textwrap import dedent
from typing import Any

import msgspec
import pytest
import trio

from intunedd.workers import protocol
from intunedd.workers.browser import BrowserNotFoundError, find_browser, playwright_revision, prepare_ffmpeg
from intunedd.workers.child import _proxy_settings
from intunedd.workers.protocol import Abort, Done, Extend, Ready, RunContext, Start, StoreGet, StoreReply, StoreSet

from ..conftest import serving

SPAWN_TIMEOUT_S = 30
ATTEMPT_TIMEOUT_S = 20


class WorkerClient:
    """The daemon's half of the socket: frames out, frames in, persistent store answered from a dict."""

    def __init__(self, stream: trio.SocketStream, process: trio.Process) -> None:
        self.stream = stream
        self.process = process
        self.kv: dict[str, Any] = {}
        self.store_error: str | None = None
        self._buffer = bytearray()

    @classmethod
    async def spawn(
        cls, nursery: trio.Nursery, env: Mapping[str, str] | None = None, python: str = sys.executable
    ) -> WorkerClient:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        config = protocol.WorkerConfig(fd=theirs.fileno(), browser_executable=find_browser("auto", True))
        command = [python, "-m", "intunedd.workers.child", msgspec.json.encode(config).decode()]
        run = functools.partial(trio.run_process, command, pass_fds=(theirs.fileno(),), check=False, env=env)
        process = await nursery.start(run)
        theirs.close()
        return cls(trio.SocketStream(trio.socket.from_stdlib_socket(ours)), process)

    async def send(self, frame: protocol.ToWorker) -> None:
        await self.stream.send_all(protocol.encode(frame))

    async def receive(self) -> protocol.FromWorker:
        # As the daemon reads them; no test here raises max_result_bytes above its 2 MiB default.
        header = await self._read_exactly(protocol.HEADER.size)
        length = protocol.frame_length(header, protocol.max_from_worker_bytes(2 * protocol.MIB))
        return protocol.decode_from_worker(await self._read_exactly(length))

    async def _read_exactly(self, n: int) -> bytes:
        while len(self._buffer) < n:
            chunk = await self.stream.receive_some()
            assert chunk, "worker closed the socket"
            self._buffer += chunk
        data = bytes(self._buffer[:n])
        del self._buffer[:n]
        return data

    async def wait_ready(self) -> Ready:
        with trio.fail_after(SPAWN_TIMEOUT_S):
            frame = await self.receive()
        assert isinstance(frame, Ready)
        return frame

    async def next_frame(self) -> protocol.FromWorker:
        """The next frame that is not a persistent-store request; those are answered on the way."""
        while True:
            frame = await self.receive()
            if isinstance(frame, StoreGet | StoreSet):
                await self.send(self._answer(frame))
            else:
                return frame

    def _answer(self, request: StoreGet | StoreSet) -> StoreReply:
        if self.store_error is not None:
            return StoreReply(request_id=request.request_id, error=self.store_error)
        if isinstance(request, StoreSet):
            self.kv[request.key] = request.value
            return StoreReply(request_id=request.request_id)
        return StoreReply(request_id=request.request_id, value=self.kv.get(request.key))

    async def run(self, start: Start) -> tuple[Done, int]:
        """Send ``start`` and return its Done and how many Extend frames came before it."""
        extends = 0
        with trio.fail_after(ATTEMPT_TIMEOUT_S):
            await self.send(start)
            while not isinstance(frame := await self.next_frame(), Done):
                assert isinstance(frame, Extend)
                extends += 1
        return frame, extends

    async def close(self) -> int:
        """EOF on the socket: the worker closes its browser and exits 0."""
        await self.stream.aclose()
        with trio.fail_after(SPAWN_TIMEOUT_S):
            return await self.process.wait()


@pytest.fixture
async def worker(nursery: trio.Nursery) -> AsyncIterator[WorkerClient]:
    client = await WorkerClient.spawn(nursery)
    await client.wait_ready()
    yield client
    assert await client.close() == 0


@pytest.fixture
def site(tmp_path: Path) -> Iterator[str]:
    """Base URL of a local HTTP server with an ``index.html`` titled "Hello"."""
    root = tmp_path / "site"
    root.mkdir()
    (root / "index.html").write_text("<html><head><title>Hello</title></head><body>hi</body></html>")

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    with serving(functools.partial(Handler, directory=str(root))) as url:
        yield url


def make_project(root: Path, files: Mapping[str, str]) -> Path:
    for name, source in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dedent(source))
    return root


def make_start(project: Path, api: str, parameters: Any = None, **overrides: Any) -> Start:
    context = RunContext(run_id="run-1", project_name=project.name, api_name=api, attempt_number=1)
    fields: dict[str, Any] = {"log_path": str(project.parent / "logs" / f"{api}.jsonl"), **overrides}
    return Start(
        attempt_id="attempt-1", project_dir=str(project), api=api, parameters=parameters, context=context, **fields
    )


@pytest.mark.chromium
async def test_success_returns_page_title(worker: WorkerClient, tmp_path: Path, site: str) -> None:
    project = make_project(
        tmp_path / "p",
        {
            "api/title.py": """
                async def automation(page, params, **_kwargs):
                    await page.goto(params["url"])
                    return {"title": await page.title()}
            """
        },
    )
    done, _ = await worker.run(make_start(project, "title", {"url": site}))
    assert done.success, done.error
    assert done.result == {"title": "Hello"}
    assert done.extended_payloads == []


@pytest.mark.chromium
async def test_params_none_calls_automation_with_page_only(worker: WorkerClient, tmp_path: Path) -> None:
    project = make_project(
        tmp_path / "p",
        {"api/nested/ping.py": "async def automation(page):\n    return 'pong'\n"},
    )
    done, _ = await worker.run(make_start(project, "nested/ping"))
    assert (done.success, done.result) == (True, "pong")


@pytest.mark.chromium
async def test_user_exception_is_script_execution_exception(worker: WorkerClient, tmp_path: Path) -> None:
    project = make_project(
        tmp_path / "p",
        {
            "api/fail.py": """
                async def automation(page, params=None, **_kwargs):
                    raise ValueError("boom")
            """
        },
    )
    done, _ = await worker.run(make_start(project, "fail"))
    assert not done.success and not done.aborted
    assert done.error is not None
    assert (done.error.code, done.error.message, done.error.retryable) == ("script-execution-exception", "boom", True)
    assert done.error.details["name"] == "ValueError"
    assert done.error.details["message"] == "boom"
    assert "Traceback" in done.error.details["stack"]
    assert "api/fail.py" in done.error.details["stack"]


@pytest.mark.chromium
async def test_non_retryable_error_is_not_retryable(worker: WorkerClient, tmp_path: Path) -> None:
    project = make_project(
        tmp_path / "p",
        {
            "api/stop.py": """
                from intuned_runtime import NonRetryableError

                async def automation(page, params=None, **_kwargs):
                    raise NonRetryableError("account locked")
            """
        },
    )
    done, _ = await worker.run(make_start(project, "stop"))
    assert done.error is not None
    assert (done.error.code, done.error.retryable) == ("script-execution-exception", False)
    assert done.error.message == "account locked"


@pytest.mark.chromium
async def test_result_checks(worker: WorkerClient, tmp_path: Path) -> None:
    project = make_project(
        tmp_path / "p",
        {
            "api/big.py": "async def automation(page, params):\n    return 'x' * params['n']\n",
            "api/odd.py": "async def automation(page, params=None):\n    return object()\n",
            "api/model.py": """
                import pydantic

                class Item(pydantic.BaseModel):
                    name: str

                async def automation(page, params=None):
                    return [Item(name="a")]
            """,
            "api/subclass.py": """
                class Text(str):
                    pass

                async def automation(page, params=None):
                    return {"title": Text("page")}
            """,
        },
    )
    done, _ = await worker.run(make_start(project, "big", {"n": 2000}, max_result_bytes=1000))
    assert done.error is not None
    assert (done.error.code, done.error.retryable) == ("result-too-big-error", True)
    assert done.error.message == "Automation result is too big. Size: 0.00 MB, Max allowed: 0.00 MB"
    assert done.error.details == {"sizeInBytes": 2002, "maxSizeInBytes": 1000}

    done, _ = await worker.run(make_start(project, "big", {"n": 998}, max_result_bytes=1000))
    assert done.success

    done, _ = await worker.run(make_start(project, "odd"))
    assert done.error is not None
    assert (done.error.code, done.error.message) == ("script-execution-exception", "Result is not JSON serializable")

    done, _ = await worker.run(make_start(project, "model"))
    assert done.result == [{"name": "a"}]

    # A str subclass (BeautifulSoup's NavigableString) is JSON to Intuned's json.dumps: it must be here.
    done, _ = await worker.run(make_start(project, "subclass"))
    assert done.result == {"title": "page"}


@pytest.mark.chromium
async def test_invalid_apis(worker: WorkerClient, tmp_path: Path) -> None:
    project = make_project(
        tmp_path / "p",
        {
            "api/no_function.py": "x = 1\n",
            "api/not_async.py": "def automation(page, params=None):\n    return 1\n",
            "api/bad_import.py": "raise RuntimeError('broken at import')\n",
        },
    )
    table = [
        ("missing", "script-unexpected-error", False, "missing"),
        ("../escape", "script-unexpected-error", False, "../escape"),
        ("no_function", "script-unexpected-error", False, "no_function"),
        ("not_async", "script-unexpected-error", False, "async def"),
        ("bad_import", "script-execution-exception", True, "broken at import"),
    ]
    for api, code, retryable, in_message in table:
        done, _ = await worker.run(make_start(project, api))
        assert done.error is not None, api
        assert (done.error.code, done.error.retryable) == (code, retryable), api
        assert in_message in done.error.message, api

    done, _ = await worker.run(make_start(tmp_path / "gone", "anything"))
    assert done.error is not None
    assert (done.error.code, done.error.retryable) == ("script-unexpected-error", False)


@pytest.mark.chromium
async def test_output_and_logging_land_in_the_log_file(worker: WorkerClient, tmp_path: Path) -> None:
    project = make_project(
        tmp_path / "p",
        {
            "api/chatty.py": """
                import logging
                import sys

                async def automation(page, params=None):
                    print("hello")
                    print("two\\nlines")
                    print("to stderr", file=sys.stderr)
                    logging.getLogger("user").info("logged %s", 42)
                    logging.debug("debug too")
                    sys.stdout.write("no newline")
                    return None
            """
        },
    )
    log_path = tmp_path / "deep" / "logs" / "attempt.jsonl"
    done, _ = await worker.run(make_start(project, "chatty", log_path=str(log_path)))
    assert done.success, done.error
    entries = [json.loads(line) for line in log_path.read_text().splitlines()]
    assert [(e["stream"], e.get("level"), e["message"]) for e in entries] == [
        ("stdout", None, "hello"),
        ("stdout", None, "two"),
        ("stdout", None, "lines"),
        ("stderr", None, "to stderr"),
        ("log", "INFO", "logged 42"),
        ("log", "DEBUG", "debug too"),
        ("stdout", None, "no newline"),
        ("system", None, "attempt completed"),
    ]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", e["timestamp"]) for e in entries)


@pytest.mark.chromium
async def test_streams_captured_at_import_follow_later_attempts(worker: WorkerClient, tmp_path: Path) -> None:
    project = make_project(
        tmp_path / "p",
        {
            "api/own_handler.py": """
                import logging

                logger = logging.getLogger("own")
                logger.addHandler(logging.StreamHandler())  # binds the sys.stderr of the first attempt
                logger.propagate = False

                async def automation(page, params):
                    logger.warning("attempt %s", params["n"])
            """
        },
    )
    for n in (1, 2):
        log_path = tmp_path / f"{n}.jsonl"
        done, _ = await worker.run(make_start(project, "own_handler", {"n": n}, log_path=str(log_path)))
        assert done.success, done.error
        entries = [json.loads(line) for line in log_path.read_text().splitlines()]
        assert [(e["stream"], e["message"]) for e in entries] == [
            ("stderr", f"attempt {n}"),
            ("system", "attempt completed"),
        ]


@pytest.mark.chromium
async def test_traces_hold_snapshots_and_screenshots_if_asked_whatever_the_attempt_before(
    worker: WorkerClient, tmp_path: Path, site: str
) -> None:
    """One worker, attempts traced in turn each way: a warm context traced ahead (as the attempt
    before was) must never leave a trace where none was asked, or the wrong kind."""
    project = make_project(
        tmp_path / "p",
        {"api/visit.py": "async def automation(page, params):\n    await page.goto(params['url'])\n"},
    )
    for n, screenshots in enumerate([False, None, True, True, False, None, None, False]):
        trace = tmp_path / "traces" / f"{n}.zip"
        path = None if screenshots is None else str(trace)
        start = make_start(project, "visit", {"url": site}, trace_path=path, trace_screenshots=bool(screenshots))
        done, _ = await worker.run(start)
        assert done.success, done.error
        if screenshots is None:
            assert not trace.exists()
            continue
        events = [json.loads(line) for line in zipfile.ZipFile(trace).read("trace.trace").splitlines()]
        kinds = {event.get("type") for event in events}
        assert "frame-snapshot" in kinds, n  # the DOM, which the trace viewer shows for each action
        assert ("screencast-frame" in kinds) is screenshots, n
        assert sum(event.get("type") == "context-options" for event in events) == 1, n  # one context's trace


@pytest.mark.chromium
async def test_extend_timeout_and_extend_payload(worker: WorkerClient, tmp_path: Path) -> None:
    project = make_project(
        tmp_path / "p",
        {
            "api/extend.py": """
                from intuned_runtime import extend_payload, extend_timeout

                async def automation(page, params=None):
                    extend_timeout()
                    extend_timeout()  # throttled: within the same second
                    extend_payload({"api": "detail", "parameters": {"id": 1}}, {"api": "detail"})
                    return "ok"
            """
        },
    )
    done, extends = await worker.run(make_start(project, "extend"))
    assert done.success, done.error
    assert extends == 1
    assert done.extended_payloads == [
        protocol.ExtendedPayload(api="detail", parameters={"id": 1}),
        protocol.ExtendedPayload(api="detail"),
    ]


@pytest.mark.chromium
async def test_runtime_helpers(worker: WorkerClient, tmp_path: Path) -> None:
    project = make_project(
        tmp_path / "p",
        {
            "api/helpers.py": """
                from intuned_runtime import attempt_store, persistent_store, run_info, set_attribute

                async def automation(page, params=None):
                    attempt_store.set("seen", 1)
                    set_attribute("color", "blue")
                    await persistent_store.set("counter", {"n": 1})
                    try:
                        await persistent_store.get("a:b")
                    except ValueError:
                        bad_key = "rejected"
                    info = run_info()
                    return {
                        "stored": await persistent_store.get("counter"),
                        "absent": await persistent_store.get("nothing"),
                        "attempt": attempt_store.get("seen"),
                        "bad_key": bad_key,
                        "run": [info.run_id, info.job_id, info.attempt_number],
                    }
            """
        },
    )
    done, _ = await worker.run(make_start(project, "helpers"))
    assert done.success, done.error
    assert done.result == {
        "stored": {"n": 1},
        "absent": None,
        "attempt": 1,
        "bad_key": "rejected",
        "run": ["run-1", None, 1],
    }
    assert worker.kv == {"counter": {"n": 1}}

    worker.store_error = "store unavailable"
    done, _ = await worker.run(make_start(project, "helpers"))
    assert done.error is not None
    assert (done.error.details["name"], done.error.message) == ("RuntimeError", "store unavailable")


@pytest.mark.chromium
async def test_abort_cancels_the_automation_and_keeps_the_trace(worker: WorkerClient, tmp_path: Path) -> None:
    project = make_project(
        tmp_path / "p",
        {
            "api/slow.py": """
                import asyncio
                from intuned_runtime import extend_timeout

                async def automation(page, params=None):
                    extend_timeout()  # tells the test the automation is running
                    await asyncio.sleep(30)
            """
        },
    )
    trace = tmp_path / "traces" / "aborted.zip"
    log_path = tmp_path / "aborted.jsonl"
    with trio.fail_after(10):
        await worker.send(make_start(project, "slow", trace_path=str(trace), log_path=str(log_path)))
        assert isinstance(await worker.next_frame(), Extend)
        await worker.send(Abort())
        done = await worker.next_frame()
    assert isinstance(done, Done)
    assert done.aborted and not done.success
    assert done.error is not None and done.error.code == "script-timeout"
    assert zipfile.is_zipfile(trace)
    assert json.loads(log_path.read_text().splitlines()[-1])["message"] == "attempt aborted"

    # The worker is still usable afterwards.
    make_project(project, {"api/quick.py": "async def automation(page, params=None):\n    return 1\n"})
    done, _ = await worker.run(make_start(project, "quick"))
    assert done.result == 1


@pytest.mark.chromium
async def test_eof_during_an_attempt_exits_cleanly(worker: WorkerClient, tmp_path: Path) -> None:
    project = make_project(
        tmp_path / "p",
        {
            "api/slow.py": """
                import asyncio
                from intuned_runtime import extend_timeout

                async def automation(page, params=None):
                    extend_timeout()
                    await asyncio.sleep(30)
            """
        },
    )
    with trio.fail_after(10):
        await worker.send(make_start(project, "slow"))
        assert isinstance(await worker.next_frame(), Extend)
        assert await worker.close() == 0


@pytest.mark.chromium
async def test_projects_with_same_module_names_do_not_collide(worker: WorkerClient, tmp_path: Path) -> None:
    def project(name: str) -> Path:
        return make_project(
            tmp_path / name,
            {
                "utils.py": f"VALUE = {name!r}\n",
                "api/which.py": """
                    from utils import VALUE

                    async def automation(page, params=None):
                        return VALUE
                """,
            },
        )

    a, b = project("a"), project("b")
    results = [(await worker.run(make_start(p, "which")))[0].result for p in (a, b, a)]
    assert results == ["a", "b", "a"]


@pytest.mark.chromium
async def test_each_attempt_gets_a_fresh_context(worker: WorkerClient, tmp_path: Path, site: str) -> None:
    project = make_project(
        tmp_path / "p",
        {
            "api/state.py": """
                async def automation(page, params):
                    await page.goto(params["url"])
                    seen = {
                        "cookies": await page.context.cookies(),
                        "storage": await page.evaluate("localStorage.getItem('k')"),
                    }
                    await page.evaluate("localStorage.setItem('k', 'v'); document.cookie = 'c=1'")
                    return seen
            """
        },
    )
    for _ in range(2):
        done, _ = await worker.run(make_start(project, "state", {"url": site}))
        assert done.result == {"cookies": [], "storage": None}


@pytest.mark.chromium
async def test_video_is_recorded_with_system_ffmpeg(nursery: trio.Nursery, tmp_path: Path, site: str) -> None:
    env = prepare_ffmpeg(tmp_path / "state")
    if not env:
        pytest.skip("no ffmpeg, or Playwright's own browsers are installed")
    client = await WorkerClient.spawn(nursery, env={**os.environ, **env})
    await client.wait_ready()
    project = make_project(
        tmp_path / "p",
        {"api/visit.py": "async def automation(page, params):\n    await page.goto(params['url'])\n"},
    )
    videos = tmp_path / "videos"
    done, _ = await client.run(make_start(project, "visit", {"url": site}, video_dir=str(videos)))
    assert done.success, done.error
    assert [p.suffix for p in videos.iterdir()] == [".webm"]
    assert await client.close() == 0


@pytest.mark.parametrize(
    ("proxy", "expected"),
    [
        ("http://host:3128", {"server": "http://host:3128"}),
        (
            "http://us%40er:p%3Ass@proxy.example:8080",
            {"server": "http://proxy.example:8080", "username": "us@er", "password": "p:ss"},
        ),
        ("socks5://10.0.0.1:1080", {"server": "socks5://10.0.0.1:1080"}),
    ],
)
def test_proxy_settings(proxy: str, expected: dict[str, str]) -> None:
    assert _proxy_settings(proxy) == expected


# --- browser.py --------------------------------------------------------------------------------


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    return path


def _playwright_shell(registry: Path, revision: str | None = None) -> Path:
    revision = revision or playwright_revision("chromium-headless-shell")
    return registry / f"chromium_headless_shell-{revision}" / "chrome-headless-shell-linux64" / "chrome-headless-shell"


def _playwright_chromium(registry: Path) -> Path:
    return registry / f"chromium-{playwright_revision('chromium')}" / "chrome-linux64" / "chrome"


SHELL = "usr/lib/chromium/chromium-headless-shell"
CHROMIUM = "usr/bin/chromium"


@pytest.mark.parametrize(
    ("installed", "headless", "expected"),
    [
        pytest.param(["playwright-shell", SHELL], True, None, id="playwright's headless shell wins"),
        pytest.param(["playwright-chromium", SHELL, CHROMIUM], False, None, id="playwright's chromium wins"),
        pytest.param(["playwright-chromium", SHELL], True, SHELL, id="headless needs playwright's shell"),
        pytest.param(["stale-shell", SHELL], True, SHELL, id="other playwright revisions do not count"),
        pytest.param([SHELL, CHROMIUM], True, SHELL, id="debian headless shell"),
        pytest.param([CHROMIUM], True, CHROMIUM, id="debian chromium when no shell"),
        pytest.param([SHELL, CHROMIUM], False, CHROMIUM, id="headed needs full chromium"),
        pytest.param([SHELL], False, BrowserNotFoundError, id="headed without chromium"),
        pytest.param([], True, BrowserNotFoundError, id="nothing installed"),
    ],
)
def test_find_browser_auto(tmp_path: Path, installed: list[str], headless: bool, expected: Any) -> None:
    registry = tmp_path / "registry"
    fakes = {
        "playwright-shell": _playwright_shell(registry),
        "playwright-chromium": _playwright_chromium(registry),
        "stale-shell": _playwright_shell(registry, revision="1"),
    }
    for name in installed:
        _touch(fakes.get(name, tmp_path / name))
    environ = {"PLAYWRIGHT_BROWSERS_PATH": str(registry)}
    if isinstance(expected, type):
        with pytest.raises(expected, match="apt-get install chromium chromium-headless-shell"):
            find_browser("auto", headless, environ=environ, root=tmp_path)
    else:
        found = find_browser("auto", headless, environ=environ, root=tmp_path)
        assert found == (None if expected is None else str(tmp_path / expected))


@pytest.mark.parametrize(
    ("environ", "cache"),
    [({"HOME": "home"}, "home/.cache"), ({"HOME": "home", "XDG_CACHE_HOME": "xdg"}, "xdg")],
)
def test_find_browser_registry_defaults_to_the_user_cache(tmp_path: Path, environ: dict[str, str], cache: str) -> None:
    _touch(_playwright_shell(tmp_path / cache / "ms-playwright"))
    environ = {key: str(tmp_path / value) for key, value in environ.items()}
    assert find_browser("auto", True, environ=environ, root=tmp_path) is None


def test_find_browser_explicit_path(tmp_path: Path) -> None:
    browser = _touch(tmp_path / "my-chrome")
    assert find_browser(str(browser), True) == str(browser)
    with pytest.raises(ValueError, match="does not exist"):
        find_browser(str(tmp_path / "missing"), False)


def test_prepare_ffmpeg_links_the_system_ffmpeg(tmp_path: Path) -> None:
    ffmpeg = _touch(tmp_path / "bin" / "ffmpeg")
    ffmpeg.chmod(0o755)
    environ = {"PATH": str(ffmpeg.parent), "PLAYWRIGHT_BROWSERS_PATH": str(tmp_path / "empty-registry")}
    for _ in range(2):  # idempotent across daemon restarts
        env = prepare_ffmpeg(tmp_path / "state", environ=environ)
        registry = tmp_path / "state" / "playwright-browsers"
        assert env == {"PLAYWRIGHT_BROWSERS_PATH": str(registry)}
        link = registry / f"ffmpeg-{playwright_revision('ffmpeg')}" / "ffmpeg-linux"
        assert link.resolve() == ffmpeg


def test_prepare_ffmpeg_leaves_playwright_alone(tmp_path: Path) -> None:
    ffmpeg = _touch(tmp_path / "bin" / "ffmpeg")
    ffmpeg.chmod(0o755)
    registry = tmp_path / "registry"
    environ = {"PATH": str(ffmpeg.parent), "PLAYWRIGHT_BROWSERS_PATH": str(registry)}
    assert prepare_ffmpeg(tmp_path / "state", environ={**environ, "PATH": str(tmp_path / "nowhere")}) == {}
    _touch(_playwright_shell(registry))
    assert prepare_ffmpeg(tmp_path / "state", environ=environ) == {}


@pytest.mark.chromium
async def test_log_and_error_limits_are_applied_in_the_child(worker: WorkerClient, tmp_path: Path) -> None:
    project = make_project(
        tmp_path / "p",
        {
            "api/loud.py": """
                async def automation(page, params=None):
                    print("a" * 100_000)
                    for n in range(1000):
                        print(f"line {n} " + "b" * 100)
                    raise ValueError("c" * 100_000)
            """
        },
    )
    limits = protocol.AttemptLimits(
        max_log_bytes=20_000, max_log_line_bytes=500, max_error_message_chars=100, max_error_stack_chars=1000
    )
    log_path = tmp_path / "loud.jsonl"
    done, _ = await worker.run(make_start(project, "loud", log_path=str(log_path), limits=limits))
    assert done.error is not None
    assert done.error.message.startswith("c" * 100 + "… [truncated 99900 characters]")
    assert done.error.details["message"] == done.error.message
    assert len(done.error.details["stack"]) < 1100

    data = log_path.read_bytes()
    assert len(data) <= 20_000
    entries = [json.loads(line) for line in data.decode().splitlines()]
    assert entries[0]["message"] == "a" * 500 + "… [truncated 99500 bytes]"
    assert entries[1]["message"] == "line 0 " + "b" * 100
    assert entries[-1] == {
        "timestamp": entries[-1]["timestamp"],
        "stream": "system",
        "message": "log truncated: the attempt wrote more than 20000 bytes",
    }


@pytest.mark.chromium
async def test_output_the_daemon_would_refuse_is_never_sent(worker: WorkerClient, tmp_path: Path) -> None:
    """A store value or extended payloads bigger than the daemon's frame limit would be a protocol
    violation; the child refuses them first, as errors the automation (or the run) sees."""
    project = make_project(
        tmp_path / "p",
        {
            "api/store.py": """
                from intuned_runtime import persistent_store

                async def automation(page, params):
                    try:
                        await persistent_store.set("k", "x" * params["size"])
                    except ValueError as e:
                        return str(e)
            """,
            "api/payload.py": """
                from intuned_runtime import extend_payload

                async def automation(page, params):
                    extend_payload({"api": "next", "parameters": "y" * params["size"]})
            """,
        },
    )
    limit = protocol.max_from_worker_bytes(1000)
    done, _ = await worker.run(make_start(project, "store", {"size": limit}, max_result_bytes=1000))
    assert done.success and done.result.startswith("persistent_store: the value is too big")
    assert worker.kv == {}

    done, _ = await worker.run(make_start(project, "payload", {"size": limit}, max_result_bytes=1000))
    assert done.error is not None
    assert done.error.code == "result-too-big-error"
    assert done.error.details["maxSizeInBytes"] == limit < done.error.details["sizeInBytes"]


# --- Intuned's calling conventions -------------------------------------------------------------


@pytest.mark.chromium
async def test_the_browser_context_is_passed_to_automations_that_take_it(worker: WorkerClient, tmp_path: Path) -> None:
    project = make_project(
        tmp_path / "p",
        {
            "api/annotated.py": """
                from playwright.async_api import BrowserContext, Page

                async def automation(page: Page, params: dict, context: BrowserContext, **kwargs):
                    return [context is page.context, sorted(kwargs)]
            """,
            "api/keyword_only.py": """
                async def automation(page, params=None, *, context):
                    return context is page.context
            """,
            "api/var_keyword.py": """
                async def automation(page, params=None, **kwargs):
                    return [sorted(kwargs), kwargs["context"] is page.context]
            """,
            "api/plain.py": "async def automation(page, params=None):\n    return 'plain'\n",
            # Named "context" but filled positionally by the parameters, as Intuned calls it: left alone.
            "api/positional.py": "async def automation(page, context):\n    return context\n",
        },
    )
    table = [
        ("annotated", {}, [True, []]),
        ("keyword_only", None, True),
        ("var_keyword", {"a": 1}, [["context"], True]),
        ("plain", {"a": 1}, "plain"),
        ("positional", {"a": 1}, {"a": 1}),
    ]
    for api, parameters, expected in table:
        done, _ = await worker.run(make_start(project, api, parameters))
        assert (done.success, done.result) == (True, expected), (api, done.error)


@pytest.mark.chromium
async def test_typed_params_are_still_a_plain_dict(worker: WorkerClient, tmp_path: Path) -> None:
    project = make_project(
        tmp_path / "p",
        {
            "api/model.py": """
                import pydantic

                class Model(pydantic.BaseModel):
                    url: str

                async def automation(page, params: Model, **_kwargs):
                    return type(params).__name__
            """,
            "api/typed_dict.py": """
                from typing import TypedDict

                class Typed(TypedDict):
                    url: str

                async def automation(page, params: Typed, **_kwargs):
                    return type(params).__name__
            """,
        },
    )
    for api in ("model", "typed_dict"):
        done, _ = await worker.run(make_start(project, api, {"url": "https://example.com"}))
        assert (done.success, done.result) == (True, "dict"), (api, done.error)


@pytest.mark.chromium
async def test_an_exit_while_importing_the_api_is_the_apis_error(worker: WorkerClient, tmp_path: Path) -> None:
    project = make_project(
        tmp_path / "p",
        {
            "api/exits.py": "import sys\nsys.exit(3)\n",
            "api/missing_package.py": "import no_such_package_anywhere\n",
            "api/fine.py": "async def automation(page, params=None):\n    return 'still serving'\n",
        },
    )
    done, _ = await worker.run(make_start(project, "exits"))
    assert done.error is not None
    assert (done.error.code, done.error.retryable, done.error.details["name"]) == (
        "script-execution-exception",
        True,
        "SystemExit",
    )
    done, _ = await worker.run(make_start(project, "missing_package"))
    assert done.error is not None
    assert (done.error.code, done.error.details["name"]) == ("script-execution-exception", "ModuleNotFoundError")
    done, _ = await worker.run(make_start(project, "fine"))
    assert done.result == "still serving"


SETUP_CONTEXT_HOOK = """
    from intuned_runtime import attempt_store
    from playwright.async_api import async_playwright

    async def setup_context(*, cdp_url, api_name, api_parameters):
        attempt_store.set("hook", {"cdp_url": cdp_url, "api_name": api_name, "api_parameters": api_parameters})
        mode = api_parameters.get("mode")
        if mode == "raise":
            raise ValueError("the hook failed")
        if mode == "invalid":
            return (1, 2, 3, 4)
        playwright = await async_playwright().start()
        browser = await playwright.chromium.connect_over_cdp(cdp_url)
        context = browser.contexts[0]
        await context.add_cookies([{"name": "fromHook", "value": "yes", "url": api_parameters["url"]}])
        if mode != "replace":
            await browser.close()  # only disconnects: the cookie stays in the attempt's context
            await playwright.stop()
            return None
        await context.add_init_script("window.fromHook = 'hooked'")  # lives as long as this connection
        page = await context.new_page()
        attempt_store.set("hook_page", page)

        async def cleanup():
            print("cleanup ran")
            await playwright.stop()

        return context, page, cleanup
"""


@pytest.mark.chromium
async def test_setup_context_hook_prepares_the_attempts_browser(
    nursery: trio.Nursery, tmp_path: Path, site: str
) -> None:
    temp = tmp_path / "worker-tmp"
    temp.mkdir()
    client = await WorkerClient.spawn(nursery, env={**os.environ, "TMPDIR": str(temp)})
    await client.wait_ready()
    project = make_project(
        tmp_path / "p",
        {
            "hooks/setup_context.py": SETUP_CONTEXT_HOOK,
            "api/check.py": """
                from intuned_runtime import attempt_store

                async def automation(page, params, context, **_kwargs):
                    await page.goto(params["url"])
                    hook = attempt_store.get("hook")
                    return {
                        "cookie": await page.evaluate("document.cookie"),
                        "fromHook": await page.evaluate("window.fromHook ?? null"),
                        "apiName": hook["api_name"],
                        "parameters": hook["api_parameters"],
                        "cdpUrl": hook["cdp_url"],
                        "hookPage": attempt_store.get("hook_page") is page,
                        "sameContext": context is page.context,
                    }
            """,
        },
    )
    for mode in ("keep", "replace"):
        log_path = tmp_path / f"{mode}.jsonl"
        parameters = {"url": site, "mode": mode}
        trace = tmp_path / "traces" / f"{mode}.zip"
        start = make_start(project, "check", parameters, log_path=str(log_path), trace_path=str(trace))
        done, _ = await client.run(start)
        assert done.success, done.error and done.error.details["stack"]
        assert zipfile.is_zipfile(trace)
        result = done.result
        assert (result["apiName"], result["parameters"], result["cookie"]) == ("api/check", parameters, "fromHook=yes")
        assert result["fromHook"] == ("hooked" if mode == "replace" else None)
        assert (result["hookPage"], result["sameContext"]) == (mode == "replace", True)
        assert re.fullmatch(r"ws://127\.0\.0\.1:\d+/devtools/browser/[\w-]+", result["cdpUrl"])
        logged = [json.loads(line)["message"] for line in log_path.read_text().splitlines()]
        assert ("cleanup ran" in logged) == (mode == "replace")
        # The attempt's own browser is gone with it: nothing listens on its DevTools port any more.
        port = int(result["cdpUrl"].split(":")[2].split("/")[0])
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
    assert [p.name for p in temp.iterdir() if p.name.startswith("intunedd-cdp-")] == []
    assert await client.close() == 0


@pytest.mark.chromium
async def test_setup_context_hook_errors_fail_the_attempt(worker: WorkerClient, tmp_path: Path) -> None:
    project = make_project(
        tmp_path / "p",
        {
            "hooks/setup_context.py": SETUP_CONTEXT_HOOK,
            "api/check.py": "async def automation(page, params=None, **_kwargs):\n    return 'ran'\n",
        },
    )
    done, _ = await worker.run(make_start(project, "check", {"mode": "raise"}))
    assert done.error is not None
    assert (done.error.code, done.error.message, done.error.retryable) == (
        "script-execution-exception",
        "the hook failed",
        True,
    )
    assert "hooks/setup_context.py" in done.error.details["stack"]

    done, _ = await worker.run(make_start(project, "check", {"mode": "invalid"}))
    assert done.error is not None
    assert (done.error.code, done.error.retryable) == ("script-unexpected-error", False)
    assert "setup_context" in done.error.message

    for name, source in [
        ("no_function", "async def other(**_kwargs):\n    pass\n"),
        ("not_async", "def setup_context(**_kwargs):\n    pass\n"),
    ]:
        api = "async def automation(page, params=None):\n    return 'ran'\n"
        invalid = make_project(tmp_path / name, {"hooks/setup_context.py": source, "api/check.py": api})
        done, _ = await worker.run(make_start(invalid, "check", {}))
        assert done.error is not None
        assert (done.error.code, done.error.retryable) == ("script-unexpected-error", False)
        assert "setup_context" in done.error.message


@pytest.mark.chromium
async def test_abort_during_the_setup_context_hook(worker: WorkerClient, tmp_path: Path) -> None:
    project = make_project(
        tmp_path / "p",
        {
            "hooks/setup_context.py": """
                import asyncio
                from intuned_runtime import extend_timeout

                async def setup_context(*, cdp_url, api_name, api_parameters):
                    if api_parameters["slow"]:
                        extend_timeout()  # tells the test the hook is running
                        await asyncio.sleep(30)
            """,
            "api/quick.py": "async def automation(page, params, **_kwargs):\n    return 'ran'\n",
        },
    )
    with trio.fail_after(10):
        await worker.send(make_start(project, "quick", {"slow": True}))
        assert isinstance(await worker.next_frame(), Extend)
        await worker.send(Abort())
        done = await worker.next_frame()
    assert isinstance(done, Done) and done.aborted
    done, _ = await worker.run(make_start(project, "quick", {"slow": False}))
    assert done.result == "ran"


def test_an_unreachable_browser_host_is_told_by_its_host_alone(tmp_path: Path) -> None:
    """A browser host's URL may carry a token, which Playwright's own message repeats: the worker's
    last words (its stderr, which goes to the daemon's log) name the host and the error, not it."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed once the block ends: nothing listens there
    parent, child = socket.socketpair()
    url = f"ws://user:pass-SEKRET@127.0.0.1:{port}/chromium/playwright?token=SEKRET-TOKEN"
    config = protocol.WorkerConfig(fd=child.fileno(), remote_endpoint=url)
    with parent, child:
        done = subprocess.run(
            [sys.executable, "-m", "intunedd.workers.child", msgspec.json.encode(config).decode()],
            pass_fds=(child.fileno(),), capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert done.returncode != 0
    assert "SEKRET" not in done.stderr + done.stdout
    assert "user" not in done.stderr and "chromium/playwright" not in done.stderr  # the path may be a token too
    assert "BrowserHostUnreachable" in done.stderr and f"ECONNREFUSED 127.0.0.1:{port}" in done.stderr
