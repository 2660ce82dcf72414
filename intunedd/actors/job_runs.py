"""The runner's Job and JobRun commands: CRUD, trigger, pause, resume, terminate.

A JobRun's items are ordinary runs in a lane of their own (capped by the job's
``maxConcurrentRequests``). Every change is committed before the runner acts on it, and
the scheduler hears of every job change so its next fire time follows.
"""

from __future__ import annotations

from collections import deque
from functools import partial
from typing import TYPE_CHECKING, Any

import msgspec
import trio

from ..errors import BadRequest, Conflict, NotFound, Unavailable
from ..ids import nanoid, new_uuid
from ..job_spec import JobRecord, JobRunRecord, JobSpec, item_options, lane_cap, snapshot
from ..messages import (
    CreateJob,
    DeleteJob,
    JobChanged,
    JobCommand,
    PauseJob,
    ProjectVersion,
    ResumeJob,
    RunOptions,
    RunRecord,
    TerminateJobRun,
    TriggerJob,
    UpdateJob,
)
from ..policy.admission import Lane
from ..store import job_queries
from ..store.queries import Tx

if TYPE_CHECKING:
    from ..config import Settings
    from .store import StoreHandle

PAUSED_REASON = {"type": "job-run-paused", "message": "The JobRun was paused; the run continues on resume."}
TERMINATED_REASON = {"type": "job-run-terminated", "message": "The JobRun was terminated."}
USER_PAUSE = {"type": "user-request", "message": "The job was paused."}
USER_TERMINATE = {"type": "terminated", "message": "The JobRun was terminated."}


