"""The runner actor: admits runs and drives their attempts.

Waiting runs sit in lanes: one per project for standalone runs, one per JobRun for its
items (see ``policy.admission``). A run starts when the admission policy says so (lane,
project and pool caps; runs in order of acceptance); it then loops over attempts, each on
a leased worker, recording every transition through the store before anyone hears of it.
The JobRun commands (trigger, pause, resume, terminate, job CRUD) live in ``job_runs.py``.

Cancel, pause and drain are trio cancellation of the run's scope, with the reason kept
beside it: a cancel (by the user, or a JobRun terminating) ends the run ``canceled``; a
JobRun pause cancels the attempt and puts the run back to wait; a drain (SIGTERM) records
the attempt as interrupted and leaves the run unfinished, so the next start picks it up
again, exactly as after a crash.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, NoReturn

import msgspec
import trio

from .. import projects
from ..clock import Clock, iso
from ..config import Settings
from ..errors import ApiError, BadRequest, Forbidden, NotFound, Unavailable
from ..ids import nanoid
from ..job_spec import JobSpec, PayloadItem, item_options, spec_from_snapshot
from ..messages import (
    CancelRun,
    CreateJob,
    DeleteJob,
    Deploy,
    JobChanged,
    JobCommand,
    PauseJob,
    ProjectVersion,
    Reply,
    ResumeJob,
    RunnerCommand,
    RunOptions,
    RunRecord,
    SubmitRun,
    TerminateJobRun,
    TriggerJob,
    UpdateJob,
    WaitRun,
    answer,
)
from ..policy.admission import Lane, next_lane
from ..policy.attempts import after_attempt
from ..store import job_queries, queries
from ..workers import protocol
from ..workers.attempt import AttemptOutcome, run_attempt
from .browser_pool import PoolHandle
from .job_runs import JobRunCommands
from .store import StoreHandle

log = logging.getLogger(__name__)
INBOX_SIZE = 64
CANCELED_BY_USER = {"type": "cancelled-user-action", "message": "The run was canceled by user action."}


class RunnerStatistics(msgspec.Struct, frozen=True):
    waiting: int
    running: int
    draining: bool


class _Active:
    """A run being driven: its scope, and why it was cancelled, if it was."""

    def __init__(self, run: RunRecord) -> None:
        self.run = run
        self.scope = trio.CancelScope()
        self.cancel_reason: dict[str, Any] | None = None
        self.draining = False
        self.requeue_reason: dict[str, Any] | None = None  # set when its JobRun pauses
        self.attempt: int | None = None  # the attempt recorded as running, if any


class RunnerHandle:
    def __init__(self, inbox: trio.MemorySendChannel[RunnerCommand], stats: Callable[[], RunnerStatistics]):
        self._inbox = inbox
        self.statistics = stats

    async def _ask(self, make: Callable[[trio.MemorySendChannel[Reply[Any]]], RunnerCommand]) -> Any:
        send, receive = trio.open_memory_channel[Reply[Any]](1)
        async with receive:
            await self._inbox.send(make(send))
            return (await receive.receive()).unwrap()

    async def submit(self, project: str, api: str, parameters: Any, options: RunOptions) -> RunRecord:
        return await self._ask(  # type: ignore[no-any-return]
            lambda r: SubmitRun(project=project, api=api, parameters=parameters, options=options, reply=r)
        )

    async def cancel(self, project: str, run_id: str) -> None:
        await self._ask(lambda r: CancelRun(project=project, run_id=run_id, reply=r))

    async def wait(self, run_id: str) -> None:
        """Return once the run is no longer pending or started."""
        await self._ask(lambda r: WaitRun(run_id=run_id, reply=r))

    async def deploy(self, name: str, archive: bytes) -> ProjectVersion:
        return await self._ask(lambda r: Deploy(name=name, archive=archive, reply=r))  # type: ignore[no-any-return]

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


class _KeyValue:
    def __init__(self, store: StoreHandle, project: str) -> None:
        self._store = store
        self._project = project

    async def get(self, key: str) -> Any:
        return await self._store.read(queries.kv_get, self._project, key)

    async def set(self, key: str, value: Any) -> None:
        await self._store.write(queries.kv_set, self._project, key, value)


class _Runner(JobRunCommands):
    def __init__(
        self,
        store: StoreHandle,
        pool: PoolHandle,
        settings: Settings,
        clock: Clock,
        job_changes: trio.MemorySendChannel[JobChanged],
    ) -> None:
        self.store = store
        self.pool = pool
        self.settings = settings
        self.clock = clock
        self.job_changes = job_changes
        self.projects: dict[str, ProjectVersion] = {}
        self.versions: dict[tuple[str, int], ProjectVersion] = {}
        self.job_lanes: dict[str, Lane] = {}  # JobRun id -> its lane
        self.job_snapshots: dict[str, dict[str, Any]] = {}  # JobRun id -> job_configuration_snapshot
        self.waiting: dict[str, deque[RunRecord]] = {}  # lane key -> runs in acceptance order
        self.lane_running: dict[str, int] = {}
        self.project_running: dict[str, int] = {}
        self.active: dict[str, _Active] = {}
        self.waiters: dict[str, list[trio.MemorySendChannel[Reply[Any]]]] = {}
        self.draining = False
        self.idle = trio.Event()
        self.nursery: trio.Nursery | None = None

    def statistics(self) -> RunnerStatistics:
        return RunnerStatistics(
            waiting=sum(len(q) for q in self.waiting.values()), running=len(self.active), draining=self.draining
        )

    # -- admission ------------------------------------------------------------------------

    @staticmethod
    def lane_key(run: RunRecord) -> str:
        return run.job_run_id or f"project:{run.project}"

    def _lane(self, key: str) -> Lane:
        if key.startswith("project:"):
            name = key.removeprefix("project:")
            return Lane(name, self._cap(name))
        return self.job_lanes.get(key) or Lane("", 1, paused=True)

    def enqueue(self, run: RunRecord) -> None:
        """Queue a run in its lane, keeping the lane in acceptance order (requeued runs go back in place)."""
        queue = self.waiting.setdefault(self.lane_key(run), deque())
        if not queue or queue[-1].seq < run.seq:
            queue.append(run)
            return
        position = next(i for i, queued in enumerate(queue) if queued.seq > run.seq)
        queue.insert(position, run)

    def admit(self) -> None:
        assert self.nursery is not None
        while not self.draining:
            heads = {key: queue[0].seq for key, queue in self.waiting.items() if queue}
            lanes = {key: self._lane(key) for key in heads}
            caps = {lane.project: self._cap(lane.project) for lane in lanes.values()}
            key = next_lane(
                heads,
                lanes,
                self.lane_running,
                self.project_running,
                caps,
                total_running=len(self.active),
                capacity=self.settings.pool.size,
            )
            if key is None:
                return
            run = self.waiting[key].popleft()
            self.lane_running[key] = self.lane_running.get(key, 0) + 1
            self.project_running[run.project] = self.project_running.get(run.project, 0) + 1
            active = self.active[run.id] = _Active(run)
            self.nursery.start_soon(self._drive, active)

    def with_default_sink(self, project: ProjectVersion, options: RunOptions) -> RunOptions:
        """A run without a sink takes its project's Intuned.json default, else the daemon's."""
        if options.sink:
            return options
        default = project.default_sink or self.settings.sinks.default or None
        return msgspec.structs.replace(options, sink=default) if default else options

    def _cap(self, name: str) -> int:
        project = self.projects.get(name)
        return project.max_concurrent if project else 1

    def _finished(self, run: RunRecord) -> None:
        self.active.pop(run.id, None)
        self.lane_running[self.lane_key(run)] -= 1
        self.project_running[run.project] -= 1
        for waiter in self.waiters.pop(run.id, []):
            answer(waiter, Reply(value=None))
        self.admit()
        if not self.active:
            self.idle.set()
            self.idle = trio.Event()

    def remove_waiting(self, run_ids: set[str]) -> None:
        for key, queue in self.waiting.items():
            if any(run.id in run_ids for run in queue):
                self.waiting[key] = deque(run for run in queue if run.id not in run_ids)

    # -- driving one run ------------------------------------------------------------------

    async def _version(self, run: RunRecord) -> ProjectVersion:
        key = (run.project, run.version)
        if key not in self.versions:
            found = await self.store.read(queries.project_version, run.project, run.version)
            if found is None:
                raise AssertionError(f"run {run.id} refers to unknown project version {key}")
            self.versions[key] = found
        return self.versions[key]

    async def _drive(self, active: _Active) -> None:
        run = active.run
        requeued: RunRecord | None = None
        try:
            with active.scope:
                await self._attempts(active)
            if active.scope.cancel_called:
                with trio.CancelScope(shield=True):
                    requeued = await self._record_cancel(active)
        finally:
            self._finished(run)
        if requeued is not None:
            self.enqueue(requeued)
            self.admit()

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
                await self.store.write(_end_attempt, run, number, outcome, decision.action, decision.error)
                active.attempt = None
                continue
            extension = self._extension(run, project, outcome) if decision.action == "complete" else None
            ended: tuple[list[RunRecord], bool] = await self.store.write(
                _end_run, run, number, outcome, decision.action, decision.error, extension
            )
            created, job_run_done = ended
            active.attempt = None
            for new_run in created:
                self.enqueue(new_run)
            if job_run_done and run.job_run_id is not None:
                self.close_lane(run.job_run_id)
            self.admit()
            return

    def _extension(self, run: RunRecord, project: ProjectVersion, outcome: AttemptOutcome) -> _Extension | None:
        """extend_payload inside a JobRun: the new items' runs, inheriting the JobRun's settings."""
        if run.job_run_id is None or not outcome.extended_payloads:
            return None
        spec = spec_from_snapshot(self.job_snapshots.get(run.job_run_id, {}))
        items = [PayloadItem(api_name=p.api, parameters=p.parameters or {}) for p in outcome.extended_payloads]
        defaults = self.settings.runs
        options = [
            self.with_default_sink(
                project,
                item_options(
                    spec,
                    item,
                    default_attempts=defaults.default_max_attempts,
                    default_timeout=defaults.default_request_timeout_s,
                ),
            )
            for item in items
        ]
        return _Extension(project, items, [nanoid() for _ in items], options, spec.configuration.max_runs)

    async def _one_attempt(self, active: _Active, project: ProjectVersion, number: int) -> AttemptOutcome:
        run = active.run
        directory = self.settings.artifacts_path / run.id / str(number)
        log_path = directory / "log.jsonl"
        trace_path = directory / "trace.zip" if run.options.save_trace else None
        video_dir = directory / "video" if self.settings.runs.record_video else None
        start = protocol.Start(
            attempt_id=f"{run.id}/{number}",
            project_dir=project.path,
            api=run.api,
            parameters=run.parameters,
            context=protocol.RunContext(
                run_id=run.id,
                project_name=run.project,
                api_name=run.api,
                attempt_number=number,
                job_id=run.job_id,
                job_run_id=run.job_run_id,
                proxy=run.options.proxy,
            ),
            log_path=str(log_path),
            trace_path=str(trace_path) if trace_path else None,
            video_dir=str(video_dir) if video_dir else None,
            proxy=run.options.proxy,
            headless=self.settings.pool.headless,
            max_result_bytes=self.settings.runs.max_result_bytes,
        )
        async with self.pool.lease() as lease:
            await self.store.write(queries.start_attempt, run, number, str(log_path), start.trace_path, start.video_dir)
            active.attempt = number
            return await run_attempt(
                lease,
                start,
                timeout_s=run.options.request_timeout_s,
                abort_grace_s=self.settings.pool.abort_grace_s,
                kv=_KeyValue(self.store, run.project),
            )

    async def _record_cancel(self, active: _Active) -> RunRecord | None:
        """Record why the run stopped; returns it when it must wait again (its JobRun paused)."""
        # finish_attempt and finish_run only touch what is still unfinished, so a cancel
        # racing with the attempt's own end cannot overwrite a recorded outcome.
        if active.draining:
            if active.attempt is not None:
                await self.store.write(_interrupt_attempt, active.run, active.attempt)
            return None
        if active.requeue_reason is not None and active.cancel_reason is None:
            await self.store.write(job_queries.requeue_run, active.run, active.attempt, active.requeue_reason)
            return await self.store.read(queries.get_run, active.run.id)
        await self.store.write(_cancel_run, active.run, active.attempt, active.cancel_reason or CANCELED_BY_USER)
        return None

    # -- commands -------------------------------------------------------------------------

    async def handle(self, command: RunnerCommand) -> None:
        if isinstance(command, CancelRun):
            await self.cancel(command)  # answers once the cancel is recorded
            return
        if isinstance(command, WaitRun):
            self.wait(command)
            return
        try:
            value = await self._respond(command)
        except ApiError as e:
            answer(command.reply, Reply(error=e))
            return
        answer(command.reply, Reply(value=value))

    async def _respond(self, command: SubmitRun | Deploy | JobCommand) -> Any:
        if isinstance(command, SubmitRun):
            return await self.submit(command)
        if isinstance(command, Deploy):
            return await self.deploy(command)
        return await self.job_command(command)

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
        options = self.with_default_sink(project, command.options)
        run = await self.store.write(queries.insert_run, nanoid(), project, command.api, command.parameters, options)
        self.enqueue(run)
        self.admit()
        return run

    async def cancel(self, command: CancelRun) -> None:
        run = await self.store.read(queries.get_run, command.run_id)
        if run is None or run.project != command.project:
            answer(command.reply, Reply(error=NotFound(f"run '{command.run_id}' not found")))
            return
        active = self.active.get(run.id)
        if active is not None:
            # Answered once the run task has recorded the cancel.
            self.waiters.setdefault(run.id, []).append(command.reply)
            active.cancel_reason = CANCELED_BY_USER
            active.scope.cancel()
            return
        queue = self.waiting.get(self.lane_key(run), deque())
        if any(queued.id == run.id for queued in queue):
            self.remove_waiting({run.id})
            await self.store.write(_cancel_run, run, None, CANCELED_BY_USER)
        answer(command.reply, Reply(value=None))
        for waiter in self.waiters.pop(run.id, []):
            answer(waiter, Reply(value=None))

    def wait(self, command: WaitRun) -> None:
        unfinished = command.run_id in self.active or any(
            run.id == command.run_id for queue in self.waiting.values() for run in queue
        )
        if unfinished:
            self.waiters.setdefault(command.run_id, []).append(command.reply)
        else:
            answer(command.reply, Reply(value=None))

    async def deploy(self, command: Deploy) -> ProjectVersion:
        try:
            name = projects.check_name(command.name)
            version = await self.store.read(queries.next_project_version, name)
            directory = self.settings.projects_path / name / str(version)
            apis, settings, raw, code_jobs = await trio.to_thread.run_sync(_prepare_project, command.archive, directory)
        except projects.ProjectError as e:
            raise BadRequest(str(e), details={"field": "archive"}) from e
        project = ProjectVersion(
            name=name,
            version=version,
            path=str(directory),
            apis=apis,
            api_access=settings.api_access.enabled,
            max_concurrent=max(1, settings.replication.max_concurrent_requests),
            deployed_at=iso(self.clock.now()),
            default_sink=settings.default_sink,
        )
        await self.store.write(queries.record_deploy, project, raw)
        self.projects[name] = self.versions[(name, version)] = project
        await self.apply_code_jobs(name, code_jobs)
        self.admit()
        return project

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


def _prepare_project(
    archive: bytes, directory: Path
) -> tuple[list[str], projects.ProjectSettings, Any, dict[str, JobSpec]]:
    projects.unpack(archive, directory)
    apis = projects.scan_apis(directory)
    if not apis:
        raise projects.ProjectError("the project has no APIs: expected api/<name>.py files")
    settings, raw = projects.read_settings(directory)
    return apis, settings, raw, projects.read_code_jobs(directory)


def _end_attempt(
    tx: queries.Tx,
    run: RunRecord,
    number: int,
    outcome: AttemptOutcome,
    action: str,
    run_error: dict[str, Any] | None,
    extended: list[dict[str, Any]] | None = None,
) -> None:
    """Record an attempt's end and, unless the run retries, the run's; ``extended`` replaces
    the attempt's extended payloads once a JobRun has given them run ids."""
    queries.finish_attempt(tx, run, number, outcome.status, outcome.error)
    if action == "complete":
        if extended is None:
            extended = [msgspec.to_builtins(p) for p in outcome.extended_payloads]
        queries.finish_run(tx, run, "completed", result=outcome.result, extended_payloads=extended or None)
    elif action == "fail":
        queries.finish_run(tx, run, "failed", error=run_error)


