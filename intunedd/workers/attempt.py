"""One attempt, driven from the daemon: send Start, serve the worker's requests, enforce
the deadline (which ``Extend`` resets), and turn whatever happens into an outcome.

    Done ............................ completed | failed (the worker's error)
    deadline passes ................. Abort, a grace period for Done (keeps the trace),
                                      then the worker is killed: script-timeout
    socket closes ................... the worker died: script-process-crashed
    the caller is cancelled ......... Abort, grace, worker kept only if it answered
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

import msgspec
import trio

from ..policy.attempts import error_object
from . import protocol
from .process import Lease, WorkerDied


class KeyValue(Protocol):
    async def get(self, key: str) -> Any: ...
    async def set(self, key: str, value: Any) -> None: ...


class AttemptOutcome(msgspec.Struct, frozen=True):
    status: Literal["completed", "failed"]
    result: Any = None
    extended_payloads: list[protocol.ExtendedPayload] = []
    error: dict[str, Any] | None = None


def _from_done(done: protocol.Done) -> AttemptOutcome:
    if done.success:
        return AttemptOutcome("completed", result=done.result, extended_payloads=done.extended_payloads)
    error = done.error or protocol.AttemptError(
        code="script-no-valid-output-received", message="The worker reported a failure without an error"
    )
    return AttemptOutcome(
        "failed", error=error_object(error.code, error.message, retryable=error.retryable, details=error.details)
    )


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


async def _wait_done(lease: Lease, kv: KeyValue) -> protocol.Done:
    frames = lease.worker.frames
    while True:
        frame = await frames.receive()
        if isinstance(frame, protocol.Done):
            return frame
        if isinstance(frame, protocol.StoreGet | protocol.StoreSet):
            await _serve_store_request(frames, frame, kv)


async def _abort(lease: Lease, kv: KeyValue, grace_s: float, reason: str) -> protocol.Done | None:
    """Ask the worker to stop; keep the worker only if it answers within the grace period."""
    with trio.move_on_after(grace_s, shield=True):
        try:
            await lease.worker.frames.send(protocol.Abort())
            return await _wait_done(lease, kv)
        except WorkerDied:
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
    frames = lease.worker.frames
    try:
        await frames.send(start)
        deadline = trio.current_time() + timeout_s
        while True:
            with trio.move_on_at(deadline):
                frame = await frames.receive()
                if isinstance(frame, protocol.Done):
                    return _from_done(frame)
                if isinstance(frame, protocol.Extend):
                    deadline = trio.current_time() + timeout_s
                elif isinstance(frame, protocol.StoreGet | protocol.StoreSet):
                    await _serve_store_request(frames, frame, kv)
                continue
            # The deadline passed: a timed-out worker is never trusted again.
            await _abort(lease, kv, abort_grace_s, "timed out")
            lease.poison("timed out")
            return AttemptOutcome(
                "failed",
                error=error_object("script-timeout", f"Run timed out after {timeout_s:g} seconds", retryable=True),
            )
    except WorkerDied:
        return await _crashed(lease)
    except trio.Cancelled:
        await _abort(lease, kv, abort_grace_s, "aborted")
        raise