class JobRunCommands:
    """Mixed into the runner; the attributes below are the runner's."""

    store: StoreHandle
    settings: Settings
    projects: dict[str, ProjectVersion]
    job_lanes: dict[str, Lane]
    job_snapshots: dict[str, dict[str, Any]]
    waiting: dict[str, deque[RunRecord]]
    active: dict[str, Any]
    draining: bool
    job_changes: trio.MemorySendChannel[JobChanged]

    if TYPE_CHECKING:  # the runner's own methods

        def enqueue(self, run: RunRecord) -> None: ...
        def with_default_sink(self, project: ProjectVersion, options: RunOptions) -> RunOptions: ...
        def admit(self) -> None: ...
        def remove_waiting(self, run_ids: set[str]) -> None: ...

    async def job_command(self, command: JobCommand) -> Any:
        if isinstance(command, CreateJob | UpdateJob):
            return await self._save_job(command)
        if isinstance(command, DeleteJob):
            return await self._delete_job(command)
        if isinstance(command, PauseJob):
            return await self._pause_job(command.project, command.job_id)
        if isinstance(command, ResumeJob):
            return await self._resume_job(command.project, command.job_id)
        if isinstance(command, TriggerJob):
            return await self.trigger(command.project, command.job_id, command.type, command.slot_key)
        assert isinstance(command, TerminateJobRun)
        return await self._terminate_command(command)

    def open_lane(self, job_run: JobRunRecord) -> None:
        self.job_lanes[job_run.id] = Lane(job_run.project, job_run.max_concurrent, paused=job_run.status == "PAUSED")
        self.job_snapshots[job_run.id] = job_run.snapshot

    def close_lane(self, job_run_id: str) -> None:
        self.job_lanes.pop(job_run_id, None)
        self.job_snapshots.pop(job_run_id, None)
        self.waiting.pop(job_run_id, None)

    async def _changed(self, project: str, job_id: str) -> None:
        await self.job_changes.send(JobChanged(project=project, job_id=job_id))

    # -- jobs -----------------------------------------------------------------------------

    def check_spec(self, project: str, spec: JobSpec) -> ProjectVersion:
        deployed = self.projects.get(project)
        if deployed is None:
            raise NotFound(f"project '{project}' is not deployed", details={"field": "projectName"})
        for i, item in enumerate(spec.payload):
            if item.api_name not in deployed.apis:
                raise BadRequest(
                    f"API '{item.api_name}' does not exist in project '{project}'",
                    details={"field": f"payload[{i}].apiName", "available": deployed.apis},
                )
        return deployed

    async def _save_job(self, command: CreateJob | UpdateJob) -> None:
        spec: JobSpec = command.spec
        self.check_spec(command.project, spec)
        if isinstance(command, CreateJob):
            await self.store.write(job_queries.insert_job, command.project, command.job_id, spec, "API")
        else:
            await self.store.write(job_queries.update_job, command.project, command.job_id, spec)
        await self._changed(command.project, command.job_id)

    async def apply_code_jobs(self, project: str, jobs: dict[str, JobSpec]) -> None:
        """Jobs-as-code: create or update each ``intuned-resources/jobs`` file's job, drop removed ones."""
        existing = {job.id: job for job in await self.store.read(job_queries.list_jobs, project)}
        for job_id, spec in jobs.items():
            self.check_spec(project, spec)
            if job_id in existing:
                await self.store.write(partial(job_queries.update_job, source="CODE"), project, job_id, spec)
            else:
                await self.store.write(job_queries.insert_job, project, job_id, spec, "CODE")
            await self._changed(project, job_id)
        for job_id, job in existing.items():
            if job.source == "CODE" and job_id not in jobs:
                await self._remove_job(project, job_id, source="CODE")

    async def _delete_job(self, command: DeleteJob) -> None:
        await self._remove_job(command.project, command.job_id, source="API")

    async def _remove_job(self, project: str, job_id: str, *, source: str) -> None:
        active = await self.store.write(partial(job_queries.delete_job, source=source), project, job_id)
        if active is not None:
            await self._terminate(active, USER_TERMINATE)
        await self._changed(project, job_id)

    async def _pause_job(self, project: str, job_id: str) -> dict[str, str]:
        await self.store.write(job_queries.set_job_state, project, job_id, "PAUSED")
        job_run = await self.store.read(job_queries.active_job_run, project, job_id)
        if job_run is not None and job_run.status != "PAUSED":
            await self.store.write(partial(job_queries.set_job_run_status, reason=USER_PAUSE), job_run, "PAUSED")
            lane = self.job_lanes.get(job_run.id)
            if lane is not None:
                self.job_lanes[job_run.id] = msgspec.structs.replace(lane, paused=True)
            for active in self._active_in(job_run.id):
                active.requeue_reason = PAUSED_REASON
                active.scope.cancel()
        await self._changed(project, job_id)
        return {"message": "Paused"}

    async def _resume_job(self, project: str, job_id: str) -> dict[str, str]:
        await self.store.write(job_queries.set_job_state, project, job_id, "ACTIVE")
        job_run = await self.store.read(job_queries.active_job_run, project, job_id)
        if job_run is not None and job_run.status == "PAUSED":
            await self.store.write(job_queries.set_job_run_status, job_run, "PENDING")
            lane = self.job_lanes.get(job_run.id)
            if lane is not None:
                self.job_lanes[job_run.id] = msgspec.structs.replace(lane, paused=False)
            self.admit()
        await self._changed(project, job_id)
        return {"message": "Resumed"}

    def _active_in(self, job_run_id: str) -> list[Any]:
        return [active for active in self.active.values() if active.run.job_run_id == job_run_id]

    # -- job runs -------------------------------------------------------------------------

    async def trigger(self, project: str, job_id: str, type_: str, slot_key: str | None) -> JobRunRecord:
        if self.draining:
            raise Unavailable("the daemon is shutting down and starts no new JobRuns")
        job: JobRecord | None = await self.store.read(job_queries.get_job, project, job_id)
        if job is None:
            raise NotFound(f"job '{job_id}' not found in project '{project}'", details={"field": "jobId"})
        if job.state == "PAUSED":
            raise Conflict(f"job '{job_id}' is paused: resume it to trigger it", details={"field": "jobId"})
        deployed = self.projects.get(project)
        if deployed is None:
            raise NotFound(f"project '{project}' is not deployed", details={"field": "projectName"})
        defaults = self.settings.runs
        options = [
            self.with_default_sink(
                deployed,
                item_options(
                    job.spec,
                    item,
                    default_attempts=defaults.default_max_attempts,
                    default_timeout=defaults.default_request_timeout_s,
                ),
            )
            for item in job.spec.payload
        ]
        job_run, runs = await self.store.write(
            job_queries.start_job_run,
            job,
            deployed,
            type_,
            new_uuid(),
            [nanoid() for _ in job.spec.payload],
            options,
            snapshot(job.spec),
            lane_cap(job.spec, deployed.max_concurrent),
            job.spec.configuration.max_runs,
            slot_key,
        )
        if job_run.status == "CANCELED" or job_run.id in self.job_lanes:
            return job_run  # skipped (another JobRun active), or a slot already fired
        self.open_lane(job_run)
        for run in runs:
            self.enqueue(run)
        if not runs and await self.store.write(job_queries.item_ended, job_run.id):
            self.close_lane(job_run.id)
        self.admit()
        return job_run

    async def _terminate_command(self, command: TerminateJobRun) -> dict[str, str]:
        job_run = await self.store.read(job_queries.get_job_run, command.project, command.job_id, command.job_run_id)
        if job_run is None:
            raise NotFound(f"JobRun '{command.job_run_id}' not found", details={"field": "jobRunId"})
        if job_run.status not in ("PENDING", "PAUSING", "PAUSED", "RESUMING"):
            return {"message": f"JobRun already ended ({job_run.status})"}
        await self._terminate(job_run, USER_TERMINATE)
        return {"message": "JobRun terminated"}

    async def _terminate(self, job_run: JobRunRecord, reason: dict[str, Any]) -> None:
        """Nothing more starts; waiting items are canceled now, running ones as they stop."""
        canceled = await self.store.write(_terminate_job_run, job_run, reason)
        self.remove_waiting(set(canceled))
        self.close_lane(job_run.id)
        for active in self._active_in(job_run.id):
            active.cancel_reason = TERMINATED_REASON
            active.scope.cancel()


def _terminate_job_run(tx: Tx, job_run: JobRunRecord, reason: dict[str, Any]) -> list[str]:
    job_queries.set_job_run_status(tx, job_run, "TERMINATED", reason=reason, ended=True)
    return job_queries.cancel_waiting_runs(tx, job_run.id, TERMINATED_REASON)
