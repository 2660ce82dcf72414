"""One attempt, driven from the daemon: send Start, serve the worker's requests, enforce
the deadline (which ``Extend`` resets), and turn whatever happens into an outcome.

    Done ............................ completed | failed (the worker's error)
    deadline passes ................. Abort, a grace period for Done (keeps the trace),
                                      then the worker is killed: script-timeout
    socket closes ................... the worker died: script-process-crashed
    a frame breaks the protocol ..... the worker is killed: script-protocol-error
    the caller is cancelled ......... Abort, grace, worker kept only if it answered
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, BinaryIO, Literal, Protocol

import msgspec
import trio

from ..config import RunSettings
from ..policy.attempts import error_object
from . import protocol
from .limits import LOG_MARKER_RESERVE_BYTES, bound_error, log_truncated_line, result_too_big, truncate_chars
from .process import Lease, ProtocolViolation, WorkerDied
from .sandbox import open_worker_file


class KeyValue(Protocol):
    async def get(self, key: str) -> Any: ...
    async def set(self, key: str, value: Any) -> None: ...


class AttemptOutcome(msgspec.Struct, frozen=True):
    status: Literal["completed", "failed"]
    result: Any = None
    extended_payloads: list[protocol.ExtendedPayload] = []
    error: dict[str, Any] | None = None
    session: Any = None  # the storage state an auth-sessions/create attempt captured
    trace_dropped: bool = False  # its trace was recorded, then deleted (runs.trace_policy)


def attempt_limits(runs: RunSettings) -> protocol.AttemptLimits:
    """The limits a Start carries, from the daemon's settings."""
    return protocol.AttemptLimits(
        max_log_bytes=runs.max_log_bytes,
        max_log_line_bytes=runs.max_log_line_bytes,
        max_error_message_chars=runs.max_error_message_chars,
        max_error_stack_chars=runs.max_error_stack_chars,
    )


def _failed(error: protocol.AttemptError) -> AttemptOutcome:
    return AttemptOutcome(
        "failed", error=error_object(error.code, error.message, retryable=error.retryable, details=error.details)
    )


def _from_done(done: protocol.Done, start: protocol.Start) -> AttemptOutcome:
    """The worker's Done, checked again here: the child already applies these limits, but user code
    runs in it and may have sent anything."""
    if done.success:
        size = len(msgspec.json.encode(done.result))
        if size > start.max_result_bytes:
            return _failed(result_too_big(size, start.max_result_bytes))
        return AttemptOutcome(
            "completed", result=done.result, extended_payloads=done.extended_payloads, session=done.session
        )
    error = done.error or protocol.AttemptError(
        code="script-no-valid-output-received", message="The worker reported a failure without an error"
    )
    return _failed(bound_error(error, start.limits))


def _protocol_error(lease: Lease, violation: ProtocolViolation, start: protocol.Start) -> AttemptOutcome:
    lease.poison("protocol violation")
    message = truncate_chars(f"The worker broke the protocol: {violation}", start.limits.max_error_message_chars)
    return AttemptOutcome("failed", error=error_object("script-protocol-error", message, retryable=True))


def _unexpected(frame: protocol.FromWorker) -> ProtocolViolation:
    return ProtocolViolation(f"unexpected {type(frame).__name__} frame during an attempt")


def bound_log_file(path: Path, max_bytes: int) -> bool:
    """Cut a log the worker let grow past ``max_bytes`` at a line boundary and end it with the
    truncation marker. Returns whether it was cut. Blocking: run it in a thread.

    The worker may have replaced the file with anything: only a regular file with no other name is
    cut (never what a symlink or hard link points at), and failing to cut it is not an error."""
    try:
        fd = open_worker_file(str(path), writable=True)
    except OSError:
        return False
    with os.fdopen(fd, "r+b") as file:
        try:
            if os.fstat(fd).st_size <= max_bytes:
                return False
            end = _last_line_end(file, max(0, max_bytes - LOG_MARKER_RESERVE_BYTES))
            file.truncate(end)
            file.seek(end)
            file.write(log_truncated_line(max_bytes).encode())
        except OSError:
            return False
    return True


