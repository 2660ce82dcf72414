"""Queues on the wire: the Queue, item result and repeat item shapes (spec §3.2), and what
GET adds of our own: the queue's ``state`` (depth, item running, and why the next one waits)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from msgspec import UNSET, Struct, UnsetType

from ..clock import iso
from ..messages import RunRecord
from ..policy.rate_limits import Wait
from ..queue_spec import QueueConfiguration, QueueRecord, RepeatItemRecord
from ..sinks.config import mask as mask_sink
from ..store.queue_queries import QueueState

RUN_STATUS = {"pending": "queued", "started": "pending"}  # the run's status -> the item's


class QueueStateWire(Struct, rename="camel"):
    queued_items: int
    running_item: str | None
    running_attempt: int | None
    next_item_at: str | None
    waiting_for: str | None


class QueueWire(Struct, rename="camel", omit_defaults=True):
    id: str
    configuration: QueueConfiguration
    name: str | UnsetType = UNSET
    sink: dict[str, Any] | UnsetType = UNSET
    auth_session: Any = UNSET
    metadata: dict[str, Any] | UnsetType = UNSET
    created_at: str | UnsetType = UNSET
    state: QueueStateWire | UnsetType = UNSET


class QueueCreated(Struct):
    id: str


class ItemQueued(Struct, rename="camel"):
    run_id: str
    status: str


class ItemResult(Struct, rename="camel", omit_defaults=True):
    run_id: str
    status: str
    result: Any = UNSET
    error: Any = UNSET
    status_code: int | UnsetType = UNSET


class RepeatItemWire(Struct, rename="camel", omit_defaults=True):
    id: str
    api_name: str
    parameters: dict[str, Any]
    repeat: str | int | float
    retry: Any = UNSET
    auth_session: Any = UNSET
    last_run_id: str | UnsetType = UNSET
    next_at: str | UnsetType = UNSET


class RepeatCreated(Struct):
    id: str
    status: str = "repeatable item created"


def waiting_for(state: QueueState, wait: Wait | None, now: datetime) -> str | None:
    """Why the queue's next item has not started: its head still running (or being retried),
    its limits (``rate_limit``, ``pause_window``, ``random_wait``), or the daemon's capacity."""
    if state.running is not None:
        return "retrying_head" if state.running.attempts_count > 1 else "running_item"
    if not state.queued:
        return None
    if wait is not None and wait.reason is not None and wait.at > now:
        return wait.reason
    return "capacity"


def queue_body(
    queue: QueueRecord, state: QueueState | None = None, wait: Wait | None = None, now: datetime | None = None
) -> QueueWire:
    spec = queue.spec
    body = QueueWire(
        id=queue.id,
        configuration=spec.configuration,
        name=UNSET if spec.name is None else spec.name,
        sink=UNSET if spec.sink is None else mask_sink(spec.sink) or UNSET,
        auth_session=UNSET if spec.auth_session is None else spec.auth_session,
        metadata=UNSET if spec.metadata is None else spec.metadata,
        created_at=queue.created_at,
    )
    if state is not None and now is not None:
        reason = waiting_for(state, wait, now)
        at = wait.at if wait is not None and reason in ("rate_limit", "pause_window", "random_wait") else None
        body.state = QueueStateWire(
            queued_items=state.queued,
            running_item=state.running.id if state.running else None,
            running_attempt=state.running.attempts_count if state.running else None,
            next_item_at=iso(at) if at is not None else None,
            waiting_for=reason,
        )
    return body


def item_result(run: RunRecord) -> ItemResult:
    status = RUN_STATUS.get(run.status)
    if status is not None:
        return ItemResult(run.id, status)
    if run.status == "completed":
        return ItemResult(run.id, "completed", result=run.result, status_code=200)
    error = run.error if run.error is not None else run.reason
    return ItemResult(run.id, "failed", error=error or {}, status_code=500)


def repeat_body(repeat: RepeatItemRecord) -> RepeatItemWire:
    spec = repeat.spec
    return RepeatItemWire(
        id=repeat.id,
        api_name=spec.api_name,
        parameters=spec.parameters,
        repeat=spec.repeat,
        retry=UNSET if spec.retry is None else msgspec.to_builtins(spec.retry),
        auth_session=UNSET if spec.auth_session is None else msgspec.to_builtins(spec.auth_session),
        last_run_id=UNSET if repeat.last_run_id is None else repeat.last_run_id,
        next_at=repeat.next_at,
    )
