"""Processes an automation starts do not outlive its attempt, nor its worker: the real child with
real Chromium, spawned as the daemon spawns it.

Each automation starts three ``sleep`` processes with unique arguments: a plain child, one in a
new session, and one double-forked into a new session (so its parent is gone before the attempt
ends and only a subreaper still has it as a descendant).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from textwrap import dedent

import psutil
import pytest
import trio

from intunedd.workers import protocol
from intunedd.workers.attempt import run_attempt
from intunedd.workers.browser import find_browser
from intunedd.workers.process import Lease, Verdict, spawn_worker
from intunedd.workers.protocol import Extend, RunContext, Start, WorkerConfig

pytestmark = pytest.mark.chromium

SPAWN_TIMEOUT_S = 30
ATTEMPT_TIMEOUT_S = 20

AUTOMATION = """
    import asyncio
    import subprocess

    import psutil
    from intuned_runtime import extend_timeout

    def sleeping(markers):
        return {p.info["cmdline"][-1] for p in psutil.process_iter(["cmdline"]) if p.info["cmdline"]} & set(markers)

    async def automation(page, params):
        plain, session, detached = markers = params["markers"]
        subprocess.Popen(["sleep", plain])
        subprocess.Popen(["sleep", session], start_new_session=True)
        subprocess.run(["sh", "-c", f"setsid sleep {detached} &"], check=True)
        async with asyncio.timeout(10):  # the detached one may not have exec'd sleep yet
            while sleeping(markers) != set(markers):
                await asyncio.sleep(0.05)
        if params["hang"]:
            extend_timeout()  # tells the test the processes are started
            await asyncio.sleep(60)
        return "started"
"""


class KeyValue:
    async def get(self, key: str) -> None:
        return None

    async def set(self, key: str, value: object) -> None:
        pass


def live(markers: list[str]) -> list[str]:
    """The markers whose ``sleep`` is still running (zombies waiting for init do not count)."""
    found = []
    for process in psutil.process_iter(["cmdline", "status"]):
        cmdline = process.info["cmdline"] or []
        if len(cmdline) == 2 and cmdline[1] in markers and process.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(cmdline[1])
    return sorted(found)


@pytest.fixture
def markers() -> Iterator[list[str]]:
    values = [f"{1000 + n}.{uuid.uuid4().int % 10**9}" for n in range(3)]
    yield values
    for process in psutil.process_iter(["cmdline"]):  # whatever the test left behind
        if (process.info["cmdline"] or [None])[-1] in values:
            process.kill()


def make_start(tmp_path: Path, markers: list[str], *, hang: bool) -> Start:
    project = tmp_path / "p"
    (project / "api").mkdir(parents=True, exist_ok=True)
    (project / "api" / "spawn.py").write_text(dedent(AUTOMATION))
    return Start(
        attempt_id="run-1/1",
        project_dir=str(project),
        api="spawn",
        parameters={"markers": markers, "hang": hang},
        context=RunContext(run_id="run-1", project_name="p", api_name="spawn", attempt_number=1),
        log_path=str(tmp_path / "log.jsonl"),
    )


def worker_config() -> WorkerConfig:
    return WorkerConfig(fd=-1, browser_executable=find_browser("auto", True))


async def test_processes_started_by_an_attempt_end_with_it(tmp_path: Path, markers: list[str]) -> None:
    with trio.fail_after(SPAWN_TIMEOUT_S):
        worker = await spawn_worker(worker_config(), {}, start_timeout_s=SPAWN_TIMEOUT_S)
    try:
        returned_send, _ = trio.open_memory_channel[Verdict](2)
        # Twice: the browser the first attempt used is not among what was killed, so the same
        # worker runs the second.
        for _ in range(2):
            with trio.fail_after(ATTEMPT_TIMEOUT_S):
                outcome = await run_attempt(
                    Lease(worker, returned_send),
                    make_start(tmp_path, markers, hang=False),
                    timeout_s=ATTEMPT_TIMEOUT_S,
                    abort_grace_s=1,
                    kv=KeyValue(),
                )
            assert outcome.status == "completed", outcome.error
            assert live(markers) == []
    finally:
        await worker.kill("test over")


async def test_processes_started_by_an_attempt_end_with_a_killed_worker(tmp_path: Path, markers: list[str]) -> None:
    with trio.fail_after(SPAWN_TIMEOUT_S):
        worker = await spawn_worker(worker_config(), {}, start_timeout_s=SPAWN_TIMEOUT_S)
    try:
        with trio.fail_after(ATTEMPT_TIMEOUT_S):
            await worker.frames.send(make_start(tmp_path, markers, hang=True))
            frame = await worker.frames.receive(max_bytes=protocol.MAX_READY_BYTES)
        assert isinstance(frame, Extend)
        assert live(markers) == sorted(markers)
    finally:
        with trio.fail_after(SPAWN_TIMEOUT_S):
            await worker.kill("test over")
    assert live(markers) == []
