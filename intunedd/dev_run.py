"""``intunedd dev run``: one API of the project in a folder, run once on this host, no daemon.

The same environment rules as a deploy (its dependencies installed by uv, on the path the
deploy would choose) and the same worker, with a browser launched for this one attempt.
``persistent_store`` keeps its values in a JSON file per project under the state directory,
so a value set by one dev run is there for the next, as on a deployed project.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec
import trio

from .config import Settings
from .environments.builder import worker_env
from .environments.service import Environments, Prepared
from .workers import protocol
from .workers.attempt import AttemptOutcome, attempt_limits, run_attempt
from .workers.browser import worker_config
from .workers.process import Lease, Verdict, spawn_worker


class DevResult(msgspec.Struct, frozen=True):
    outcome: AttemptOutcome
    log_path: Path
    trace_path: Path | None
    environment: Prepared


class FileKeyValue:
    """persistent_store for dev runs: one JSON object in a file, rewritten on every set."""

    def __init__(self, path: Path) -> None:
        self._path = path

    def _load(self) -> dict[str, Any]:
        try:
            data = json.loads(self._path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    async def get(self, key: str) -> Any:
        return self._load().get(key)

    async def set(self, key: str, value: Any) -> None:
        data = self._load()
        data[key] = value
        self._path.parent.mkdir(parents=True, exist_ok=True)
        self._path.write_text(json.dumps(data))


async def dev_run(
    settings: Settings,
    project_dir: Path,
    api: str,
    parameters: Any,
    *,
    trace: bool,
    progress: Callable[[str], Awaitable[None]],
) -> DevResult:
    project_dir = project_dir.resolve()
    prepared = await Environments(settings).prepare(project_dir, progress)
    command = worker_env(settings.environments_path, prepared.environment).command
    run_dir = settings.artifacts_path / f"{api.replace('/', '-')}-{time.strftime('%Y%m%dT%H%M%S')}"
    run_dir.mkdir(parents=True, exist_ok=True)
    trace_path = run_dir / "trace.zip" if trace else None
    start = protocol.Start(
        attempt_id="dev/1",
        project_dir=str(project_dir),
        api=api,
        parameters=parameters,
        context=protocol.RunContext(run_id="dev", project_name=project_dir.name, api_name=api, attempt_number=1),
        log_path=str(run_dir / "log.jsonl"),
        trace_path=str(trace_path) if trace_path else None,
        headless=settings.pool.headless,
        max_result_bytes=settings.runs.max_result_bytes,
        limits=attempt_limits(settings.runs),
        runtime=prepared.environment.runtime if prepared.environment else "intunedd",
    )
    await progress("starting the browser")
    worker = await spawn_worker(
        worker_config(settings.pool), {}, start_timeout_s=settings.pool.start_timeout_s, command=command
    )
    returned, _verdicts = trio.open_memory_channel[Verdict](1)
    try:
        await progress("running")
        outcome = await run_attempt(
            Lease(worker, returned),
            start,
            timeout_s=settings.runs.default_request_timeout_s,
            abort_grace_s=settings.pool.abort_grace_s,
            kv=FileKeyValue(settings.state_path / "persistent-store" / f"{project_dir.name}.json"),
        )
    finally:
        await worker.close()
    return DevResult(outcome, run_dir / "log.jsonl", trace_path, prepared)
