"""The daemon's side of the worker boundary against a scripted fake worker (no Chromium): whatever
the worker sends, ``spawn_worker`` and ``run_attempt`` turn it into an error, never an exception,
and a worker that misbehaved never outlives it."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import msgspec
import psutil
import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from intunedd.workers import protocol
from intunedd.workers.attempt import AttemptOutcome, run_attempt
from intunedd.workers.fake import fake_command
from intunedd.workers.limits import LOG_MARKER_RESERVE_BYTES
from intunedd.workers.process import FrameStream, Lease, Verdict, WorkerDied, WorkerProcess, spawn_worker
from intunedd.workers.protocol import AttemptLimits, RunContext, Start, WorkerConfig

TIMEOUT_S = 20
CONFIG = WorkerConfig(fd=-1)


class DictKeyValue:
    def __init__(self) -> None:
        self.data: dict[str, Any] = {}

    async def get(self, key: str) -> Any:
        return self.data.get(key)

    async def set(self, key: str, value: Any) -> None:
        self.data[key] = value


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@asynccontextmanager
async def fake_worker(behaviour: str) -> AsyncIterator[WorkerProcess]:
    with trio.fail_after(TIMEOUT_S):
        worker = await spawn_worker(CONFIG, {}, start_timeout_s=TIMEOUT_S, command=fake_command(behaviour))
    try:
        yield worker
    finally:
        await worker.kill("test over")


def make_start(tmp_path: Path, parameters: Any = None, **overrides: Any) -> Start:
    context = RunContext(run_id="run-1", project_name="p", api_name="a", attempt_number=1)
    return Start(
        attempt_id="run-1/1",
        project_dir=str(tmp_path),
        api="a",
        parameters=parameters,
        context=context,
        log_path=str(tmp_path / "log.jsonl"),
        **overrides,
    )


async def attempt(worker: WorkerProcess, start: Start) -> tuple[AttemptOutcome, Verdict]:
    returned_send, returned_receive = trio.open_memory_channel[Verdict](1)
    lease = Lease(worker, returned_send)
    with trio.fail_after(TIMEOUT_S):
        outcome = await run_attempt(lease, start, timeout_s=TIMEOUT_S / 2, abort_grace_s=1, kv=DictKeyValue())
    lease.release()
    return outcome, returned_receive.receive_nowait()


async def test_the_fake_worker_speaks_the_protocol(tmp_path: Path) -> None:
    async with fake_worker("ok") as worker:
        assert worker.browser_version == "fake"
        for n in (1, 2):
            outcome, verdict = await attempt(worker, make_start(tmp_path, {"n": n}))
            assert (outcome.status, outcome.result, verdict.reusable) == ("completed", {"n": n}, True)


async def test_a_worker_runs_below_the_daemons_priority_with_its_session(tmp_path: Path) -> None:
    """``nice`` lowers the worker's priority (what its browser inherits) and, where the kernel
    schedules sessions as groups, its session's: the daemon's work is never queued behind pages."""
    pid_file = tmp_path / "pid"
    with trio.fail_after(TIMEOUT_S):
        worker = await spawn_worker(
            CONFIG, {}, start_timeout_s=TIMEOUT_S, command=fake_command("ok", pid_file=pid_file), nice=7
        )
    try:
        assert int(pid_file.read_text()) == worker.process.pid  # nice(1) ran it in place
        assert psutil.Process(worker.process.pid).nice() == os.getpriority(os.PRIO_PROCESS, 0) + 7
        autogroup = Path(f"/proc/{worker.process.pid}/autogroup")
        if autogroup.exists():
            assert autogroup.read_text().split()[-1] == "7"
    finally:
        await worker.kill("test over")


@pytest.mark.parametrize("behaviour", ["not-ready", "huge-ready"])
async def test_a_worker_that_fails_to_start_is_killed(tmp_path: Path, behaviour: str) -> None:
    pid_file = tmp_path / "pid"
    with trio.fail_after(TIMEOUT_S), pytest.raises(WorkerDied, match="Ready|exceeds the limit"):
        await spawn_worker(CONFIG, {}, start_timeout_s=TIMEOUT_S, command=fake_command(behaviour, pid_file=pid_file))
    assert gone(int(pid_file.read_text()))


async def test_a_silent_worker_is_killed_when_start_times_out(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    with trio.fail_after(TIMEOUT_S), pytest.raises(trio.TooSlowError):
        await spawn_worker(CONFIG, {}, start_timeout_s=1, command=fake_command("silent", pid_file=pid_file))
    assert gone(int(pid_file.read_text()))


async def test_a_worker_that_crashes_at_start_is_reported() -> None:
    with trio.fail_after(TIMEOUT_S), pytest.raises(WorkerDied, match="closed"):
        await spawn_worker(CONFIG, {}, start_timeout_s=TIMEOUT_S, command=fake_command("crash"))


@pytest.mark.parametrize(
    ("behaviour", "in_message"),
    [
        ("huge-length", "frame of 4294967295 bytes exceeds the limit"),
        ("garbage", "invalid frame"),
        ("invalid", "invalid frame"),
        ("unexpected", "unexpected Ready frame"),
        ("bad-key", "invalid frame"),
    ],
)
async def test_a_protocol_violation_fails_the_attempt_and_poisons_the_worker(
    tmp_path: Path, behaviour: str, in_message: str
) -> None:
    async with fake_worker(behaviour) as worker:
        outcome, verdict = await attempt(worker, make_start(tmp_path))
    assert outcome.status == "failed" and outcome.error is not None
    assert (outcome.error["code"], outcome.error["retirable"]) == ("script-protocol-error", True)
    assert in_message in outcome.error["message"]
    assert verdict == Verdict(reusable=False, reason="protocol violation")


async def test_the_frame_limit_follows_max_result_bytes(tmp_path: Path) -> None:
    limit = protocol.max_from_worker_bytes(1000)
    async with fake_worker("big-result") as worker:
        outcome, verdict = await attempt(worker, make_start(tmp_path, {"size": limit + 1}, max_result_bytes=1000))
    assert outcome.error is not None and outcome.error["code"] == "script-protocol-error"
    assert not verdict.reusable


async def test_result_size_is_enforced_by_the_daemon(tmp_path: Path) -> None:
    async with fake_worker("big-result") as worker:
        outcome, verdict = await attempt(worker, make_start(tmp_path, {"size": 3000}, max_result_bytes=1000))
        assert outcome.error is not None
        assert outcome.error["code"] == "result-too-big-error"
        assert outcome.error["details"] == {"sizeInBytes": 3000, "maxSizeInBytes": 1000}
        assert verdict.reusable
        outcome, _ = await attempt(worker, make_start(tmp_path, {"size": 1000}, max_result_bytes=1000))
        assert outcome.status == "completed" and outcome.result == "x" * 998


async def test_error_sizes_are_enforced_by_the_daemon(tmp_path: Path) -> None:
    limits = AttemptLimits(max_error_message_chars=100, max_error_stack_chars=1000)
    async with fake_worker("big-error") as worker:
        outcome, _ = await attempt(worker, make_start(tmp_path, limits=limits))
    error = outcome.error
    assert error is not None and error["code"] == "script-execution-exception"
    assert error["message"].startswith("x" * 100 + "… [truncated ")
    assert len(error["message"]) < 200
    assert error["details"]["name"] == "ValueError"
    assert len(error["details"]["message"]) < 200
    assert error["details"]["stack"].startswith("x" * 1000 + "… [truncated ")
    assert len(error["details"]["stack"]) < 1100


async def test_a_log_past_its_limit_is_cut_by_the_daemon(tmp_path: Path) -> None:
    limits = AttemptLimits(max_log_bytes=10_000)
    start = make_start(tmp_path, {"lines": 100, "width": 200}, limits=limits)
    async with fake_worker("flood-log") as worker:
        outcome, _ = await attempt(worker, start)
    assert outcome.status == "completed"
    data = Path(start.log_path).read_bytes()
    assert 10_000 - LOG_MARKER_RESERVE_BYTES - 300 < len(data) <= 10_000
    entries = [json.loads(line) for line in data.decode().splitlines()]
    assert [e["message"] for e in entries[:-1]] == ["y" * 200] * (len(entries) - 1)
    assert entries[-1]["stream"] == "system"
    assert entries[-1]["message"] == "log truncated: the attempt wrote more than 10000 bytes"


async def test_a_log_within_its_limit_is_left_alone(tmp_path: Path) -> None:
    start = make_start(tmp_path, {"lines": 10, "width": 200}, limits=AttemptLimits(max_log_bytes=10_000))
    async with fake_worker("flood-log") as worker:
        await attempt(worker, start)
    assert [json.loads(line)["message"] for line in Path(start.log_path).read_text().splitlines()] == ["y" * 200] * 10


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
_frame_like = st.fixed_dictionaries(
    {"type": st.sampled_from(["ready", "extend", "store_get", "store_set", "done", "start", "nope"])},
    optional={
        "pid": _json,
        "browser_version": _json,
        "request_id": _json,
        "key": _json,
        "value": _json,
        "success": _json,
        "result": _json,
        "error": _json,
        "extended_payloads": _json,
    },
)
_bodies = st.binary(max_size=64) | _frame_like.map(msgspec.json.encode) | _json.map(msgspec.json.encode)


@settings(max_examples=300, deadline=None)
@given(st.lists(_bodies.map(lambda body: protocol.HEADER.pack(len(body)) + body), max_size=4), st.binary(max_size=8))
async def test_any_bytes_from_a_worker_are_frames_or_a_violation(frames: list[bytes], tail: bytes) -> None:
    """Whatever a worker writes, receive returns valid frames until it raises WorkerDied (EOF) or
    its ProtocolViolation subclass, never anything else."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with theirs:
        theirs.sendall(b"".join(frames) + tail)
    stream = FrameStream(trio.SocketStream(trio.socket.from_stdlib_socket(ours)))
    received = 0
    with trio.fail_after(TIMEOUT_S), pytest.raises(WorkerDied):
        while True:
            frame = await stream.receive(max_bytes=1000)
            assert isinstance(frame, protocol.FromWorker)
            received += 1
    await stream.aclose()
    assert received <= len(frames)
