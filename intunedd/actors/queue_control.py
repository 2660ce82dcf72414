"""Queues as the runner sees them: create and delete, append and delete items, repeat items.

A queue's items are ordinary runs (run type ``QUEUE``) in a lane of their own, one at a time in
the order they were appended; the head's attempts (its retries) all happen before the next item
starts. The lane is gated (``gates.Gates``): the rate-limiter actor says when its next item may
start. Repeat items are appended by a task here when due; their next time is committed with the
item, so a restart neither skips one nor appends it twice. Every change is committed before the
runner acts on it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, Protocol

import msgspec
import trio

from ..clock import Clock, iso, parse_iso
from ..config import QueueSettings
from ..errors import ApiError, BadRequest, Conflict, NotFound
from ..ids import nanoid, new_uuid
from ..job_spec import JobSpecError
from ..messages import ProjectVersion, QueueCommand, RunRecord
from ..policy import run_options
from ..policy.rate_limits import Wait
from ..policy.repeat_items import next_repeat_at
from ..queue_spec import (
    QUEUE_ID,
    QueueCreate,
    QueueItem,
    QueueRecord,
    QueueSpec,
    RepeatItemInput,
    RepeatItemRecord,
    check_queue_spec,
    limiter_config,
    repeat_period_ms,
)
from ..store import queries, queue_queries, run_transactions
from ..store.queue_queries import QueueState
from .gates import Gates
from .lanes import Lanes, queue_lane
from .rate_limiter import RateLimiterHandle
from .store import StoreHandle

log = logging.getLogger(__name__)
QUEUE_DELETED = {"type": "queue-deleted", "message": "The queue was deleted."}
ITEM_DELETED = {"type": "queue-item-deleted", "message": "The item was deleted from its queue."}
QUEUE_GONE = {"type": "queue-deleted", "message": "The item's queue no longer exists or could not be read."}
# After a repeat item could not be appended (the store refused it), the next try waits this long.
REPEAT_RETRY_S = 5.0


class QueueView(msgspec.Struct, frozen=True):
    """A queue with what it is doing: its depth, its item running, and its limiter's last answer."""

    queue: QueueRecord
    state: QueueState
    wait: Wait | None


class QueueRuns(Protocol):
    """What queue control needs of the runner."""

    @property
    def draining(self) -> bool: ...
    def project(self, name: str) -> ProjectVersion | None: ...
    def admit(self) -> None: ...
    def stop(self, matching: Callable[[RunRecord], bool], *, cancel: dict[str, Any]) -> None: ...
    def is_unfinished(self, run_id: str) -> bool: ...
    def start_soon(self, task: Callable[..., Awaitable[None]], *args: Any) -> None: ...


