"""Jobs and JobRuns as the runner sees them: CRUD, trigger, pause, resume, terminate.

A JobRun's items are ordinary runs in a lane of their own (capped by the job's
``maxConcurrentRequests``). Every change is committed before the runner acts on it, and the
scheduler is told of every job change (without waiting: the scheduler calls the runner, so
the runner never waits on the scheduler).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import msgspec

from ..auth.validation import ValidationFailed
from ..errors import BadRequest, Conflict, NotFound, Unavailable
from ..ids import nanoid, new_uuid
from ..job_spec import JobRecord, JobRunRecord, JobSpec, snapshot
from ..messages import (
    CreateJob,
    DeleteJob,
    JobCommand,
    PauseJob,
    ProjectVersion,
    ResumeJob,
    TerminateJobRun,
    TriggerJob,
    UpdateJob,
)
from ..policy import run_options
from ..policy.job_runs import ACTIVE_JOB_RUN, lane_cap
from ..store import job_queries, run_transactions
from .auth_sessions import AuthSessionsHandle, SessionUnavailable
from .lanes import Lanes
from .store import StoreHandle

PAUSED_REASON = {"type": "job-run-paused", "message": "The JobRun was paused; the run continues on resume."}
TERMINATED_REASON = {"type": "job-run-terminated", "message": "The JobRun was terminated."}
USER_PAUSE = {"type": "user-request", "message": "The job was paused."}
USER_TERMINATE = {"type": "terminated", "message": "The JobRun was terminated."}

JobChanged = Callable[[str, str], None]  # project, job id; must not block


log = logging.getLogger(__name__)


class RunControl(Protocol):
    """What job control needs of the runner: its catalog, and its running runs."""

    @property
    def draining(self) -> bool: ...
    def project(self, name: str) -> ProjectVersion | None: ...
    def admit(self) -> None: ...
    def stop_items(self, job_run_id: str, *, cancel: dict[str, Any] | None, requeue: dict[str, Any] | None) -> None:
        """Stop the JobRun's running items: cancel them, or put them back to wait."""

    def start_soon(self, task: Callable[..., Awaitable[None]], *args: Any) -> None:
        """Run ``task`` beside the runner's command loop (never on it: it may take long)."""

    async def open_job_run(self, job_run: JobRunRecord) -> None:
        """Open the JobRun's lane (gated by its job's rate limits, if any)."""


def check_apis(project: ProjectVersion | None, name: str, spec: JobSpec, apis: list[str] | None = None) -> None:
    """Every payload item names an API of the project (``apis``: a version about to be deployed)."""
    if project is None and apis is None:
        raise NotFound(f"project '{name}' is not deployed", details={"field": "projectName"})
    available = apis if apis is not None else project.apis if project else []
    for i, item in enumerate(spec.payload):
        if item.api_name not in available:
            raise BadRequest(
                f"API '{item.api_name}' does not exist in project '{name}'",
                details={"field": f"payload[{i}].apiName", "available": available},
            )


