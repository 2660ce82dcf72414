"""The runner actor: runs attempts of admitted runs.

Waiting runs sit in lanes (``lanes.Lanes``): one per project for standalone runs, one per
JobRun for its items. A run starts when the admission policy says so (lane, project and
pool caps; runs in order of acceptance); it then loops over attempts, each on a leased
worker, recording every transition through the store (``store.run_transactions``) before
anyone hears of it. Jobs and JobRuns are ``job_control.JobControl``'s; deploys are the
deployer actor's, which tells the runner of each new version.

Cancel, pause and drain are trio cancellation of the run's scope, with the reason kept
beside it: a cancel (by the user, or a JobRun terminating) ends the run ``canceled``; a
JobRun pause cancels the attempt and puts the run back to wait; a drain (SIGTERM) records
the attempt as interrupted and leaves the run unfinished, so the next start picks it up
again, exactly as after a crash.

A failure the runner did not foresee (a bug, a store write refused) fails that one run or
that one command, never the actor.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any, NoReturn

import msgspec
import trio

from ..auth.validation import ValidationFailed
from ..auth.worker_attempts import RUN_TYPE as AUTH_RUN_TYPE
from ..clock import Clock
from ..collections.job import RUN_TYPE as COLLECTION_RUN_TYPE
from ..config import Settings
from ..errors import ApiError, BadRequest, Forbidden, NotFound, Unavailable, disk_full, from_store
from ..functions_token import Backend
from ..ids import nanoid
from ..job_spec import JobRunRecord, PayloadItem, spec_from_snapshot
from ..messages import (
    CancelRun,
    CreateJob,
    DeleteJob,
    PauseJob,
    ProjectDeployed,
    ProjectVersion,
    QueueCommand,
    QueueOp,
    Reply,
    ResumeJob,
    RunnerCommand,
    RunRecord,
    RunRequest,
    SubmitRun,
    TerminateJobRun,
    TriggerJob,
    UpdateJob,
    WaitRun,
    answer,
)
from ..policy import run_options
from ..policy.attempts import after_attempt, error_object
from ..policy.rate_limits import parse_config
from ..queue_spec import QueueItem
from ..store import job_queries, queries, run_transactions
from ..store.errors import StoreError
from ..workers import protocol
from ..workers.attempt import AttemptOutcome
from .attempts import Attempts, ProjectKeyValue
from .auth_sessions import AuthSessionsHandle, SessionInUse, SessionUnavailable, ValidSession
from .browser_pool import PoolHandle
from .gates import Gates
from .job_control import USER_TERMINATE, JobChanged, JobControl
from .lanes import Lanes
from .queue_control import QUEUE_GONE, QueueControl
from .rate_limiter import RateLimiterHandle
from .store import StoreHandle

log = logging.getLogger(__name__)
INBOX_SIZE = 64
JOB_GATE = "job:"  # a job's rate-limit gate: job:<project>/<job id>
CANCELED_BY_USER = {"type": "cancelled-user-action", "message": "The run was canceled by user action."}
VALIDATION_INTERRUPTED = error_object(
    "script-process-crashed", "The daemon stopped during this AuthSession validation", retryable=False
)
# After the store refused to record a run's end (e.g. the disk is full), the run waits this
# long and starts again: it is unfinished in the database, so nothing is lost meanwhile.
RETRY_AFTER_STORE_FAILURE_S = 5.0


class RunnerStatistics(msgspec.Struct, frozen=True):
    waiting: int
    running: int
    draining: bool


class _AuthDependencyFailed(Exception):
    """The run's AuthSession could not be made valid: the run is canceled, as Intuned does."""

    def __init__(self, code: str, message: str, last_attempt_error: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = f"The AuthSession could not be validated: {message}"
        self.reason: dict[str, Any] = {
            "type": "auth-session-validate-dependency-failed",
            "message": self.message,
            "details": {"code": code, "lastAttemptError": last_attempt_error},
        }


class _Active:
    """A run being driven: its scope, and why it was cancelled, if it was."""

    def __init__(self, run: RunRecord) -> None:
        self.run = run
        self.scope = trio.CancelScope()
        self.cancel_reason: dict[str, Any] | None = None
        self.draining = False
        self.requeue_reason: dict[str, Any] | None = None  # set when its JobRun pauses
        self.attempt: int | None = None  # the attempt recorded as running, if any
        self.gate: str | None = None  # the rate-limit gate it was admitted through, if any


class RunnerHandle:
    def __init__(self, inbox: trio.MemorySendChannel[RunnerCommand], stats: Callable[[], RunnerStatistics]):
        self._inbox = inbox
        self.statistics = stats

    async def _ask(self, make: Callable[[trio.MemorySendChannel[Reply[Any]]], RunnerCommand]) -> Any:
        send, receive = trio.open_memory_channel[Reply[Any]](1)
        async with receive:
            await self._inbox.send(make(send))
            return (await receive.receive()).unwrap()

    async def submit(self, project: str, api: str, parameters: Any, request: RunRequest) -> RunRecord:
        return await self._ask(  # type: ignore[no-any-return]
            lambda r: SubmitRun(project=project, api=api, parameters=parameters, request=request, reply=r)
        )

    async def cancel(self, project: str, run_id: str) -> None:
        await self._ask(lambda r: CancelRun(project=project, run_id=run_id, reply=r))

    async def wait(self, run_id: str) -> None:
        """Return once the run is no longer pending or started."""
        await self._ask(lambda r: WaitRun(run_id=run_id, reply=r))

    async def project_deployed(self, project: ProjectVersion, terminate: list[Any]) -> None:
        await self._ask(lambda r: ProjectDeployed(project=project, terminate=terminate, reply=r))

    async def create_job(self, project: str, job_id: str, spec: Any) -> None:
        await self._ask(lambda r: CreateJob(project=project, job_id=job_id, spec=spec, reply=r))

    async def update_job(self, project: str, job_id: str, spec: Any) -> None:
        await self._ask(lambda r: UpdateJob(project=project, job_id=job_id, spec=spec, reply=r))

    async def delete_job(self, project: str, job_id: str) -> None:
        await self._ask(lambda r: DeleteJob(project=project, job_id=job_id, reply=r))

    async def pause_job(self, project: str, job_id: str) -> None:
        await self._ask(lambda r: PauseJob(project=project, job_id=job_id, reply=r))

    async def resume_job(self, project: str, job_id: str) -> None:
        await self._ask(lambda r: ResumeJob(project=project, job_id=job_id, reply=r))

    async def trigger_job(self, project: str, job_id: str, type: str = "MANUAL", slot_key: str | None = None) -> Any:
        return await self._ask(
            lambda r: TriggerJob(project=project, job_id=job_id, type=type, slot_key=slot_key, reply=r)
        )

    async def terminate_job_run(self, project: str, job_id: str, job_run_id: str) -> None:
        await self._ask(lambda r: TerminateJobRun(project=project, job_id=job_id, job_run_id=job_run_id, reply=r))

    async def queue(
        self, op: QueueOp, project: str, queue_id: str, body: Any = None, item_id: str | None = None
    ) -> Any:
        """A queue change (``queue_control``); for ``state``, the queue as it stands."""
        return await self._ask(
            lambda r: QueueCommand(op=op, project=project, queue_id=queue_id, body=body, item_id=item_id, reply=r)
        )


def defaults_of(settings: Settings) -> run_options.Defaults:
    return run_options.Defaults(
        max_attempts=settings.runs.default_max_attempts,
        request_timeout_s=settings.runs.default_request_timeout_s,
        sink=settings.sinks.default or None,
    )


class _Runner:
    def __init__(
        self,
        store: StoreHandle,
        pool: PoolHandle,
        settings: Settings,
        clock: Clock,
        job_changed: JobChanged,
        backend: Backend | None = None,
        auth: AuthSessionsHandle | None = None,
        limiter: RateLimiterHandle | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.attempts = Attempts(pool, settings, clock, backend)
        self.auth = auth
        self.limiter = limiter
        self.defaults = defaults_of(settings)
        self.projects: dict[str, ProjectVersion] = {}
        self.versions: dict[tuple[str, int], ProjectVersion] = {}
        self.lanes = Lanes(self._cap)
        self.jobs = JobControl(store, self.lanes, self, self.defaults, job_changed, auth)
        self.gates = Gates(self.lanes, limiter, clock, self.admit, self.start_soon) if limiter else None
        self.queues = QueueControl(
            store, self.lanes, self, self.defaults, clock, limiter, self.gates, settings.queues
        )
        self.active: dict[str, _Active] = {}
        self.waiters: dict[str, list[trio.MemorySendChannel[Reply[Any]]]] = {}
        self.held: set[str] = set()  # unfinished runs waiting for the store to take writes again
        self.draining = False
        self.idle = trio.Event()
        self.nursery: trio.Nursery | None = None

    def statistics(self) -> RunnerStatistics:
        return RunnerStatistics(waiting=self.lanes.waiting_count, running=len(self.active), draining=self.draining)

    def project(self, name: str) -> ProjectVersion | None:
        return self.projects.get(name)

    def _cap(self, name: str) -> int:
        project = self.projects.get(name)
        return project.max_concurrent if project else 1

    # -- admission ------------------------------------------------------------------------

    def admit(self) -> None:
        assert self.nursery is not None
        if self.gates is not None:
            self.gates.poke()
        while not self.draining:
            run = self.lanes.next_run(total_running=len(self.active), capacity=self.settings.pool.capacity)
            if run is None:
                return
            active = self.active[run.id] = _Active(run)
            active.gate = self.lanes.gate_of(run)
            if active.gate is not None and self.gates is not None:
                self.gates.starting(active.gate)
            self.nursery.start_soon(self._drive, active)

    def start_soon(self, task: Callable[..., Awaitable[None]], *args: Any) -> None:
        assert self.nursery is not None
        self.nursery.start_soon(task, *args)

    async def open_job_run(self, job_run: JobRunRecord) -> None:
        """Open the JobRun's lane; a job with ``configuration.rateLimits`` gates it (all its JobRuns share them)."""
        gate = None
        limits = (job_run.snapshot.get("configuration") or {}).get("rateLimits")
        if limits and self.limiter is not None:
            try:
                config = parse_config(limits, None, None)
            except BadRequest as e:  # stored by a version that checked less: run unlimited, say why
                log.warning("JobRun %s runs without its rate limits: %s", job_run.id, e.message)
            else:
                gate = f"{JOB_GATE}{job_run.project}/{job_run.job_id}"
                await self.limiter.configure(gate, config)
        self.lanes.open_job_run(job_run, gate)

    def stop_items(self, job_run_id: str, *, cancel: dict[str, Any] | None, requeue: dict[str, Any] | None) -> None:
        self.stop(lambda run: run.job_run_id == job_run_id, cancel=cancel, requeue=requeue)

    def stop(
        self,
        matching: Callable[[RunRecord], bool],
        *,
        cancel: dict[str, Any] | None,
        requeue: dict[str, Any] | None = None,
    ) -> None:
        """Stop the running runs ``matching`` picks: cancel them, or put them back to wait."""
        for active in self.active.values():
            if matching(active.run):
                active.cancel_reason = cancel or active.cancel_reason
                active.requeue_reason = requeue or active.requeue_reason
                active.scope.cancel()

    def is_unfinished(self, run_id: str) -> bool:
        return run_id in self.active or run_id in self.held or self.lanes.is_waiting(run_id)

    def _finished(self, run: RunRecord, *, ended: bool = True) -> None:
        """The run's task is over; unless ``ended`` is False (it will start again), so is the run."""
        self.active.pop(run.id, None)
        self.lanes.finished(run)
        if ended:
            self._answer_waiters(run.id)
        self.admit()
        if not self.active:
            self.idle.set()
            self.idle = trio.Event()

    # -- driving one run ------------------------------------------------------------------

    async def _version(self, run: RunRecord) -> ProjectVersion:
        key = (run.project, run.version)
        if key not in self.versions:
            found = await self.store.read(queries.project_version, run.project, run.version)
            if found is None:
                raise _Unrunnable(f"project '{run.project}' version {run.version} no longer exists")
            self.versions[key] = found
        return self.versions[key]

    async def _drive(self, active: _Active) -> None:
        run = active.run
        requeued: RunRecord | None = None
        retry_later = False
        try:
            with active.scope:
                try:
                    if active.gate is not None and self.gates is not None:
                        # Recorded before the first attempt, so a crash never forgets a start it made.
                        await self.gates.admitted(active.gate)
                    await self._attempts(active)
                except _AuthDependencyFailed as e:
                    with trio.CancelScope(shield=True):
                        # In a JobRun the JobRun pauses and this run waits with it (§2.6); else it ends.
                        paused = run.job_run_id is not None and await self.jobs.pause_for_auth(
                            run.job_run_id, e.message
                        )
                        if not paused:
                            await self.store.write(run_transactions.cancel_run, run, active.attempt, e.reason)
                            active.attempt = None
                except Exception as e:  # noqa: BLE001 - one run's failure must not end the actor
                    with trio.CancelScope(shield=True):
                        retry_later = not await self._fail(active, e)
            if active.scope.cancel_called:
                with trio.CancelScope(shield=True):
                    requeued = await self._record_cancel(active)
        finally:
            if active.gate is not None and self.gates is not None:
                with trio.CancelScope(shield=True):
                    await self.gates.finished(active.gate)
            self._finished(run, ended=not retry_later)
        if requeued is not None:
            self.lanes.enqueue(requeued)
            self.admit()
        elif retry_later and self.nursery is not None:
            self.held.add(run.id)
            self.nursery.start_soon(self._enqueue_later, run, active.attempt)

    async def _fail(self, active: _Active, error: Exception) -> bool:
        """Record a run the runner could not drive as failed; False when it must start again
        later instead (the disk is full, or even the failure could not be recorded)."""
        run = active.run
        if disk_full(error) is not None:
            # Transient: the run stays unfinished and runs again once writes succeed.
            log.warning("run %s waits: the disk is full (%s)", run.id, error)
            return False
        if isinstance(error, _Unrunnable):
            log.warning("run %s cannot run: %s", run.id, error)
            failure = error_object("run-unrunnable", str(error), retryable=False)
        else:
            log.exception("run %s failed inside the daemon", run.id)
            failure = error_object("internal-error", "The daemon failed while running this run", retryable=False)
        try:
            job_run_done = await self.store.write(run_transactions.fail_run, run, active.attempt, failure)
        except Exception:  # noqa: BLE001 - e.g. the disk is full: the run stays unfinished, tried again later
            log.exception("could not record the failure of run %s; it will start again", run.id)
            return False
        active.attempt = None
        if job_run_done and run.job_run_id is not None:
            self.lanes.close_job_run(run.job_run_id)
        return True

    async def _enqueue_later(self, run: RunRecord, attempt: int | None) -> None:
        """Start a run again once the store takes writes; its unrecorded attempt is interrupted.
        A drain leaves it unfinished in the database, for the next start."""
        found: RunRecord | None = None
        while not self.draining:
            await trio.sleep(RETRY_AFTER_STORE_FAILURE_S)
            try:
                if attempt is not None:
                    await self.store.write(run_transactions.interrupt_attempt, run, attempt)
                    attempt = None
                found = await self.store.read(queries.get_run, run.id)
                break
            except Exception as e:  # noqa: BLE001 - not yet: try again later, never end the actor
                log.warning("run %s still waits for the store: %s", run.id, e)
        self.held.discard(run.id)
        if found is not None and found.status in ("pending", "started") and not self.draining:
            self.lanes.enqueue(found)
            self.admit()
        else:
            self._answer_waiters(run.id)  # canceled meanwhile, or the daemon is stopping

    async def _attempts(self, active: _Active) -> None:
        run = active.run
        project = await self._version(run)
        # A fresh run (the common case) has no attempts to look up; a recovered one does.
        previous = await self.store.read(queries.list_attempts, run.id) if run.attempts_count else []
        number = len(previous)
        counted = sum(a.status in ("completed", "failed") for a in previous)
        while True:
            number += 1
            outcome = await self._one_attempt(active, project, number)
            counted += 1
            decision = after_attempt(
                succeeded=outcome.status == "completed",
                error=outcome.error,
                attempts_made=counted,
                max_attempts=run.options.max_attempts,
            )
            if decision.action == "retry":
                await self.store.write(
                    run_transactions.end_attempt, run, number, outcome, decision.action, decision.error
                )
                active.attempt = None
                continue
            extension = self._extension(run, project, outcome) if decision.action == "complete" else None
            created, job_run_done = await self.store.write(
                run_transactions.end_run, run, number, outcome, decision.action, decision.error, extension
            )
            active.attempt = None
            for new_run in created:
                self.lanes.enqueue(new_run)
            if job_run_done and run.job_run_id is not None:
                self.lanes.close_job_run(run.job_run_id)
            self.admit()
            return

    def _extension(
        self, run: RunRecord, project: ProjectVersion, outcome: AttemptOutcome
    ) -> run_transactions.Extension | None:
        """extend_payload inside a JobRun or a queue: the new items' runs, inheriting its settings."""
        if not outcome.extended_payloads:
            return None
        if run.queue_id is not None:
            return self._queue_extension(run, project, outcome)
        if run.job_run_id is None:
            return None
        spec = spec_from_snapshot(self.lanes.snapshot(run.job_run_id))
        items = [PayloadItem(api_name=p.api, parameters=p.parameters or {}) for p in outcome.extended_payloads]
        options = [run_options.for_item(spec, item, project, self.defaults) for item in items]
        return run_transactions.Extension(
            project, items, [nanoid() for _ in items], options, spec.configuration.max_runs
        )

    def _queue_extension(
        self, run: RunRecord, project: ProjectVersion, outcome: AttemptOutcome
    ) -> run_transactions.Extension | None:
        """A queue item's new items go to the queue's tail: the queue runs in the order items came."""
        assert run.queue_id is not None
        spec = self.queues.spec(run.project, run.queue_id)
        if spec is None:
            return None  # the queue was deleted while its item ran
        items = [PayloadItem(api_name=p.api, parameters=p.parameters or {}) for p in outcome.extended_payloads]
        options = [
            run_options.for_queue_item(spec, QueueItem(item.api_name, item.parameters), project, self.defaults)
            for item in items
        ]
        return run_transactions.Extension(project, items, [nanoid() for _ in items], options)

    @asynccontextmanager
    async def _valid_session(self, project: ProjectVersion, active: _Active) -> AsyncIterator[ValidSession | None]:
        """The run's AuthSession, made valid and held for this attempt (spec §5.4); None when it names none."""
        run = active.run
        reference = run.options.auth_session
        if not isinstance(reference, dict):
            yield None
            return
        if self.auth is None:
            raise _AuthDependencyFailed("unavailable", "auth sessions are not available in this daemon")
        async with AsyncExitStack() as held:
            try:
                session = await held.enter_async_context(self.auth.using(project, reference, run.id))
            except ValidationFailed as e:
                raise _AuthDependencyFailed(e.code, e.message, e.last_attempt_error) from e
            except SessionUnavailable as e:
                raise _AuthDependencyFailed(e.code, e.message) from e
            except SessionInUse as e:
                # Refused, not failed: the run ends canceled with this reason, as a user's cancel ends it.
                active.cancel_reason = e.reason
                active.scope.cancel()
                await trio.lowlevel.checkpoint()  # raises Cancelled: the run's scope was just cancelled
                raise
            yield session

    async def _one_attempt(self, active: _Active, project: ProjectVersion, number: int) -> AttemptOutcome:
        run = active.run
        async with self._valid_session(project, active) as session:
            proxy = run.options.proxy or (session.proxy if session else None)
            start = await self.attempts.start(
                project,
                self.settings.artifacts_path / run.id / str(number),
                save_trace=run.options.save_trace,
                proxy=proxy,
                context=protocol.RunContext(
                    run_id=run.id,
                    project_name=run.project,
                    api_name=run.api,
                    attempt_number=number,
                    job_id=run.job_id,
                    job_run_id=run.job_run_id,
                    queue_id=run.queue_id,
                    auth_session_id=session.session_id if session else None,
                    proxy=proxy,
                ),
                api=run.api,
                parameters=run.parameters,
                auth_state=session.state if session else None,
                auth_parameters=session.parameters if session else None,
            )
            return await self.attempts.run(
                project,
                start,
                timeout_s=run.options.request_timeout_s,
                kv=ProjectKeyValue(self.store, run.project),
                leased=lambda: self._start_attempt(active, number, start),
            )

    async def _start_attempt(self, active: _Active, number: int, start: protocol.Start) -> None:
        await self.store.write(
            queries.start_attempt, active.run, number, start.log_path, start.trace_path, start.video_dir
        )
        active.attempt = number

    async def _record_cancel(self, active: _Active) -> RunRecord | None:
        """Record why the run stopped; returns it when it must wait again (its JobRun paused)."""
        # finish_attempt and finish_run only touch what is still unfinished, so a cancel
        # racing with the attempt's own end cannot overwrite a recorded outcome.
        if active.draining:
            if active.attempt is not None:
                await self.store.write(run_transactions.interrupt_attempt, active.run, active.attempt)
            return None
        if active.requeue_reason is not None and active.cancel_reason is None:
            await self.store.write(job_queries.requeue_run, active.run, active.attempt, active.requeue_reason)
            return await self.store.read(queries.get_run, active.run.id)
        reason = active.cancel_reason or CANCELED_BY_USER
        await self.store.write(run_transactions.cancel_run, active.run, active.attempt, reason)
        return None

    # -- commands -------------------------------------------------------------------------

    async def handle(self, command: RunnerCommand) -> None:
        if isinstance(command, CancelRun):
            await self.cancel(command)  # answers once the cancel is recorded
            return
        if isinstance(command, WaitRun):
            self.wait(command)
            return
        answer(command.reply, await self._respond(command))

    async def _respond(self, command: SubmitRun | ProjectDeployed | Any) -> Reply[Any]:
        try:
            if isinstance(command, SubmitRun):
                return Reply(value=await self.submit(command))
            if isinstance(command, ProjectDeployed):
                await self.project_deployed(command)
                return Reply(value=None)
            if isinstance(command, QueueCommand):
                return Reply(value=await self.queues.command(command))
            return Reply(value=await self.jobs.command(command))
        except ApiError as e:
            return Reply(error=e)
        except StoreError as e:
            return Reply(error=from_store(e))
        except Exception:  # noqa: BLE001 - one command's failure must not end the actor
            log.exception("runner failed handling %s", type(command).__name__)
            return Reply(error=ApiError("Internal server error"))

    async def submit(self, command: SubmitRun) -> RunRecord:
        if self.draining:
            raise Unavailable("the daemon is shutting down and accepts no new runs")
        project = self.projects.get(command.project)
        if project is None:
            raise NotFound(f"project '{command.project}' is not deployed", details={"field": "projectName"})
        if not project.api_access:
            raise Forbidden(
                f"API access is disabled for project '{project.name}' (Intuned.json apiAccess.enabled)",
                details={"reason": "api-access-disabled"},
            )
        if command.api not in project.apis:
            raise BadRequest(
                f"API '{command.api}' does not exist in project '{project.name}'",
                details={"field": "api", "available": project.apis},
            )
        request = command.request
        if project.auth_required and not request.auth_session:
            raise BadRequest(
                f"project '{project.name}' uses AuthSessions (Intuned.json authSessions.enabled): "
                "the run must name one in authSession",
                details={"field": "authSession"},
            )
        if isinstance(request.auth_session, dict) and "runtimeInput" in request.auth_session:
            # The credentials go into the session, sealed; the run keeps only its id and options.
            if self.auth is None:
                raise Unavailable("auth sessions are not available")
            reference = await self.auth.runtime_reference(project, request.auth_session)
            request = msgspec.structs.replace(request, auth_session=reference)
        options = run_options.for_request(request, project, self.defaults)
        run = await self.store.write(queries.insert_run, nanoid(), project, command.api, command.parameters, options)
        self.lanes.enqueue(run)
        self.admit()
        return run

    async def cancel(self, command: CancelRun) -> None:
        try:
            run = await self.store.read(queries.get_run, command.run_id)
        except Exception:  # noqa: BLE001 - an unreadable record: the caller hears why, the actor goes on
            log.exception("could not read run %s to cancel it", command.run_id)
            answer(command.reply, Reply(error=ApiError("Internal server error")))
            return
        if run is None or run.project != command.project:
            answer(command.reply, Reply(error=NotFound(f"run '{command.run_id}' not found")))
            return
        if run.run_type in (AUTH_RUN_TYPE, COLLECTION_RUN_TYPE) and run.status in ("pending", "started"):
            # Driven by the AuthSessions or collections actor, not by this one: a cancel here would stop nothing.
            refusal = BadRequest(
                f"a {run.run_type} run ends with what it serves (its AuthSession check, its collection run); "
                "it cannot be canceled on its own",
                details={"field": "runId", "runType": run.run_type},
            )
            answer(command.reply, Reply(error=refusal))
            return
        active = self.active.get(run.id)
        if active is not None:
            # Answered once the run task has recorded the cancel.
            self.waiters.setdefault(run.id, []).append(command.reply)
            active.cancel_reason = CANCELED_BY_USER
            active.scope.cancel()
            return
        waiting = self.lanes.is_waiting(run.id)
        if waiting or run.id in self.held:
            self.lanes.remove({run.id})
            try:
                await self.store.write(run_transactions.cancel_run, run, None, CANCELED_BY_USER)
            except Exception as e:  # noqa: BLE001 - e.g. the disk is full: the run waits again
                if waiting:
                    self.lanes.enqueue(run)
                answer(command.reply, Reply(error=e if isinstance(e, ApiError) else ApiError("Internal server error")))
                return
        answer(command.reply, Reply(value=None))
        self._answer_waiters(run.id)

    def _answer_waiters(self, run_id: str) -> None:
        for waiter in self.waiters.pop(run_id, []):
            answer(waiter, Reply(value=None))

    def wait(self, command: WaitRun) -> None:
        unfinished = command.run_id in self.active or command.run_id in self.held
        if unfinished or self.lanes.is_waiting(command.run_id):
            self.waiters.setdefault(command.run_id, []).append(command.reply)
        else:
            answer(command.reply, Reply(value=None))

    async def project_deployed(self, command: ProjectDeployed) -> None:
        project = command.project
        self.projects[project.name] = self.versions[(project.name, project.version)] = project
        for job_run in command.terminate:
            await self.jobs.terminate(job_run, USER_TERMINATE)
        self.admit()

    # -- shutdown -------------------------------------------------------------------------

    async def drain(self, timeout_s: float) -> None:
        """Start nothing new; give running attempts ``timeout_s``, then interrupt them."""
        self.draining = True
        with trio.move_on_after(timeout_s):
            while self.active:
                await self.idle.wait()
        for active in list(self.active.values()):
            active.draining = True
            active.scope.cancel()
        while self.active:
            await self.idle.wait()


class _Unrunnable(Exception):
    """A run whose record cannot be driven (its project version is gone): it fails, once."""


async def _recover(runner: _Runner, store: StoreHandle) -> list[RunRecord]:
    """What an earlier process left: current projects, active JobRuns, unfinished runs.

    A record that cannot be decoded is quarantined with its reason and skipped, so one bad
    row never keeps the daemon from starting.
    """
    projects, bad_projects = await store.read(queries.current_projects_checked)
    for project in projects:
        runner.projects[project.name] = runner.versions[(project.name, project.version)] = project
    job_runs, bad_job_runs = await store.read(job_queries.active_job_runs_checked)
    for job_run in job_runs:
        await runner.open_job_run(job_run)
    await runner.queues.recover()
    interrupted = await store.write(queries.interrupt_running_attempts)
    unfinished, bad_runs = await store.read(queries.unfinished_runs_checked)
    for kind, bad in (("project", bad_projects), ("job_run", bad_job_runs), ("run", bad_runs)):
        for record_id, reason in bad:
            log.error("quarantined %s %s: %s", kind, record_id, reason)
            await store.write(queries.quarantine, kind, record_id, reason)
    # An AuthSession's validation run is not the runner's to drive: its validation happens again
    # with the run that needs it (or the operation, which runs again), so the old one just ends.
    validations = [run for run in unfinished if run.run_type == AUTH_RUN_TYPE]
    for run in validations:
        await store.write(run_transactions.fail_run, run, None, VALIDATION_INTERRUPTED)
    # A collection job's run is the collections actor's: it recovers the job (and so the run) itself.
    unfinished = [run for run in unfinished if run.run_type not in (AUTH_RUN_TYPE, COLLECTION_RUN_TYPE)]
    orphans = runner.queues.orphaned(unfinished)
    for run in orphans:
        await store.write(run_transactions.cancel_run, run, None, QUEUE_GONE)
    gone = {run.id for run in orphans}
    unfinished = [run for run in unfinished if run.id not in gone]
    if interrupted or unfinished:
        log.info("recovering %d unfinished runs (%d interrupted attempts)", len(unfinished), interrupted)
    return unfinished


async def run_runner(
    store: StoreHandle,
    pool: PoolHandle,
    settings: Settings,
    job_changed: JobChanged,
    *,
    clock: Clock,
    backend: Backend | None = None,
    auth: AuthSessionsHandle | None = None,
    limiter: RateLimiterHandle | None = None,
    task_status: trio.TaskStatus[tuple[RunnerHandle, Callable[[float], Awaitable[None]]]] = trio.TASK_STATUS_IGNORED,
) -> NoReturn:
    """``backend``: where attempts on Intuned's runtime reach the daemon's backend functions;
    ``auth``: where runs that name an AuthSession get it made valid."""
    runner = _Runner(store, pool, settings, clock, job_changed, backend, auth, limiter)
    unfinished = await _recover(runner, store)
    send, receive = trio.open_memory_channel[RunnerCommand](INBOX_SIZE)
    async with receive, trio.open_nursery() as nursery:
        runner.nursery = nursery
        for run in unfinished:
            runner.lanes.enqueue(run)
        runner.admit()
        nursery.start_soon(runner.queues.append_repeats)
        task_status.started((RunnerHandle(send, runner.statistics), runner.drain))
        async for command in receive:
            await runner.handle(command)
    raise AssertionError("runner inbox closed")