class _Extension(msgspec.Struct, frozen=True):
    project: ProjectVersion
    items: list[PayloadItem]
    run_ids: list[str]
    options: list[RunOptions]
    max_runs: int | None


def _end_run(
    tx: queries.Tx,
    run: RunRecord,
    number: int,
    outcome: AttemptOutcome,
    action: str,
    run_error: dict[str, Any] | None,
    extension: _Extension | None,
) -> tuple[list[RunRecord], bool]:
    """The run's last attempt, its end, its extended items and its JobRun's end: one transaction."""
    created: list[RunRecord] = []
    extended = None
    if extension is not None:
        created = job_queries.extend_job_run(
            tx, run, extension.project, extension.items, extension.run_ids, extension.options, extension.max_runs
        )
        extended = [
            {"api": item.api_name, "parameters": item.parameters, "runId": run_id}
            for item, run_id in zip(extension.items, extension.run_ids, strict=True)
        ]
    _end_attempt(tx, run, number, outcome, action, run_error, extended)
    done = run.job_run_id is not None and job_queries.item_ended(tx, run.job_run_id)
    return created, done


def _cancel_run(tx: queries.Tx, run: RunRecord, number: int | None, reason: dict[str, Any]) -> None:
    if number is not None:
        queries.finish_attempt(tx, run, number, "canceled", {"code": "canceled", "message": reason["message"]})
    queries.finish_run(tx, run, "canceled", reason=reason)
    if run.job_run_id is not None:
        job_queries.item_ended(tx, run.job_run_id)


