"""Browser worker: one child process that keeps Chromium warm and runs the attempts the daemon sends.

Run as ``python -m intunedd.workers.child '<WorkerConfig JSON>'``. The daemon is trio and never imports
Playwright; this process is asyncio because Playwright's Python API is. It speaks only
``protocol.py`` over the socket inherited as ``WorkerConfig.fd``; EOF on that socket means "exit".

Two tasks share the socket: the reader dispatches frames as they arrive (so an Abort or StoreReply
is seen while an automation runs), and the runner executes queued Starts one at a time, sending
exactly one Done for each and keeping the next browser context ready while idle.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import io
import itertools
import logging
import os
import re
import socket
import sys
import threading
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import unquote, urlsplit

import msgspec
from playwright.async_api import Browser, BrowserContext, Page, Playwright, ProxySettings, async_playwright

from intunedd.policy.browser_hosts import label
from intunedd.workers import auth, protocol, reaper, runtime_contract, storage_state
from intunedd.workers.cdp import debuggable_context
from intunedd.workers.conventions import (
    HOOK_FILE,
    HOOK_FUNCTION,
    HOOK_MODULE,
    InvalidHookResult,
    SetupHook,
    automation_arguments,
    has_setup_hook,
    setup_context,
)
from intunedd.workers.limits import (
    LOG_MARKER_RESERVE_BYTES,
    bound_error,
    log_line,
    log_truncated_line,
    result_too_big,
    truncate_utf8,
)
from intunedd.workers.protocol import (
    Abort,
    AttemptError,
    AttemptLimits,
    Done,
    ErrorCode,
    Extend,
    ExtendedPayload,
    Ready,
    Start,
    StoreGet,
    StoreReply,
    StoreSet,
    WorkerConfig,
)
from intunedd.workers.shim import intuned_browser, intuned_runtime
from intunedd.workers.shim.intuned_runtime import IntunedContext

CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
)
BROWSER_GONE_EXIT = 4
# An API name is a relative path of plain segments: no dots, so it can neither climb out of api/
# nor change meaning when turned into the dotted module name Intuned imports.
_API_NAME = re.compile(r"(?:[\w-]+/)*[\w-]+")

Automation = Callable[..., Awaitable[Any]]


class _ApiError(Exception):
    """The API (or the project's setup hook) could not be loaded or is invalid; carries the Done error."""

    def __init__(self, error: AttemptError) -> None:
        super().__init__(error.message)
        self.error = error


def _unexpected(message: str) -> AttemptError:
    return AttemptError(code="script-unexpected-error", message=message, retryable=False)


# --- API modules -------------------------------------------------------------------------------


class ApiLoader:
    """Imports ``api/<name>.py`` the way Intuned does: as module ``api.<name>`` from the project root.

    Only one project's modules live in ``sys.modules`` at a time: on switching projects every module
    loaded from the previous one is dropped, so two projects' ``utils.py`` never collide.
    """

    def __init__(self) -> None:
        self._project: Path | None = None
        self._automations: dict[tuple[Path, str], Automation] = {}
        self._hooks: dict[Path, SetupHook] = {}

    @contextmanager
    def entered(self, project_dir: Path) -> Iterator[None]:
        """Make ``project_dir`` importable and the working directory for one attempt.

        It stays on ``sys.path`` for the whole attempt (not only the first import) because
        automations may import lazily, and it is the cwd because Intuned runs projects from there.
        """
        if project_dir != self._project:
            if self._project is not None:
                _forget_modules_under(self._project)
            self._automations.clear()
            self._hooks.clear()
            self._project = project_dir
        entry = str(project_dir)
        sys.path.insert(0, entry)
        previous_cwd = os.getcwd()
        os.chdir(project_dir)
        try:
            yield
        finally:
            os.chdir(previous_cwd)
            sys.path.remove(entry)

    def automation(self, project_dir: Path, api: str) -> Automation:
        if not _API_NAME.fullmatch(api) or not (project_dir / "api" / f"{api}.py").is_file():
            raise _ApiError(_unexpected(f"API '{api}' not found: no file api/{api}.py in the project"))
        return self._function(project_dir, f"api/{api}", ("automation",), f"API '{api}'")

    def auth_function(self, project_dir: Path, entry: str) -> Automation:
        """``auth-sessions/create`` or ``auth-sessions/check``, whose function Intuned looks up by any name
        of ``auth.ENTRY_NAMES``."""
        if not (project_dir / f"{entry}.py").is_file():
            raise _ApiError(_unexpected(f"no file {entry}.py in the project"))
        return self._function(project_dir, entry, auth.ENTRY_NAMES, f"{entry}.py")

    def _function(self, project_dir: Path, entry: str, names: tuple[str, ...], where: str) -> Automation:
        key = (project_dir, entry)
        if key not in self._automations:
            self._automations[key] = _load_coroutine(entry.replace("/", "."), names, where)
        return self._automations[key]

    def setup_hook(self, project_dir: Path) -> SetupHook | None:
        """The project's ``setup_context`` hook, or None when it has no ``hooks/setup_context.py``."""
        if not has_setup_hook(project_dir):
            return None
        if project_dir not in self._hooks:
            self._hooks[project_dir] = _load_coroutine(HOOK_MODULE, (HOOK_FUNCTION,), HOOK_FILE.as_posix())
        return self._hooks[project_dir]


def _load_coroutine(module_name: str, names: tuple[str, ...], where: str) -> Callable[..., Awaitable[Any]]:
    importlib.invalidate_caches()  # the project's files may be newer than the import system's listings
    try:
        module = importlib.import_module(module_name)
    except (SystemExit, KeyboardInterrupt) as exc:
        # asyncio re-raises these out of the event loop, which would end the worker; Intuned counts
        # whatever the module raises while it is imported as the API's own error.
        raise _ApiError(_user_error(exc)) from exc
    name, function = next(((n, getattr(module, n)) for n in names if hasattr(module, n)), (names[0], None))
    if function is None:
        raise _ApiError(_unexpected(f"{where} has no {' or '.join(repr(n) for n in names)} function"))
    if not inspect.iscoroutinefunction(function):
        raise _ApiError(_unexpected(f"{where}: '{name}' must be defined with 'async def'"))
    return function  # type: ignore[no-any-return]


def _forget_modules_under(project_dir: Path) -> None:
    for name, module in list(sys.modules.items()):
        paths = _module_paths(module)
        if paths and all(Path(p).is_relative_to(project_dir) for p in paths):
            del sys.modules[name]


def _module_paths(module: ModuleType) -> list[str]:
    # Namespace packages (an ``api/`` without __init__.py) have no __file__, only __path__.
    file = getattr(module, "__file__", None)
    if file:
        return [file]
    return [str(p) for p in getattr(module, "__path__", [])]


# --- attempt logs ------------------------------------------------------------------------------


class AttemptLog:
    """The JSON-lines log of one attempt: what the automation prints and logs, then a system line.

    Bounded: a message is cut at ``max_log_line_bytes``, and once the file would pass
    ``max_log_bytes`` a last line says the log was truncated and nothing more is written.
    """

    def __init__(self, path: Path, limits: AttemptLimits) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("a", encoding="utf-8", errors="replace")
        self._lock = threading.Lock()  # user code may print from threads
        self._limits = limits
        self._written = self._file.tell()
        self._full = False

    @property
    def max_line_bytes(self) -> int:
        return self._limits.max_log_line_bytes

    def write(self, stream: str, message: str, level: str | None = None) -> None:
        line = log_line(stream, truncate_utf8(message, self._limits.max_log_line_bytes), level)
        size = len(line.encode("utf-8", "replace"))
        with self._lock:
            if self._full:
                return
            if self._written + size > self._limits.max_log_bytes - LOG_MARKER_RESERVE_BYTES:
                self._full = True
                line = log_truncated_line(self._limits.max_log_bytes)
            self._file.write(line)
            self._written += size

    @contextmanager
    def capture(self) -> Iterator[None]:
        """Send ``sys.stdout``, ``sys.stderr`` and the root logger here until the block ends."""
        saved = sys.stdout, sys.stderr
        out, err = _LineWriter(self, "stdout"), _LineWriter(self, "stderr")
        handler = _LogHandler(self)
        root = logging.getLogger()
        saved_level = root.level
        sys.stdout, sys.stderr = out, err
        root.addHandler(handler)
        root.setLevel(logging.DEBUG)
        try:
            yield
        finally:
            root.setLevel(saved_level)
            root.removeHandler(handler)
            sys.stdout, sys.stderr = saved
            out.detach_from_log()
            err.detach_from_log()

    def close(self) -> None:
        self._file.close()


class _LineWriter(io.TextIOBase):
    """A text stream that turns every complete written line into one log entry.

    Code may keep a reference past its attempt (``logging.StreamHandler()`` made at import time
    captures ``sys.stderr``), so once detached it forwards to whatever ``sys.stdout``/``sys.stderr``
    is then, typically the next attempt's writer.
    """

    def __init__(self, log: AttemptLog, stream: str) -> None:
        super().__init__()
        self._log: AttemptLog | None = log
        self._stream = stream
        self._partial = ""
        self._cut = False  # the start of the current line was already logged (cut); drop the rest

    def detach_from_log(self) -> None:
        self.flush()
        self._log = None

    def write(self, text: str) -> int:
        if self._log is None:
            return int(getattr(sys, self._stream).write(text))
        *lines, self._partial = (self._partial + text).split("\n")
        for line in lines:
            if not self._cut:
                self._log.write(self._stream, line)
            self._cut = False
        if self._cut:
            self._partial = ""
        elif len(self._partial) > 4 * self._log.max_line_bytes:
            # A line that does not end: log its start now (certainly over the limit, so cut with a
            # marker, which counts only what was seen so far) instead of buffering it all.
            self._log.write(self._stream, self._partial)
            self._partial, self._cut = "", True
        return len(text)

    def flush(self) -> None:
        if self._log is not None and self._partial:
            self._log.write(self._stream, self._partial)
            self._partial = ""

    def writable(self) -> bool:
        return True

    @property
    def encoding(self) -> str:  # type: ignore[override]  # TextIOBase says None; callers want a codec
        return "utf-8"


class _LogHandler(logging.Handler):
    def __init__(self, log: AttemptLog) -> None:
        super().__init__(logging.DEBUG)
        self._log = log

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._log.write("log", self.format(record), record.levelname)
        except Exception:  # a bad format string in user code must not break the automation
            self.handleError(record)


# --- results and errors ------------------------------------------------------------------------


def _model_dump(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json")
    # Subclasses of JSON's types, which json.dumps (Intuned's encoder) takes as their base type:
    # BeautifulSoup's NavigableString is a str, for one.
    base: type = next((t for t in (str, int, float, list, dict) if isinstance(value, t)), object)
    if base is not object:
        return base(value)
    raise TypeError(f"Encoding objects of type {type(value).__name__} is unsupported")


_result_encoder = msgspec.json.Encoder(enc_hook=_model_dump)


def _failure(code: ErrorCode, message: str, *, retryable: bool = True, details: Any = None) -> Done:
    error = AttemptError(code=code, message=message, retryable=retryable, details=details)
    return Done(success=False, error=error)


def _user_failure(exc: BaseException) -> Done:
    return Done(success=False, error=_user_error(exc))


def _user_error(exc: BaseException) -> AttemptError:
    # Projects may bring Intuned's own NonRetryableError, so the class is matched by name.
    non_retryable = any(cls.__name__ == "NonRetryableError" for cls in type(exc).__mro__)
    return AttemptError(
        code="script-execution-exception",
        message=str(exc) or type(exc).__name__,
        retryable=not non_retryable,
        details={
            "name": type(exc).__name__,
            "message": str(exc),
            "stack": "".join(traceback.format_exception(exc)),
        },
    )


def _success(result: Any, payloads: list[dict[str, Any]], max_result_bytes: int, session: Any = None) -> Done:
    try:
        raw = _result_encoder.encode(result)
        extended = msgspec.json.decode(_result_encoder.encode(payloads), type=list[ExtendedPayload])
    except Exception:  # whatever the user returned, failing to encode it is the user's error
        return _failure("script-execution-exception", "Result is not JSON serializable")
    if len(raw) > max_result_bytes:
        return Done(success=False, error=result_too_big(len(raw), max_result_bytes))
    return Done(success=True, result=msgspec.Raw(raw), extended_payloads=extended, session=session)


def _bounded(done: Done, start: Start) -> Done:
    """``done`` shrunk to what the daemon accepts: errors cut to the limits; a session over the result limit,
    or output the daemon would refuse as a protocol violation (huge extended payloads), turned into
    result-too-big-error."""
    if done.error is not None:
        done = msgspec.structs.replace(done, error=bound_error(done.error, start.limits))
    if done.session is not None and (size := len(_result_encoder.encode(done.session))) > start.max_result_bytes:
        done = Done(success=False, error=result_too_big(size, start.max_result_bytes))
    size = len(protocol.encode(done)) - protocol.HEADER.size
    limit = protocol.max_from_worker_bytes(start.max_result_bytes)
    if size > limit:
        output = "result, session and extended payloads"
        message = f"The attempt's output ({output}) is {size} bytes, over the limit of {limit}"
        done = _failure("result-too-big-error", message, details={"sizeInBytes": size, "maxSizeInBytes": limit})
    return done


def _summary(done: Done) -> str:
    if done.success:
        return "attempt completed"
    if done.aborted:
        return "attempt aborted"
    assert done.error is not None
    return f"attempt failed: {done.error.code}: {done.error.message}"


# --- browser contexts --------------------------------------------------------------------------


def _proxy_settings(proxy: str) -> ProxySettings:
    """``http://user:pass@host:port`` → Playwright's ``{server, username, password}``."""
    url = urlsplit(proxy)
    settings = ProxySettings(server=f"{url.scheme}://{url.hostname}" + (f":{url.port}" if url.port else ""))
    if url.username is not None:
        settings["username"] = unquote(url.username)
    if url.password is not None:
        settings["password"] = unquote(url.password)
    return settings


def _context_options(start: Start) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if start.proxy:
        options["proxy"] = _proxy_settings(start.proxy)
    if start.video_dir:
        options["record_video_dir"] = start.video_dir
    return options


async def _new_page(browser: Browser, trace: bool | None = None, **options: Any) -> tuple[BrowserContext, Page]:
    """A context and its page; ``trace`` not None: traced from the start, with screenshots if True
    (tracing started before the page exists costs less than on a page already open)."""
    context = await browser.new_context(**options)
    if trace is not None:
        await _start_trace(context, trace)
    return context, await context.new_page()


async def _start_trace(context: BrowserContext, screenshots: bool) -> None:
    # DOM snapshots are what the trace viewer shows for each action; Playwright's own sources are noise.
    await context.tracing.start(screenshots=screenshots, snapshots=True, sources=False)


def _launch_options(config: WorkerConfig) -> dict[str, Any] | None:
    """``BrowserType.launch`` arguments for the local browser, or None when the browser is remote."""
    if config.remote_endpoint:
        return None
    return {
        "executable_path": config.browser_executable,
        "headless": config.headless,
        "args": [*CHROMIUM_ARGS, *config.browser_args],
    }


async def _open_browser(playwright: Playwright, config: WorkerConfig) -> Browser:
    chromium = playwright.chromium
    launch = _launch_options(config)
    if launch is not None:
        return await chromium.launch(**launch)
    url = config.remote_endpoint
    try:
        match config.remote_protocol:
            case "playwright":
                return await chromium.connect(url)
            case "cdp":
                return await chromium.connect_over_cdp(url)
            case other:
                raise ValueError(f"unknown remote_protocol {other!r}: use 'playwright' or 'cdp'")
    except Exception as e:  # noqa: BLE001 - any failure to connect ends this worker, told without secrets
        raise BrowserHostUnreachable(_without_secrets(f"{type(e).__name__}: {e}", url)) from None


class BrowserHostUnreachable(Exception):
    """The worker's browser host did not take its connection (the message names only the host)."""


def _without_secrets(text: str, url: str) -> str:
    """``text`` with ``url`` shown as its label, and its path, query and user info wherever they
    appear as "…": a browser host's URL may carry a token, and Playwright's messages repeat the URL."""
    parts = urlsplit(url)
    text = text.replace(url, label(url))
    for secret in (parts.query, parts.password, parts.username, parts.path if len(parts.path) > 1 else None):
        if secret:
            text = text.replace(secret, "…")
    return text


# --- the worker ------------------------------------------------------------------------------


@dataclass
class _Attempt:
    start: Start
    aborted: bool = False
    state: storage_state.StorageState | None = None  # Start.auth_state, checked
    task: asyncio.Task[Any] | None = None
    cdp_url: str | None = None  # of the attempt's own browser, when the project has a setup_context hook
    tracing: bool | None = None  # tracing already started on its context (with screenshots if True)

    def abort(self) -> None:
        self.aborted = True
        if self.task is not None:
            self.task.cancel()


async def _read_frame(reader: asyncio.StreamReader) -> protocol.ToWorker | None:
    try:
        header = await reader.readexactly(protocol.HEADER.size)
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise
        return None
    body = await reader.readexactly(protocol.frame_length(header, protocol.MAX_TO_WORKER_BYTES))
    return protocol.decode_to_worker(body)


class Worker:
    """Serves attempts on one socket with one browser. Implements ``intuned_runtime.WorkerChannel``."""

    def __init__(
        self,
        browser: Browser,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        intuned: runtime_contract.IntunedRuntime,
        launch: dict[str, Any] | None,
    ) -> None:
        self._browser = browser
        self._launch = launch  # how to launch a browser like ours; None when ours is remote
        self._intuned = intuned
        self._reader = reader
        self._writer = writer
        # The daemon sends the next Start only after Done, so one slot is enough; a second queued
        # Start is a protocol violation and fails loudly (QueueFull).
        self._starts: asyncio.Queue[_Attempt] = asyncio.Queue(maxsize=1)
        self._latest: _Attempt | None = None
        self._warm: tuple[BrowserContext, Page] | None = None
        # How the next plain attempt is likely traced (as the last one was): the warm context is
        # traced so ahead of time, off the attempt's path.
        self._warm_trace: bool | None = None
        self._request_ids = itertools.count(1)
        self._store_replies: dict[int, asyncio.Future[StoreReply]] = {}
        self._apis = ApiLoader()

    async def serve(self) -> None:
        """Run until the daemon closes the socket."""
        async with asyncio.TaskGroup() as tasks:
            runner = tasks.create_task(self._run_attempts())
            await self._read_frames()
            runner.cancel()

    # WorkerChannel

    def send_extend(self) -> None:
        self._writer.write(protocol.encode(Extend()))

    async def store_get(self, key: str) -> Any:
        return await self._store_request(lambda request_id: StoreGet(request_id=request_id, key=key))

    async def store_set(self, key: str, value: Any) -> None:
        await self._store_request(lambda request_id: StoreSet(request_id=request_id, key=key, value=value))

    # internals

    async def _send(self, frame: protocol.FromWorker) -> None:
        self._writer.write(protocol.encode(frame))
        await self._writer.drain()

    async def _store_request(self, make: Callable[[int], StoreGet | StoreSet]) -> Any:
        request_id = next(self._request_ids)
        frame = protocol.encode(make(request_id))
        start = self._latest.start if self._latest is not None else None
        if start is not None and len(frame) > protocol.max_from_worker_bytes(start.max_result_bytes):
            raise ValueError(f"persistent_store: the value is too big ({len(frame)} bytes encoded)")
        reply: asyncio.Future[StoreReply] = asyncio.get_running_loop().create_future()
        self._store_replies[request_id] = reply
        try:
            self._writer.write(frame)
            await self._writer.drain()
            answer = await reply
        finally:
            del self._store_replies[request_id]
        if answer.error is not None:
            raise RuntimeError(answer.error)
        return answer.value

    async def _read_frames(self) -> None:
        while (frame := await _read_frame(self._reader)) is not None:
            match frame:
                case Start():
                    self._latest = _Attempt(frame)
                    self._starts.put_nowait(self._latest)
                case Abort():
                    # An Abort after Done lands on a finished attempt and changes nothing.
                    if self._latest is not None:
                        self._latest.abort()
                case StoreReply():
                    # A reply can outlive its request when the attempt was aborted meanwhile.
                    waiter = self._store_replies.get(frame.request_id)
                    if waiter is not None and not waiter.done():
                        waiter.set_result(frame)

    async def _run_attempts(self) -> None:
        while True:
            await self._prepare_next()
            attempt = await self._starts.get()
            await self._send(await self._run(attempt))

    async def _prepare_next(self) -> None:
        await self._intuned.prepare()
        if self._warm is None:
            self._warm = await _new_page(self._browser, self._warm_trace)

    @asynccontextmanager
    async def _context_for(self, attempt: _Attempt) -> AsyncIterator[tuple[BrowserContext, Page]]:
        start = attempt.start
        options = _context_options(start)
        if self._launch is not None and has_setup_hook(Path(start.project_dir)):
            # The hook reaches the browser over CDP, where only a browser's default context is the
            # one a client gets as contexts[0]: so a browser of the attempt's own, as on Intuned.
            async with debuggable_context(self._browser.browser_type, self._launch, options) as debuggable:
                context, page, attempt.cdp_url = debuggable
                yield context, page
            return
        if options:  # the warm context has default options; keep it for the next plain attempt
            context, page = await _new_page(self._browser, **options)
        else:
            warm, self._warm = self._warm, None
            context, page = warm if warm is not None else await _new_page(self._browser, self._warm_trace)
            attempt.tracing = self._warm_trace
        try:
            yield context, page
        finally:
            await context.close()  # also finishes the video, if one was recorded

    async def _run(self, attempt: _Attempt) -> Done:
        start = attempt.start
        log = AttemptLog(Path(start.log_path), start.limits)
        # Whatever the automation starts is a child of this process (or, orphaned, reparented to it,
        # the subreaper): anything that was not here before goes when the attempt ends.
        baseline = await asyncio.to_thread(reaper.own_children)
        try:
            try:
                done = _bounded(await self._dispatch(attempt, log), start)
            finally:
                await asyncio.to_thread(reaper.kill_new_children, baseline)
            log.write("system", _summary(done))
        finally:
            log.close()
        return done

    async def _dispatch(self, attempt: _Attempt, log: AttemptLog) -> Done:
        try:
            attempt.state = auth.storage_state(attempt.start.auth_state)
        except auth.InvalidState as e:
            return Done(success=False, error=_unexpected(str(e)))
        if attempt.start.runtime == "intuned":  # Intuned's runtime opens its own browser and context
            return await self._intuned.run(attempt, log, self.send_extend)
        if attempt.start.function == "collection-scrape":
            return await self._collection_scrape(attempt)
        return await self._in_context(attempt, log)

    async def _collection_scrape(self, attempt: _Attempt) -> Done:
        """As its own task, so an Abort cancels it as it does an automation."""
        # Imported here: only the daemon's own workers scrape, and a project's environment
        # (Intuned's runtime path) has none of the collections' libraries (parsel, html-to-markdown).
        from intunedd.workers import collection_scrape

        start = attempt.start
        task = asyncio.create_task(collection_scrape.scrape(self._browser, start, _context_options(start)))
        attempt.task = task
        try:
            await asyncio.wait({task})
        finally:
            task.cancel()
        if attempt.aborted or task.cancelled():
            return protocol.aborted()
        exc = task.exception()
        return _user_failure(exc) if exc is not None else task.result()

    async def _in_context(self, attempt: _Attempt, log: AttemptLog) -> Done:
        async with self._context_for(attempt) as (context, page):
            return await self._traced(attempt, context, page, log)

    async def _traced(self, attempt: _Attempt, context: BrowserContext, page: Page, log: AttemptLog) -> Done:
        trace_path = attempt.start.trace_path
        wanted = attempt.start.trace_screenshots if trace_path is not None else None
        if attempt.tracing != wanted:
            if attempt.tracing is not None:
                await context.tracing.stop()  # started ahead for a traced attempt: discarded
            if wanted is not None:
                await _start_trace(context, wanted)
        self._warm_trace = wanted
        if trace_path is None:
            return await self._execute(attempt, page, log)
        try:
            return await self._execute(attempt, page, log)
        finally:
            Path(trace_path).parent.mkdir(parents=True, exist_ok=True)
            await context.tracing.stop(path=trace_path)

    async def _execute(self, attempt: _Attempt, page: Page, log: AttemptLog) -> Done:
        """Run the automation as its own task, so an Abort can cancel just that."""
        if attempt.aborted:
            return protocol.aborted()
        start = attempt.start
        project_dir = Path(start.project_dir).resolve()
        if not project_dir.is_dir():
            return Done(success=False, error=_unexpected(f"project directory {project_dir} does not exist"))
        runtime = IntunedContext(run_context=start.context, channel=self, auth_parameters=start.auth_parameters)
        with log.capture(), runtime.activate(), self._apis.entered(project_dir):
            task = asyncio.create_task(self._call(project_dir, attempt, page))
            attempt.task = task
            try:
                await asyncio.wait({task})
            finally:
                task.cancel()  # only matters when the runner itself is cancelled (daemon gone)
        if attempt.aborted:
            return protocol.aborted()
        if task.cancelled():
            return _failure("script-execution-exception", "Automation was cancelled")
        exc = task.exception()
        if isinstance(exc, _ApiError):
            return Done(success=False, error=exc.error)
        if exc is not None:
            return _user_failure(exc)
        result, session = task.result()
        if start.function == "auth-check":
            return auth.check_done(result)
        return _success(result, runtime.extended_payloads, start.max_result_bytes, session)

    def _function(self, project_dir: Path, start: Start) -> Automation:
        if start.function == "api":
            return self._apis.automation(project_dir, start.api)
        return self._apis.auth_function(project_dir, auth.entry(start))

    async def _call(self, project_dir: Path, attempt: _Attempt, page: Page) -> tuple[Any, Any]:
        """The function's result and, for auth-create, the session it left in its context."""
        start = attempt.start
        function = self._function(project_dir, start)
        parameters = auth.entry_parameters(start)
        hook = self._apis.setup_hook(project_dir)
        prepared: AbstractAsyncContextManager[tuple[Any, Page]] = nullcontext((page.context, page))
        if hook is not None:
            if attempt.cdp_url is None:
                message = f"{HOOK_FILE.as_posix()} needs a local browser to reach over CDP; the worker's is remote"
                raise _ApiError(_unexpected(message))
            prepared = setup_context(
                hook,
                cdp_url=attempt.cdp_url,
                api_name=auth.entry(start),
                parameters=parameters,
                context=page.context,
                page=page,
            )
        try:
            async with prepared as (context, page):
                # Into the context the function gets, which Intuned's runtime also does after the hook.
                await auth.load_state(context, attempt.state)
                args, kwargs = automation_arguments(function, page, context, parameters)
                result = await function(*args, **kwargs)
                return result, await auth.capture(context) if start.function == "auth-create" else None
        except InvalidHookResult as e:
            raise _ApiError(_unexpected(str(e))) from e


async def _serve(config: WorkerConfig) -> None:
    channel = socket.socket(fileno=config.fd)
    reader, writer = await asyncio.open_unix_connection(sock=channel)
    async with async_playwright() as playwright:
        browser = await _open_browser(playwright, config)
        closing = False

        def browser_gone(_: Browser) -> None:
            # Nothing works here without the browser (a remote host gone, Chromium killed): exiting
            # makes the daemon fail a running attempt as a crash, to be retried on another worker.
            if not closing:
                print("intunedd worker: the browser went away; exiting", file=sys.stderr, flush=True)
                os._exit(BROWSER_GONE_EXIT)

        browser.on("disconnected", browser_gone)
        try:
            writer.write(protocol.encode(Ready(pid=os.getpid(), browser_version=browser.version)))
            await writer.drain()
            executable = config.browser_executable or playwright.chromium.executable_path
            chromium = [executable, *CHROMIUM_ARGS, *config.browser_args]
            intuned = runtime_contract.IntunedRuntime(chromium, config.headless)
            try:
                await Worker(browser, reader, writer, intuned, _launch_options(config)).serve()
            finally:
                await intuned.close()
        finally:
            closing = True
            await browser.close()
    writer.close()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    config = msgspec.json.decode(args[0], type=WorkerConfig)
    # Projects written for Intuned import ``intuned_runtime``; they must get this shim even when
    # Intuned's package is installed, so it is registered before any project code is imported.
    sys.modules["intuned_runtime"] = intuned_runtime
    sys.modules.update(intuned_browser.top_level_modules())
    reaper.become_subreaper()
    try:
        asyncio.run(_serve(config))
    finally:
        # Whatever is still ours (started between attempts, or orphaned here) would outlive us.
        reaper.kill_new_children(set())
    return 0


if __name__ == "__main__":
    sys.exit(main())
