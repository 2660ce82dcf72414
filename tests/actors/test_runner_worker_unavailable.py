"""A project whose Python environment cannot start a worker: its attempts fail, and the runner
and the other projects go on."""

from __future__ import annotations

from pathlib import Path

import msgspec
import trio.testing

from intunedd.messages import ProjectEnvironment, RunRequest
from intunedd.store import queries

from .test_runner import _project, runner_parts


async def test_a_project_whose_environment_is_gone_fails_its_attempts_and_the_runner_goes_on(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    environment = ProjectEnvironment(key="gone", runtime="intunedd", python="/nonexistent/python3")
    broken = msgspec.structs.replace(_project(tmp_path), name="q", environment=environment)
    async with runner_parts(tmp_path, "ok") as parts:
        await parts.store.write(queries.record_deploy, broken, {})
        await parts.runner.project_deployed(broken, [])
        run = await parts.runner.submit("q", "echo", {}, RunRequest(max_attempts=2))
        failed = await parts.finished(run.id)
        assert (failed.status, failed.error["code"]) == ("failed", "script-process-crashed")
        assert "environment 'gone'" in failed.error["message"]
        attempts = await parts.store.read(queries.list_attempts, run.id)
        assert [a.status for a in attempts] == ["failed", "failed"]
        fine = await parts.runner.submit("p", "echo", {"still": "serving"}, RunRequest(max_attempts=1))
        assert (await parts.finished(fine.id)).result == {"still": "serving"}