def _last_line_end(file: BinaryIO, limit: int) -> int:
    """The offset just past the last newline before ``limit`` (0 if none): the log is cut there, so
    it stays whole JSON lines of valid UTF-8 even when the child did not cut its lines."""
    position = limit
    while position > 0:
        start = max(0, position - protocol.MIB)
        file.seek(start)
        newline = file.read(position - start).rfind(b"\n")
        if newline >= 0:
            return start + newline + 1
        position = start
    return 0


async def _serve_store_request(frames: Any, frame: protocol.StoreGet | protocol.StoreSet, kv: KeyValue) -> None:
    try:
        if isinstance(frame, protocol.StoreGet):
            value = await kv.get(frame.key)
        else:
            await kv.set(frame.key, frame.value)
            value = None
    except Exception as e:  # noqa: BLE001 - reported to the automation, which raises it
        await frames.send(protocol.StoreReply(request_id=frame.request_id, error=str(e)))
        return
    await frames.send(protocol.StoreReply(request_id=frame.request_id, value=value))


async def _wait_done(lease: Lease, kv: KeyValue, max_frame_bytes: int) -> protocol.Done:
    frames = lease.worker.frames
    while True:
        frame = await frames.receive(max_bytes=max_frame_bytes)
        if isinstance(frame, protocol.Done):
            return frame
        if isinstance(frame, protocol.StoreGet | protocol.StoreSet):
            await _serve_store_request(frames, frame, kv)
        elif not isinstance(frame, protocol.Extend):
            raise _unexpected(frame)


async def _abort(
    lease: Lease, kv: KeyValue, grace_s: float, reason: str, start: protocol.Start
) -> protocol.Done | None:
    """Ask the worker to stop; keep the worker only if it answers within the grace period."""
    with trio.move_on_after(grace_s, shield=True):
        try:
            await lease.worker.frames.send(protocol.Abort())
            return await _wait_done(lease, kv, protocol.max_from_worker_bytes(start.max_result_bytes))
        except WorkerDied:  # also a protocol violation
            pass
    lease.poison(reason)
    return None


async def _crashed(lease: Lease) -> AttemptOutcome:
    lease.poison("crashed")
    with trio.move_on_after(2.0):
        await lease.worker.process.wait()
    code = lease.worker.process.returncode
    if code is None:
        message = "Process exited unexpectedly"
    elif code < 0:
        message = f"Process was killed by signal {-code}"
    else:
        message = f"Process exited unexpectedly with code {code}"
    return AttemptOutcome(
        "failed",
        error=error_object("script-process-crashed", message, retryable=True, details={"exitCode": code}),
    )


async def run_attempt(
    lease: Lease, start: protocol.Start, *, timeout_s: float, abort_grace_s: float, kv: KeyValue
) -> AttemptOutcome:
    """Never raises for anything the worker does; only the caller's cancellation propagates."""
    try:
        outcome = await _drive(lease, start, timeout_s=timeout_s, abort_grace_s=abort_grace_s, kv=kv)
    finally:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(bound_log_file, Path(start.log_path), start.limits.max_log_bytes)
    return outcome


async def _drive(
    lease: Lease, start: protocol.Start, *, timeout_s: float, abort_grace_s: float, kv: KeyValue
) -> AttemptOutcome:
    frames = lease.worker.frames
    max_frame_bytes = protocol.max_from_worker_bytes(start.max_result_bytes)
    try:
        await frames.send(start)
        deadline = trio.current_time() + timeout_s
        while True:
            with trio.move_on_at(deadline):
                frame = await frames.receive(max_bytes=max_frame_bytes)
                if isinstance(frame, protocol.Done):
                    return _from_done(frame, start)
                if isinstance(frame, protocol.Extend):
                    deadline = trio.current_time() + timeout_s
                elif isinstance(frame, protocol.StoreGet | protocol.StoreSet):
                    await _serve_store_request(frames, frame, kv)
                else:
                    raise _unexpected(frame)
                continue
            # The deadline passed: a timed-out worker is never trusted again.
            await _abort(lease, kv, abort_grace_s, "timed out", start)
            lease.poison("timed out")
            return AttemptOutcome(
                "failed",
                error=error_object("script-timeout", f"Run timed out after {timeout_s:g} seconds", retryable=True),
            )
    except ProtocolViolation as violation:
        return _protocol_error(lease, violation, start)
    except WorkerDied:
        return await _crashed(lease)
    except trio.Cancelled:
        await _abort(lease, kv, abort_grace_s, "aborted", start)
        raise
