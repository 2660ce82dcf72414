"""One attempt on a leased worker, for whoever needs one: the runner's runs, and the checks and
creations that make an AuthSession valid. Builds the attempt's Start (its folder, log, trace,
the runtime's backend access), leases a worker of the project's environment and drives it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any

import msgspec
import trio

from ..clock import Clock
from ..config import Settings
from ..environments.builder import worker_env
from ..functions_token import Backend
from ..messages import ProjectVersion
from ..policy import traces
from ..policy.attempts import error_object
from ..store import queries
from ..workers import protocol
from ..workers.attempt import AttemptOutcome, KeyValue, attempt_limits, run_attempt
from ..workers.sandbox import prepare_attempt_directory
from .browser_pool import PoolHandle, WorkerUnavailable
from .store import StoreHandle


class ProjectKeyValue:
    """A project's persistent_store, as the attempts of its runs and sessions see it."""

    def __init__(self, store: StoreHandle, project: str) -> None:
        self._store = store
        self._project = project

    async def get(self, key: str) -> Any:
        return await self._store.read(queries.kv_get, self._project, key)

    async def set(self, key: str, value: Any) -> None:
        await self._store.write(queries.kv_set, self._project, key, value)


class Attempts:
    def __init__(self, pool: PoolHandle, settings: Settings, clock: Clock, backend: Backend | None) -> None:
        self.pool = pool
        self.settings = settings
        self.clock = clock
        self.backend = backend

    async def start(
        self,
        project: ProjectVersion,
        directory: Path,
        *,
        save_trace: bool,
        proxy: str | None,
        context: protocol.RunContext,
        **fields: Any,
    ) -> protocol.Start:
        """The Start of an attempt whose files go to ``directory``; ``fields`` are the rest of Start's."""
        await trio.to_thread.run_sync(prepare_attempt_directory, directory, self.settings.pool.worker_user)
        traced = traces.records(self.settings.runs.trace_policy, save_trace, context.attempt_number)
        trace_path = directory / "trace.zip" if traced else None
        video_dir = directory / "video" if self.settings.runs.record_video else None
        return protocol.Start(
            attempt_id=f"{context.run_id}/{context.attempt_number}",
            project_dir=project.path,
            context=context,
            log_path=str(directory / "log.jsonl"),
            trace_path=str(trace_path) if trace_path else None,
            trace_screenshots=self.settings.runs.trace_screenshots,
            video_dir=str(video_dir) if video_dir else None,
            proxy=proxy,
            headless=self.settings.pool.headless,
            max_result_bytes=self.settings.runs.max_result_bytes,
            limits=attempt_limits(self.settings.runs),
            **self._runtime_fields(project, context),
            **fields,
        )

    def _runtime_fields(self, project: ProjectVersion, context: protocol.RunContext) -> dict[str, Any]:
        """What a Start on Intuned's runtime carries beyond ours: how its helpers reach the daemon."""
        if project.environment is None or project.environment.runtime != "intuned":
            return {}
        if self.backend is None:
            return {"runtime": "intuned"}
        return {
            "runtime": "intuned",
            "functions_domain": self.backend.domain,
            "workspace_id": self.backend.workspace_id,
            "functions_token": self.backend.token(context.project_name, context.run_id, self.clock.now()),
        }

    async def run(
        self,
        project: ProjectVersion,
        start: protocol.Start,
        *,
        timeout_s: float,
        kv: KeyValue,
        leased: Callable[[], Awaitable[None]] | None = None,
    ) -> AttemptOutcome:
        """Lease a worker of the project's environment and run ``start`` on it; ``leased`` is awaited
        once the attempt really begins (or fails for want of a worker)."""
        try:
            async with self.pool.lease(worker_env(self.settings.environments_path, project.environment)) as lease:
                if leased is not None:
                    await leased()
                outcome = await run_attempt(
                    lease, start, timeout_s=timeout_s, abort_grace_s=self.settings.pool.abort_grace_s, kv=kv
                )
        except WorkerUnavailable as e:
            # The project's environment cannot start a worker (deleted, say): this attempt fails,
            # like one whose worker crashed, instead of waiting for ever.
            if leased is not None:
                await leased()
            return AttemptOutcome("failed", error=error_object("script-process-crashed", str(e), retryable=True))
        if start.trace_path is not None and not traces.keeps(self.settings.runs.trace_policy, outcome.status):
            # Gone before the attempt's end is stored: a trace the store names always existed.
            await trio.to_thread.run_sync(partial(Path(start.trace_path).unlink, missing_ok=True))
            return msgspec.structs.replace(outcome, trace_dropped=True)
        return outcome
