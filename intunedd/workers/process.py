"""One browser worker process, seen from the daemon: spawn, frame I/O, and the kill ladder."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import msgspec
import trio

from . import protocol, reaper
from .limits import truncate_chars
from .protocol import FromWorker, ToWorker, WorkerConfig
from .sandbox import WorkerUser, spawn_options

log = logging.getLogger(__name__)
SIGTERM_GRACE_S = 2.0
# The worker's WorkerConfig JSON is appended as the last argument.
WORKER_MODULE = ("-m", "intunedd.workers.child")
WORKER_COMMAND = (sys.executable, *WORKER_MODULE)
NICE = shutil.which("nice") or "/usr/bin/nice"


class WorkerEnv(msgspec.Struct, frozen=True):
    """A Python environment workers can run in: ``command`` is the argv to which the worker's
    WorkerConfig JSON is appended; ``key`` names the environment, and workers are told apart by it."""

    key: str
    command: tuple[str, ...]


# The daemon's own environment. The pool runs it with its own ``command`` (a fake worker's, in tests).
DAEMON_ENV = WorkerEnv("", WORKER_COMMAND)


class WorkerDied(Exception):
    """The worker's socket closed: the process exited or crashed."""


class ProtocolViolation(WorkerDied):
    """The worker sent something the protocol does not allow: an oversized, undecodable, invalid or
    unexpected frame. User code runs in the worker, so this is as final as a crash: it is killed."""


class FrameStream:
    """Length-prefixed frames over a trio stream."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self._stream = stream
        self._buffer = bytearray()
        self._send_lock = trio.Lock()

    async def send(self, frame: ToWorker) -> None:
        async with self._send_lock:
            try:
                await self._stream.send_all(protocol.encode(frame))
            except (trio.BrokenResourceError, trio.ClosedResourceError) as e:
                raise WorkerDied("worker socket closed") from e

    async def _read_exactly(self, n: int) -> bytes:
        while len(self._buffer) < n:
            try:
                chunk = await self._stream.receive_some(65536)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as e:
                raise WorkerDied("worker socket closed") from e
            if not chunk:
                raise WorkerDied("worker socket closed")
            self._buffer += chunk
        data = bytes(self._buffer[:n])
        del self._buffer[:n]
        return data

    async def receive(self, *, max_bytes: int) -> FromWorker:
        header = await self._read_exactly(protocol.HEADER.size)
        try:
            length = protocol.frame_length(header, max_bytes)
        except protocol.FrameTooLarge as e:
            raise ProtocolViolation(str(e)) from e
        body = await self._read_exactly(length)
        try:
            return protocol.decode_from_worker(body)
        except msgspec.DecodeError as e:  # also ValidationError
            # msgspec names unknown fields, which the worker chose: keep the message short.
            raise ProtocolViolation(f"invalid frame: {truncate_chars(str(e), 500)}") from e

    async def aclose(self) -> None:
        await self._stream.aclose()


class WorkerProcess:
    def __init__(self, process: trio.Process, frames: FrameStream, browser_version: str = "") -> None:
        self.process = process
        self.frames = frames
        # Our own view of the pid, not the one Ready reports: the worker is not trusted.
        self.pid = process.pid
        self.browser_version = browser_version

    async def kill(self, reason: str) -> int:
        """Kill what the worker started, then SIGTERM, a short grace, then SIGKILL; always reaps and
        logs which step ended it."""
        with trio.CancelScope(shield=True):
            await self.frames.aclose()
            if self.process.returncode is None:
                # Its descendants go first, while they are still its own (one that left the process
                # group with setsid would otherwise outlive it), and with the worker frozen so that
                # it starts nothing more meanwhile. SIGTERM is pending before it thaws, so it never
                # runs again to notice its browser gone.
                self.process.send_signal(signal.SIGSTOP)
                try:
                    await trio.to_thread.run_sync(reaper.kill_descendants, self.process.pid)
                finally:
                    self.process.send_signal(signal.SIGTERM)
                    self.process.send_signal(signal.SIGCONT)
                with trio.move_on_after(SIGTERM_GRACE_S):
                    await self.process.wait()
            step = "SIGTERM"
            if self.process.returncode is None:
                step = "SIGKILL"
                self.process.kill()
                await self.process.wait()
            _kill_process_group(self.process.pid)
        log.info("worker %s stopped by %s (%s), exit %s", self.pid, step, reason, self.process.returncode)
        return int(self.process.returncode or 0)

    async def close(self) -> None:
        """Polite stop: closing the socket tells the worker to close its browser and exit."""
        await self.frames.aclose()
        with trio.move_on_after(SIGTERM_GRACE_S * 2, shield=True):
            await self.process.wait()
        if self.process.returncode is None:
            await self.kill("did not exit after close")


class Verdict(msgspec.Struct, frozen=True):
    reusable: bool
    reason: str = ""


class Lease:
    """A worker lent to one attempt; ``release`` hands it back with a verdict."""

    def __init__(self, worker: WorkerProcess, returned: trio.MemorySendChannel[Verdict]) -> None:
        self.worker = worker
        self._returned = returned
        self.verdict = Verdict(reusable=True)

    def poison(self, reason: str) -> None:
        self.verdict = Verdict(reusable=False, reason=reason)

    def release(self) -> None:
        try:
            self._returned.send_nowait(self.verdict)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the slot is gone (daemon stopping) and has killed the worker itself


def _kill_process_group(pgid: int) -> None:
    # The worker leads its own process group, so Chromium's helpers die with it and a
    # crashed worker never leaves a zombie browser behind.
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _nice_session(pid: int, nice: int) -> None:
    """The worker leads a session of its own; where the kernel schedules sessions as groups
    (autogroup, outside a cgroup's CPU controller), a process's nice only ranks it within its
    group, so the group is niced too."""
    try:
        Path(f"/proc/{pid}/autogroup").write_text(str(nice))
    except OSError:
        # No autogroup here (the process's own nice is what counts), or, without CAP_SYS_ADMIN,
        # another session's nice was set in the last 100 ms: the kernel's limit, worth no wait.
        pass


async def spawn_worker(
    config: WorkerConfig,
    env: Mapping[str, str],
    *,
    start_timeout_s: float,
    command: Sequence[str] = WORKER_COMMAND,
    user: WorkerUser | None = None,
    nice: int = 0,
) -> WorkerProcess:
    """Start a worker (as ``user``, if given; ``nice`` steps below the daemon's priority, which its
    browser inherits) and wait for its Ready; if that fails in any way, the process is killed."""
    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    cfg = msgspec.structs.replace(config, fd=child.fileno())
    # nice(1) execs the worker in place (same pid): no code runs in the child between fork and exec.
    niced = [NICE, "-n", str(nice)] if nice else []
    try:
        process = await trio.lowlevel.open_process(
            [*niced, *command, msgspec.json.encode(cfg).decode()],
            pass_fds=(child.fileno(),),
            start_new_session=True,
            **spawn_options(user, env),
        )
    except BaseException:
        parent.close()
        raise
    finally:
        child.close()
    if nice:
        _nice_session(process.pid, nice)
    frames = FrameStream(trio.SocketStream(trio.socket.from_stdlib_socket(parent)))
    worker = WorkerProcess(process, frames)
    try:
        with trio.fail_after(start_timeout_s):
            ready = await frames.receive(max_bytes=protocol.MAX_READY_BYTES)
        if not isinstance(ready, protocol.Ready):
            raise ProtocolViolation(f"worker sent {type(ready).__name__} before Ready")
    except BaseException:
        await worker.kill("failed to start")
        raise
    worker.browser_version = ready.browser_version
    return worker
