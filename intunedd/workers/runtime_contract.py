"""Runs an attempt through Intuned's own, unmodified ``intuned-runtime``, driven by its platform contract.

The runtime is the ``intuned-internal project run-interface <socket>`` command installed next to this
worker's Python (the worker runs inside the project's environment). It connects as a client to a unix
socket we listen on and speaks 4-byte big-endian length + UTF-8 JSON frames (spec §6.3): we send one
``start`` (and maybe ``abort``), it sends ``extend`` frames and one final ``done``, then exits. One
runtime process serves one attempt, and in ``cdp`` mode it drives ``contexts[0]`` of the browser it is
pointed at, so every attempt needs a fresh (runtime process, Chromium) pair.

Starting the pair costs seconds, so one is kept warm between attempts: made after an attempt for the
same project and settings, taken by the next attempt, killed after it. Chromium is launched here as a
plain subprocess with ``--remote-debugging-port=0`` and its port read from ``DevToolsActivePort``:
this process owns its lifetime (kills and reaps it by pid), it runs the daemon's configured executable
and arguments exactly as ``child._open_browser`` would, and it does not depend on the runtime's newer
``startBrowser`` message.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import os
import shutil
import socket
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import msgspec
import psutil

from intunedd.workers import auth, protocol, reaper, storage_state
from intunedd.workers.cdp import BrowserExited, devtools_port
from intunedd.workers.limits import result_too_big
from intunedd.workers.protocol import AttemptError, Done, ExtendedPayload, Start

if TYPE_CHECKING:
    from collections.abc import Callable

    from intunedd.workers.child import AttemptLog, _Attempt

RUNTIME_COMMAND = "intuned-internal"
STARTUP_TIMEOUT_S = 60.0
# With the output drain below, under the daemon's ``pool.abort_grace_s`` (3 s by default): an aborted
# Done arrives in time even from a runtime that ignores ``abort``, so the worker is kept.
ABORT_GRACE_S = 1.5
# Once the runtime is killed its pipes end at once, unless something it started escaped the kill.
OUTPUT_DRAIN_TIMEOUT_S = 0.5
_READ_CHUNK = 64 * 1024

# Runtime error codes (spec §6.3) that say the API itself is missing or malformed, or that we sent
# something the runtime refused: retrying the same code and input cannot help.
_NOT_RUNNABLE = {"APINotFoundError", "InvalidAPIError", "InternalInvalidInputError"}


class _Envelope(msgspec.Struct):
    """Any frame the runtime sends; types we do not know (a newer runtime's) are skipped."""

    type: str
    success: bool = False
    result: Any = None


class _Success(msgspec.Struct, rename="camel"):
    result: Any = None
    extended_payloads: list[ExtendedPayload] | None = None
    session: Any = None


class _Failure(msgspec.Struct):
    code: str
    details: Any = None
    retryable: bool | None = None


@dataclass(frozen=True)
class _Settings:
    """What a runtime process is started with (its cwd and environment): a warm one fits only these."""

    project_dir: Path
    project_name: str
    functions_domain: str | None
    workspace_id: str | None
    max_result_bytes: int

    @classmethod
    def of(cls, start: Start) -> _Settings:
        return cls(
            project_dir=Path(start.project_dir).resolve(),
            project_name=start.context.project_name,
            functions_domain=start.functions_domain,
            workspace_id=start.workspace_id,
            max_result_bytes=start.max_result_bytes,
        )

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env["__INTUNED__MAX_RESULT_SIZE_BYTES"] = str(self.max_result_bytes)
        env["INTUNED_PROJECT_ID"] = self.project_name
        if self.functions_domain is not None:
            env["FUNCTIONS_DOMAIN"] = self.functions_domain
        if self.workspace_id is not None:
            env["INTUNED_WORKSPACE_ID"] = self.workspace_id
        return env


class RuntimeNotStarted(Exception):
    pass


@dataclass
class _Pair:
    settings: _Settings
    workdir: Path
    chromium: asyncio.subprocess.Process
    cdp_address: str
    runtime: asyncio.subprocess.Process
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    async def send(self, message: dict[str, Any]) -> None:
        body = msgspec.json.encode(message)
        self.writer.write(protocol.HEADER.pack(len(body)) + body)
        await self.writer.drain()


def _kill_trees(pids: list[int]) -> None:
    """SIGKILL the processes and their descendants, and wait until the descendants are gone (Chromium's
    helpers write into its profile until then). The roots are left to asyncio to reap."""
    roots, descendants = [], []
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            root = psutil.Process(pid)
            roots.append(root)
            descendants += root.children(recursive=True)
    reaper.kill_trees(roots)
    psutil.wait_procs(descendants, timeout=reaper.REAP_TIMEOUT_S)


async def _kill(processes: list[asyncio.subprocess.Process], workdir: Path) -> None:
    await asyncio.to_thread(_kill_trees, [process.pid for process in processes])
    for process in processes:
        await process.wait()
    await asyncio.to_thread(shutil.rmtree, workdir, True)


def _exited(pair: _Pair) -> bool:
    return pair.runtime.returncode is not None or pair.chromium.returncode is not None


async def _kill_pair(pair: _Pair | None) -> None:
    if pair is not None:
        pair.writer.close()
        await _kill([pair.runtime, pair.chromium], pair.workdir)


async def _accepted(listener: socket.socket, runtime: asyncio.subprocess.Process) -> socket.socket:
    loop = asyncio.get_running_loop()
    accept = asyncio.ensure_future(loop.sock_accept(listener))
    exited = asyncio.ensure_future(runtime.wait())
    try:
        await asyncio.wait({accept, exited}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        exited.cancel()
    if not accept.done():
        accept.cancel()
        raise RuntimeNotStarted(f"Intuned's runtime exited with code {runtime.returncode} before connecting")
    connection, _ = accept.result()
    return connection


class IntunedRuntime:
    """Serves the attempts whose Start says ``runtime="intuned"``, one (runtime, Chromium) pair each."""

    def __init__(self, chromium: list[str], headless: bool) -> None:
        """``chromium``: the browser's executable and arguments, as the worker launches its own."""
        self._chromium = chromium
        self._headless = headless
        self._warm: _Pair | None = None
        self._last: _Settings | None = None

    async def prepare(self) -> None:
        """Start a pair for the settings of the last attempt, unless one is ready. Never raises: a pair
        that cannot start now is started (and its failure reported) by the next attempt."""
        if self._warm is not None or self._last is None:
            return
        try:
            self._warm = await self._spawn(self._last)
        except Exception:  # noqa: BLE001 - retried, and reported, by the next attempt
            self._warm = None

    async def close(self) -> None:
        warm, self._warm = self._warm, None
        await _kill_pair(warm)

    async def run(self, attempt: _Attempt, log: AttemptLog, send_extend: Callable[[], None]) -> Done:
        if attempt.aborted:
            return protocol.aborted()
        settings = _Settings.of(attempt.start)
        self._last = settings
        pair = await self._take(settings)
        if isinstance(pair, Done):
            return pair
        pumps = [
            asyncio.create_task(_pump(stream, log, name))
            for stream, name in ((pair.runtime.stdout, "stdout"), (pair.runtime.stderr, "stderr"))
            if stream is not None
        ]
        try:
            return await self._exchange(pair, attempt, send_extend)
        finally:
            await _kill_pair(pair)
            await asyncio.wait(pumps, timeout=OUTPUT_DRAIN_TIMEOUT_S)
            for pump in pumps:
                pump.cancel()

    async def _take(self, settings: _Settings) -> _Pair | Done:
        warm, self._warm = self._warm, None
        if warm is not None and warm.settings == settings and not _exited(warm):
            return warm
        await _kill_pair(warm)
        try:
            return await self._spawn(settings)
        except Exception as e:  # noqa: BLE001 - whatever stops the runtime from starting fails only this attempt
            message = f"Intuned's runtime could not be started: {e or type(e).__name__}"
            return Done(success=False, error=AttemptError("script-unexpected-error", message, retryable=False))

    async def _spawn(self, settings: _Settings) -> _Pair:
        command = shutil.which(RUNTIME_COMMAND, path=str(Path(sys.executable).parent))
        if command is None:
            raise RuntimeNotStarted(f"'{RUNTIME_COMMAND}' is not installed next to {sys.executable}")
        if not settings.project_dir.is_dir():
            raise RuntimeNotStarted(f"project directory {settings.project_dir} does not exist")
        workdir = Path(tempfile.mkdtemp(prefix="intunedd-runtime-"))
        started: list[asyncio.subprocess.Process] = []
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            async with asyncio.timeout(STARTUP_TIMEOUT_S):
                chromium = await self._launch_chromium(workdir)
                started.append(chromium)
                listener.bind(str(workdir / "runtime.sock"))
                listener.listen(1)
                listener.setblocking(False)
                runtime = await asyncio.create_subprocess_exec(
                    command, "project", "run-interface", str(workdir / "runtime.sock"),
                    cwd=settings.project_dir, env=settings.environment(), stdin=asyncio.subprocess.DEVNULL,
                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                )  # fmt: skip
                started.append(runtime)
                try:
                    port, _path = await devtools_port(workdir / "profile", lambda: chromium.returncode is None)
                except BrowserExited:
                    raise RuntimeNotStarted(
                        f"Chromium exited with code {chromium.returncode} before listening for CDP"
                    ) from None
                connection = await _accepted(listener, runtime)
            reader, writer = await asyncio.open_unix_connection(sock=connection)
        except BaseException:
            await _kill(started, workdir)
            raise
        finally:
            listener.close()
        return _Pair(settings, workdir, chromium, f"http://127.0.0.1:{port}", runtime, reader, writer)

    async def _launch_chromium(self, workdir: Path) -> asyncio.subprocess.Process:
        headless = ["--headless"] if self._headless else []
        return await asyncio.create_subprocess_exec(
            *self._chromium, *headless, "--remote-debugging-port=0", f"--user-data-dir={workdir / 'profile'}",
            "about:blank", stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip

    async def _exchange(self, pair: _Pair, attempt: _Attempt, send_extend: Callable[[], None]) -> Done:
        start = attempt.start
        if start.trace_path is not None:
            Path(start.trace_path).parent.mkdir(parents=True, exist_ok=True)
        parameters = _parameters(start, attempt.state, pair.cdp_address, self._chromium, self._headless)
        try:
            await pair.send({"type": "start", "parameters": parameters})
        except OSError as e:  # a warm runtime that died while waiting
            return _no_valid_output(pair.runtime.returncode, f"it could not be sent the attempt: {e}")
        limit = protocol.max_from_worker_bytes(start.max_result_bytes)
        reading = asyncio.create_task(_until_done(pair.reader, limit, send_extend))
        # _Attempt.abort() cancels attempt.task: here that task only signals the abort.
        abort_signal = asyncio.create_task(asyncio.Event().wait())
        attempt.task = abort_signal
        if attempt.aborted:
            abort_signal.cancel()
        try:
            await asyncio.wait({reading, abort_signal}, return_when=asyncio.FIRST_COMPLETED)
            if attempt.aborted:
                with contextlib.suppress(OSError):
                    await pair.send({"type": "abort", "parameters": {}})
                await asyncio.wait({reading}, timeout=ABORT_GRACE_S)
                return protocol.aborted()
            frame = reading.result()
            if frame is None:  # the runtime is likely gone: wait a moment for its exit code, to report it
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(pair.runtime.wait(), ABORT_GRACE_S)
            return _to_done(frame, start, pair.runtime.returncode)
        finally:
            reading.cancel()
            abort_signal.cancel()


def _parameters(
    start: Start, state: storage_state.StorageState | None, cdp_address: str, chromium: list[str], headless: bool
) -> dict[str, Any]:
    """``RunApiParameters`` (spec §6.3) for one attempt."""
    context = start.context
    run_options: dict[str, Any] = {"environment": "cdp", "cdpAddress": cdp_address}
    if start.proxy:
        # A proxy is set on a browser at launch: the runtime launches one for this attempt itself.
        run_options = {
            "environment": "standalone",
            "headless": headless,
            "proxy": _proxy_config(start.proxy),
            "browserPath": chromium[0],
            "browserArgs": chromium[1:],
        }
    parameters: dict[str, Any] = {
        "automationFunction": {"name": auth.entry(start), "params": auth.entry_parameters(start)},
        "tracing": {"enabled": True, "filePath": start.trace_path} if start.trace_path else {"enabled": False},
        "runOptions": run_options,
        "context": {
            "runId": context.run_id,
            "jobId": context.job_id,
            "jobRunId": context.job_run_id,
            "authSessionId": context.auth_session_id,
            "proxy": context.proxy,
        },
    }
    if start.functions_token is not None:
        parameters["functionsToken"] = start.functions_token
    if state is not None or start.auth_parameters is not None:
        # The runtime loads a session only of type "state" and always needs one: without a state, an empty one.
        session = msgspec.to_builtins(state or storage_state.StorageState())
        parameters["auth"] = {"session": {"type": "state", "state": session}, "parameters": start.auth_parameters}
    if start.function == "auth-create":
        parameters["retrieveSession"] = True
    return parameters


def _proxy_config(proxy: str) -> dict[str, str]:
    url = urlsplit(proxy)
    config = {"server": f"{url.scheme}://{url.hostname}" + (f":{url.port}" if url.port else "")}
    if url.username is not None:
        config["username"] = unquote(url.username)
    if url.password is not None:
        config["password"] = unquote(url.password)
    return config


async def _until_done(
    reader: asyncio.StreamReader, limit: int, send_extend: Callable[[], None]
) -> _Envelope | AttemptError | None:
    """Relay ``extend`` frames until ``done``; None if the stream ends or breaks first, and a frame
    too big to accept (bounded as our own worker's frames are) is the error returned."""
    while True:
        try:
            (length,) = protocol.HEADER.unpack(await reader.readexactly(protocol.HEADER.size))
            if length > limit:
                return result_too_big(length, limit)
            frame = msgspec.json.decode(await reader.readexactly(length), type=_Envelope)
        except (OSError, asyncio.IncompleteReadError, msgspec.DecodeError):
            return None
        if frame.type == "extend":
            send_extend()
        elif frame.type == "done":
            return frame


def _no_valid_output(returncode: int | None, why: str) -> Done:
    exit_code = "" if returncode is None else f" (exit code {returncode})"
    message = f"Intuned's runtime finished without a valid result{exit_code}: {why}"
    return Done(success=False, error=AttemptError("script-no-valid-output-received", message))


def _to_done(frame: _Envelope | AttemptError | None, start: Start, returncode: int | None) -> Done:
    """The runtime's last frame (None: it sent no ``done``) as our Done."""
    if frame is None:
        return _no_valid_output(returncode, "no done message")
    if isinstance(frame, AttemptError):
        return Done(success=False, error=frame)
    try:
        if frame.success:
            success = msgspec.convert(frame.result, _Success)
            if start.function == "auth-check":  # the runtime passes on whatever check returned
                return auth.check_done(success.result)
            payloads = success.extended_payloads or []
            return Done(success=True, result=success.result, extended_payloads=payloads, session=success.session)
        return _failed(msgspec.convert(frame.result, _Failure), start)
    except msgspec.ValidationError as e:
        return _no_valid_output(returncode, f"invalid done message: {e}")


def _failed(failure: _Failure, start: Start) -> Done:
    """The runtime's error (spec §6.3 codes) as our Done, per spec §7."""
    details = failure.details if isinstance(failure.details, dict) else {}
    match failure.code:
        case "AbortedError":
            return protocol.aborted()
        case "ResultTooBigError":
            size, maximum = details.get("sizeInBytes"), details.get("maxSizeInBytes")
            if isinstance(size, int) and isinstance(maximum, int):
                return Done(success=False, error=result_too_big(size, maximum))
            return Done(success=False, error=result_too_big(start.max_result_bytes + 1, start.max_result_bytes))
        case "AutomationError":
            name, message = str(details.get("name", "Error")), str(details.get("message", ""))
            error = AttemptError(
                "script-execution-exception",
                message or name,
                retryable=failure.retryable is not False,
                details={"name": name, "message": message, "stack": str(details.get("stack", ""))},
            )
            return Done(success=False, error=error)
        case code if code in _NOT_RUNNABLE:
            message = f"'{auth.entry(start)}' cannot be run ({code})"
            return Done(success=False, error=AttemptError("script-unexpected-error", message, retryable=False))
        case code:
            message = f"Intuned's runtime failed with {code}"
            return Done(success=False, error=AttemptError("script-unexpected-error", message, details=failure.details))


async def _pump(stream: asyncio.StreamReader, log: AttemptLog, name: str) -> None:
    """Copy one of the runtime's output streams into the attempt log, a line an entry."""
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    partial = ""
    while chunk := await stream.read(_READ_CHUNK):
        *lines, partial = (partial + decoder.decode(chunk)).split("\n")
        for line in lines:
            log.write(name, line)
        if len(partial) > log.max_line_bytes:  # a line that does not end: log its start now, cut by the log
            log.write(name, partial)
            partial = ""
    partial += decoder.decode(b"", final=True)
    if partial:
        log.write(name, partial)
