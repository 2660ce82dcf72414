"""Automations attacking their own worker's channel: the real child with real Chromium, driven by
``run_attempt`` as the daemon drives it. User code runs in the worker and inherits its socket."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

import pytest
import trio

from intunedd.workers.attempt import run_attempt
from intunedd.workers.browser import find_browser
from intunedd.workers.process import Lease, Verdict, spawn_worker
from intunedd.workers.protocol import RunContext, Start, WorkerConfig

pytestmark = pytest.mark.chromium

SPAWN_TIMEOUT_S = 30
ATTEMPT_TIMEOUT_S = 20


class KeyValue:
    async def get(self, key: str) -> None:
        return None

    async def set(self, key: str, value: object) -> None:
        pass


async def test_a_huge_length_prefix_from_the_automation_fails_only_its_attempt(tmp_path: Path) -> None:
    project = tmp_path / "p"
    (project / "api").mkdir(parents=True)
    (project / "api" / "hostile.py").write_text(
        dedent(
            """
            import asyncio
            import json
            import os
            import sys

            async def automation(page, params=None):
                os.write(json.loads(sys.argv[-1])["fd"], b"\\xff\\xff\\xff\\xff")
                await asyncio.sleep(60)
            """
        )
    )
    start = Start(
        attempt_id="run-1/1",
        project_dir=str(project),
        api="hostile",
        parameters=None,
        context=RunContext(run_id="run-1", project_name="p", api_name="hostile", attempt_number=1),
        log_path=str(tmp_path / "log.jsonl"),
    )
    config = WorkerConfig(fd=-1, browser_executable=find_browser("auto", True))
    with trio.fail_after(SPAWN_TIMEOUT_S):
        worker = await spawn_worker(config, {}, start_timeout_s=SPAWN_TIMEOUT_S)
    try:
        returned_send, returned_receive = trio.open_memory_channel[Verdict](1)
        lease = Lease(worker, returned_send)
        with trio.fail_after(ATTEMPT_TIMEOUT_S):
            outcome = await run_attempt(lease, start, timeout_s=ATTEMPT_TIMEOUT_S, abort_grace_s=1, kv=KeyValue())
        lease.release()
    finally:
        await worker.kill("test over")
    assert outcome.error is not None
    assert (outcome.error["code"], outcome.error["retirable"]) == ("script-protocol-error", True)
    assert "frame of 4294967295 bytes exceeds the limit" in outcome.error["message"]
    assert returned_receive.receive_nowait() == Verdict(reusable=False, reason="protocol violation")