class JobControl:
    def __init__(
        self,
        store: StoreHandle,
        lanes: Lanes,
        runs: RunControl,
        defaults: run_options.Defaults,
        changed: JobChanged,
        auth: AuthSessionsHandle | None = None,
    ) -> None:
        self._store = store
        self._lanes = lanes
        self._runs = runs
        self._defaults = defaults
        self._changed = changed
        self._auth = auth

    async def command(self, command: JobCommand) -> Any:
        if isinstance(command, CreateJob | UpdateJob):
            return await self._save(command)
        if isinstance(command, DeleteJob):
            return await self._delete(command.project, command.job_id)
        if isinstance(command, PauseJob):
            return await self._pause(command.project, command.job_id)
        if isinstance(command, ResumeJob):
            return await self._resume(command.project, command.job_id)
        if isinstance(command, TriggerJob):
            return await self.trigger(command.project, command.job_id, command.type, command.slot_key)
        assert isinstance(command, TerminateJobRun)
        return await self._terminate_command(command)

    # -- jobs -----------------------------------------------------------------------------

    async def _save(self, command: CreateJob | UpdateJob) -> None:
        spec: JobSpec = command.spec
        project = self._runs.project(command.project)
        check_apis(project, command.project, spec)
        if project is not None and project.auth_required and spec.auth_session is None:
            raise BadRequest(
                f"project '{project.name}' uses AuthSessions (Intuned.json authSessions.enabled): "
                "the job must name one in auth_session",
                details={"field": "auth_session"},
            )
        if isinstance(command, CreateJob):
            await self._store.write(job_queries.insert_job, command.project, command.job_id, spec, "API")
        else:
            await self._store.write(job_queries.update_job, command.project, command.job_id, spec)
        self._changed(command.project, command.job_id)

    async def _delete(self, project: str, job_id: str) -> None:
        active = await self._store.write(job_queries.delete_job, project, job_id, source="API")
        if active is not None:
            await self.terminate(active, USER_TERMINATE)
        self._changed(project, job_id)

    async def _pause(self, project: str, job_id: str) -> dict[str, str]:
        await self._store.write(job_queries.set_job_state, project, job_id, "PAUSED")
        job_run = await self._store.read(job_queries.active_job_run, project, job_id)
        if job_run is not None and job_run.status != "PAUSED":
            await self._store.write(job_queries.set_job_run_status, job_run, "PAUSED", reason=USER_PAUSE)
            self._lanes.set_paused(job_run.id, True)
            self._runs.stop_items(job_run.id, cancel=None, requeue=PAUSED_REASON)
        self._changed(project, job_id)
        return {"message": "Paused"}

    async def pause_for_auth(self, job_run_id: str, message: str) -> bool:
        """An item's AuthSession could not be made valid mid-job (spec §2.6): the JobRun pauses until
        the user fixes the session and resumes the job, and its running items (the one that failed
        included) go back to waiting. False when the JobRun has ended: the item is simply canceled."""
        job_run = await self._store.read(job_queries.job_run_by_id, job_run_id)
        if job_run is None or job_run.status not in ("PENDING", "PAUSED"):
            return False
        if job_run.status != "PAUSED":
            reason = {"type": "auth-session-invalid-mid-job", "message": message}
            await self._store.write(job_queries.set_job_run_status, job_run, "PAUSED", reason=reason)
        self._lanes.set_paused(job_run.id, True)
        self._runs.stop_items(job_run.id, cancel=None, requeue=PAUSED_REASON)
        return True

    async def _resume(self, project: str, job_id: str) -> dict[str, str]:
        await self._store.write(job_queries.set_job_state, project, job_id, "ACTIVE")
        job_run = await self._store.read(job_queries.active_job_run, project, job_id)
        if job_run is not None and job_run.status == "PAUSED":
            await self._store.write(job_queries.set_job_run_status, job_run, "PENDING")
            self._lanes.set_paused(job_run.id, False)
            self._runs.admit()
        self._changed(project, job_id)
        return {"message": "Resumed"}

    # -- job runs -------------------------------------------------------------------------

    async def trigger(self, project: str, job_id: str, type_: str, slot_key: str | None) -> JobRunRecord:
        if self._runs.draining:
            raise Unavailable("the daemon is shutting down and starts no new JobRuns")
        job: JobRecord | None = await self._store.read(job_queries.get_job, project, job_id)
        if job is None:
            raise NotFound(f"job '{job_id}' not found in project '{project}'", details={"field": "jobId"})
        if job.state == "PAUSED":
            raise Conflict(f"job '{job_id}' is paused: resume it to trigger it", details={"field": "jobId"})
        deployed = self._runs.project(project)
        if deployed is None:
            raise NotFound(f"project '{project}' is not deployed", details={"field": "projectName"})
        options = [run_options.for_item(job.spec, item, deployed, self._defaults) for item in job.spec.payload]
        job_run, runs = await self._store.write(
            job_queries.start_job_run,
            job,
            deployed,
            type_,
            new_uuid(),
            [nanoid() for _ in job.spec.payload],
            options,
            snapshot(job.spec),
            lane_cap(job.spec.configuration.max_concurrent_requests, deployed.max_concurrent),
            job.spec.configuration.max_runs,
            slot_key,
        )
        if job_run.status == "CANCELED" or self._lanes.has_job_run(job_run.id):
            return job_run  # skipped (another JobRun active), or a slot already fired
        await self._runs.open_job_run(job_run)
        for run in runs:
            self._lanes.enqueue(run)
        if not runs and await self._store.write(job_queries.item_ended, job_run.id):
            self._lanes.close_job_run(job_run.id)
        elif job.spec.auth_session is not None and self._auth is not None:
            # §2.6: the JobRun's AuthSession is made valid before any of its items starts.
            self._lanes.set_paused(job_run.id, True)
            reference = msgspec.to_builtins(job.spec.auth_session)
            self._runs.start_soon(self._validate_job_run, job_run, deployed, reference)
        self._runs.admit()
        return job_run

    async def _validate_job_run(self, job_run: JobRunRecord, project: ProjectVersion, reference: Any) -> None:
        """Let the JobRun's items start once its session is valid; else the JobRun ends CANCELED."""
        assert self._auth is not None
        try:
            await self._auth.valid_session(project, reference, job_run.id)
        except (ValidationFailed, SessionUnavailable) as e:
            kind = (
                "auth-session-not-found"
                if isinstance(e, SessionUnavailable)
                else "auth-session-validate-dependency-failed"
            )
            reason = {"type": kind, "message": f"The AuthSession could not be validated: {e.message}",
                      "details": {"code": e.code}}  # fmt: skip
            current = await self._store.read(job_queries.job_run_by_id, job_run.id)
            if current is not None and current.status in ACTIVE_JOB_RUN:
                await self.terminate(current, reason, status="CANCELED")
            return
        except Exception:  # noqa: BLE001 - the items then validate the session themselves, as each attempt does
            log.exception("could not validate the AuthSession of JobRun %s before its items", job_run.id)
        current = await self._store.read(job_queries.job_run_by_id, job_run.id)
        if current is not None and current.status == "PENDING":  # not paused or ended meanwhile
            self._lanes.set_paused(job_run.id, False)
            self._runs.admit()

    async def _terminate_command(self, command: TerminateJobRun) -> dict[str, str]:
        job_run = await self._store.read(job_queries.get_job_run, command.project, command.job_id, command.job_run_id)
        if job_run is None:
            raise NotFound(f"JobRun '{command.job_run_id}' not found", details={"field": "jobRunId"})
        if job_run.status not in ACTIVE_JOB_RUN:
            return {"message": f"JobRun already ended ({job_run.status})"}
        await self.terminate(job_run, USER_TERMINATE)
        return {"message": "JobRun terminated"}

    async def terminate(self, job_run: JobRunRecord, reason: dict[str, Any], status: str = "TERMINATED") -> None:
        """Nothing more starts; waiting items are canceled now, running ones as they stop."""
        items_reason = TERMINATED_REASON if status == "TERMINATED" else reason
        canceled = await self._store.write(run_transactions.terminate_job_run, job_run, reason, items_reason, status)
        self._lanes.remove(set(canceled))
        self._lanes.close_job_run(job_run.id)
        self._runs.stop_items(job_run.id, cancel=items_reason, requeue=None)