def _interrupt_attempt(tx: queries.Tx, run: RunRecord, number: int) -> None:
    queries.finish_attempt(
        tx, run, number, "interrupted", {"code": "interrupted", "message": "The daemon stopped during this attempt"}
    )


async def run_runner(
    store: StoreHandle,
    pool: PoolHandle,
    settings: Settings,
    job_changes: trio.MemorySendChannel[JobChanged],
    *,
    clock: Clock,
    task_status: trio.TaskStatus[tuple[RunnerHandle, Callable[[float], Awaitable[None]]]] = trio.TASK_STATUS_IGNORED,
) -> NoReturn:
    runner = _Runner(store, pool, settings, clock, job_changes)
    for project in await store.read(queries.current_projects):
        runner.projects[project.name] = runner.versions[(project.name, project.version)] = project
    for job_run in await store.read(job_queries.active_job_runs):
        runner.open_lane(job_run)
    interrupted = await store.write(queries.interrupt_running_attempts)
    unfinished = await store.read(queries.unfinished_runs)
    if interrupted or unfinished:
        log.info("recovering %d unfinished runs (%d interrupted attempts)", len(unfinished), interrupted)
    send, receive = trio.open_memory_channel[RunnerCommand](INBOX_SIZE)
    async with receive, trio.open_nursery() as nursery:
        runner.nursery = nursery
        for run in unfinished:
            runner.enqueue(run)
        runner.admit()
        task_status.started((RunnerHandle(send, runner.statistics), runner.drain))
        async for command in receive:
            await runner.handle(command)
    raise AssertionError("runner inbox closed")