class QueueControl:
    def __init__(
        self,
        store: StoreHandle,
        lanes: Lanes,
        runs: QueueRuns,
        defaults: run_options.Defaults,
        clock: Clock,
        limiter: RateLimiterHandle | None,
        gates: Gates | None,
        limits: QueueSettings,
    ) -> None:
        self._store = store
        self._limits = limits
        self._lanes = lanes
        self._runs = runs
        self._defaults = defaults
        self._clock = clock
        self._limiter = limiter
        self._gates = gates
        self._queues: dict[tuple[str, str], QueueRecord] = {}
        self._repeats: dict[tuple[str, str, str], RepeatItemRecord] = {}
        self._repeats_changed = trio.Event()

    async def recover(self) -> None:
        """Open every stored queue and load its repeat items; unreadable rows are quarantined."""
        queues, bad_queues = await self._store.read(queue_queries.queues_checked)
        for queue in queues:
            try:
                await self._open(queue)
            except ApiError as e:  # limits stored by a version that checked less: the queue waits, quarantined
                bad_queues.append((f"{queue.project}/{queue.id}", f"invalid configuration: {e.message}"))
        repeats, bad_repeats = await self._store.read(queue_queries.repeats_checked)
        for repeat in repeats:
            self._repeats[(repeat.project, repeat.queue_id, repeat.id)] = repeat
        for kind, bad in (("queue", bad_queues), ("queue_repeat_item", bad_repeats)):
            for record_id, reason in bad:
                log.error("quarantined %s %s: %s", kind, record_id, reason)
                await self._store.write(queries.quarantine, kind, record_id, reason)

    def orphaned(self, runs: list[RunRecord]) -> list[RunRecord]:
        """Unfinished items whose queue is not open (deleted, or quarantined): they cannot run."""
        return [run for run in runs if run.queue_id is not None and (run.project, run.queue_id) not in self._queues]

    async def _open(self, queue: QueueRecord) -> None:
        config = limiter_config(queue.spec)
        self._queues[(queue.project, queue.id)] = queue
        gate = self._lanes.open_queue(queue.project, queue.id, gated=self._limiter is not None)
        if self._limiter is not None:
            await self._limiter.configure(gate, config)
        if self._gates is not None:
            self._gates.reconsider(gate)

    async def command(self, command: QueueCommand) -> Any:
        project, queue_id, body = command.project, command.queue_id, command.body
        if command.op == "create":
            return await self._create(project, body)
        if command.op == "list":
            return await self._views(project)
        queue = self._queue(project, queue_id)
        if command.op == "state":
            state = await self._store.read(queue_queries.queue_state, project, queue_id)
            return QueueView(queue=queue, state=state, wait=self._wait(queue))
        if command.op == "delete":
            return await self._delete(queue)
        if command.op == "append":
            return await self._append(queue, body)
        if command.op == "delete_item":
            assert command.item_id is not None
            return await self._delete_item(queue, command.item_id)
        if command.op == "add_repeat":
            return await self._add_repeat(queue, body)
        assert command.item_id is not None
        if command.op == "update_repeat":
            return await self._update_repeat(queue, command.item_id, body)
        return await self._delete_repeat(queue, command.item_id)

    def _wait(self, queue: QueueRecord) -> Wait | None:
        return self._limiter.state(queue_lane(queue.project, queue.id)) if self._limiter else None

    async def _views(self, project: str) -> list[QueueView]:
        """Every queue of ``project``, oldest first, with one read of their states."""
        queues = sorted((q for q in self._queues.values() if q.project == project), key=lambda q: (q.created_at, q.id))
        states = await self._store.read(queue_queries.queue_states, project)
        idle = QueueState(queued=0, running=None)
        return [QueueView(queue=q, state=states.get(q.id, idle), wait=self._wait(q)) for q in queues]

    def _queue(self, project: str, queue_id: str) -> QueueRecord:
        queue = self._queues.get((project, queue_id))
        if queue is None:
            raise NotFound(f"queue '{queue_id}' not found in project '{project}'", details={"field": "queueId"})
        return queue

    def _project(self, name: str) -> ProjectVersion:
        project = self._runs.project(name)
        if project is None:
            raise NotFound(f"project '{name}' is not deployed", details={"field": "projectName"})
        return project

    # -- queues ---------------------------------------------------------------------------

    async def _create(self, project_name: str, body: QueueCreate) -> str:
        self._project(project_name)
        # Each queue holds a lane, a gate and limiter state in memory: their number is bounded.
        most = self._limits.max_per_project
        if sum(project == project_name for project, _ in self._queues) >= most:
            raise Conflict(
                f"project '{project_name}' has {most} queues, the most queues.max_per_project allows: delete one first"
            )
        queue_id = body.id or new_uuid()  # a nanoid may begin with "-" or "_", which a queue id may not
        if not QUEUE_ID.match(queue_id):
            raise BadRequest("id must be a URL slug: 1-100 letters, digits, '-' or '_'", details={"field": "id"})
        spec = QueueSpec(**{name: getattr(body, name) for name in QueueSpec.__struct_fields__})
        try:
            check_queue_spec(spec)
        except JobSpecError as e:
            raise BadRequest(f"Invalid queue: {e}", details={"field": e.field}) from e
        await self._store.write(queue_queries.insert_queue, project_name, queue_id, spec)
        now = iso(self._clock.now())
        await self._open(QueueRecord(project=project_name, id=queue_id, spec=spec, created_at=now, updated_at=now))
        return queue_id

    async def _delete(self, queue: QueueRecord) -> None:
        canceled = await self._store.write(queue_queries.delete_queue, queue, QUEUE_DELETED)
        self._lanes.remove(set(canceled))
        self._runs.stop(lambda run: run.project == queue.project and run.queue_id == queue.id, cancel=QUEUE_DELETED)
        self._lanes.close_queue(queue.project, queue.id)
        del self._queues[(queue.project, queue.id)]
        for key in [key for key in self._repeats if key[:2] == (queue.project, queue.id)]:
            del self._repeats[key]
        gate = queue_lane(queue.project, queue.id)
        if self._limiter is not None:
            await self._limiter.forget(gate)
        if self._gates is not None:
            self._gates.reconsider(gate)

    # -- items ----------------------------------------------------------------------------

    def _check_item(self, queue: QueueRecord, item: QueueItem) -> ProjectVersion:
        project = self._project(queue.project)
        if item.api_name not in project.apis:
            raise BadRequest(
                f"API '{item.api_name}' does not exist in project '{project.name}'",
                details={"field": "apiName", "available": project.apis},
            )
        if project.auth_required and item.auth_session is None and queue.spec.auth_session is None:
            raise BadRequest(
                f"project '{project.name}' uses AuthSessions (Intuned.json authSessions.enabled): "
                "the item or its queue must name one in authSession",
                details={"field": "authSession"},
            )
        return project

    async def _append(self, queue: QueueRecord, item: QueueItem) -> RunRecord:
        project = self._check_item(queue, item)
        options = run_options.for_queue_item(queue.spec, item, project, self._defaults)
        run: RunRecord = await self._store.write(
            queue_queries.insert_item, project, queue.id, item, nanoid(), options
        )
        self._lanes.enqueue(run)
        self._runs.admit()
        return run

    async def _delete_item(self, queue: QueueRecord, run_id: str) -> None:
        run = await self._store.read(queue_queries.get_item, queue.project, queue.id, run_id)
        if run is None or (run.reason or {}).get("type") == ITEM_DELETED["type"]:
            raise NotFound(f"item '{run_id}' not found in queue '{queue.id}'", details={"field": "itemRunId"})
        if self._lanes.is_waiting(run.id):
            self._lanes.remove({run.id})
            await self._store.write(run_transactions.cancel_run, run, None, ITEM_DELETED)
            self._runs.admit()
            return
        state = "is being processed" if self._runs.is_unfinished(run.id) else "has already been processed"
        raise BadRequest(
            f"item '{run_id}' {state}: only queued items can be deleted",
            details={"field": "itemRunId", "status": "pending" if run.status in ("pending", "started") else run.status},
        )

    def spec(self, project: str, queue_id: str) -> QueueSpec | None:
        queue = self._queues.get((project, queue_id))
        return queue.spec if queue else None

    # -- repeat items ---------------------------------------------------------------------

    async def _add_repeat(self, queue: QueueRecord, body: RepeatItemInput) -> str:
        self._check_item(queue, body)
        most = self._limits.max_repeat_items_per_queue
        if sum(key[:2] == (queue.project, queue.id) for key in self._repeats) >= most:
            raise Conflict(
                f"queue '{queue.id}' has {most} repeat items, the most queues.max_repeat_items_per_queue allows"
            )
        period = _period(body)
        item_id = nanoid()
        now = iso(self._clock.now())  # the first item is appended at once, then every period
        await self._store.write(queue_queries.insert_repeat, queue.project, queue.id, item_id, body, period, now)
        self._repeats[(queue.project, queue.id, item_id)] = RepeatItemRecord(
            project=queue.project, queue_id=queue.id, id=item_id, spec=body, period_ms=period, next_at=now
        )
        self._repeats_changed.set()
        return item_id

    async def _update_repeat(self, queue: QueueRecord, item_id: str, body: RepeatItemInput) -> None:
        key = (queue.project, queue.id, item_id)
        current = self._repeat(key)
        self._check_item(queue, body)
        period = _period(body)
        # A shorter period takes effect from now; a longer one from the last append.
        sooner = self._clock.now() + timedelta(milliseconds=period)
        next_at = iso(min(parse_iso(current.next_at), sooner))
        await self._store.write(queue_queries.update_repeat, queue.project, queue.id, item_id, body, period, next_at)
        self._repeats[key] = msgspec.structs.replace(current, spec=body, period_ms=period, next_at=next_at)
        self._repeats_changed.set()

    async def _delete_repeat(self, queue: QueueRecord, item_id: str) -> None:
        key = (queue.project, queue.id, item_id)
        self._repeat(key)
        await self._store.write(queue_queries.delete_repeat, queue.project, queue.id, item_id)
        del self._repeats[key]

    def _repeat(self, key: tuple[str, str, str]) -> RepeatItemRecord:
        found = self._repeats.get(key)
        if found is None:
            raise NotFound(f"repeat item '{key[2]}' not found in queue '{key[1]}'", details={"field": "itemId"})
        return found

    async def append_repeats(self) -> None:
        """Append each repeat item when due, for as long as the runner lives."""
        while True:
            self._repeats_changed = trio.Event()
            now = self._clock.now()
            due = [r for r in self._repeats.values() if parse_iso(r.next_at) <= now]
            if due and not self._runs.draining:
                for repeat in due:
                    await self._append_repeat(repeat)
                continue
            times = [parse_iso(r.next_at) for r in self._repeats.values()]
            delay = (min(times) - now).total_seconds() if times and not due else math.inf
            with trio.move_on_after(max(delay, 0)):
                await self._repeats_changed.wait()

    async def _append_repeat(self, repeat: RepeatItemRecord) -> None:
        key = (repeat.project, repeat.queue_id, repeat.id)
        now = self._clock.now()
        next_at = iso(next_repeat_at(parse_iso(repeat.next_at), repeat.period_ms, now))
        try:
            queue = self._queue(repeat.project, repeat.queue_id)
            project = self._check_item(queue, repeat.spec)
            options = run_options.for_queue_item(queue.spec, repeat.spec, project, self._defaults)
            run = await self._store.write(queue_queries.append_repeat, repeat, project, nanoid(), options, next_at)
        except Exception as e:  # noqa: BLE001 - one repeat item's trouble must not stop the others
            log.warning("repeat item %s of queue %s not appended: %s", repeat.id, repeat.queue_id, e)
            if key in self._repeats:
                # Its API or project gone: wait for the next beat; the store refusing: try again soon.
                lasting = isinstance(e, BadRequest | NotFound)
                later = next_at if lasting else iso(now + timedelta(seconds=REPEAT_RETRY_S))
                self._repeats[key] = msgspec.structs.replace(repeat, next_at=later)
            return
        if key in self._repeats:
            self._repeats[key] = msgspec.structs.replace(
                repeat, next_at=next_at, last_run_id=run.id if run else repeat.last_run_id
            )
        if run is not None:
            self._lanes.enqueue(run)
            self._runs.admit()


def _period(body: RepeatItemInput) -> int:
    try:
        return repeat_period_ms(body)
    except JobSpecError as e:
        raise BadRequest(f"Invalid repeat item: {e}", details={"field": e.field}) from e
