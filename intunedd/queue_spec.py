"""A Queue as Intuned's (2024) API writes it, its items and repeat items, and the records kept of them.

Field names copy the wire: camelCase throughout (``authSession``, ``rateLimits``, ``apiName``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta, Struct

from .job_spec import JOB_ID, JobAuthSession, JobSpecError, Retry, sink_field
from .policy.durations import DurationError, parse_duration_ms
from .policy.rate_limits import RateLimitConfig, parse_config
from .sinks.config import parse_sink

QUEUE_ID = JOB_ID
MIN_REPEAT_MS = 10 * 60_000  # Intuned's floor: a repeat item comes back at most every 10 minutes
MAX_REPEAT_MS = 366 * 86_400_000


class QueueConfiguration(Struct, rename="camel", omit_defaults=True):
    run_mode: Literal["Default"] = "Default"  # the only mode Intuned has: FIFO
    retry: Retry | None = None
    rate_limits: list[Any] | None = None
    schedule: Any = None
    random_wait: Any = None


class QueueSpec(Struct, rename="camel", omit_defaults=True):
    """The create body without ``id``."""

    configuration: QueueConfiguration
    name: Annotated[str, Meta(max_length=200)] | None = None
    sink: dict[str, Any] | None = None
    auth_session: JobAuthSession | None = None
    metadata: dict[str, Any] | None = None


class QueueCreate(QueueSpec, rename="camel", omit_defaults=True, kw_only=True):
    id: str | None = None


class QueueItem(Struct, rename="camel", omit_defaults=True):
    api_name: Annotated[str, Meta(min_length=1, max_length=200)]
    parameters: dict[str, Any] = {}
    retry: Retry | None = None
    auth_session: JobAuthSession | None = None


class RepeatItemInput(QueueItem, rename="camel", omit_defaults=True, kw_only=True):
    repeat: str | int | float


class QueueRecord(Struct, frozen=True, kw_only=True):
    project: str
    id: str
    spec: QueueSpec
    created_at: str
    updated_at: str


class RepeatItemRecord(Struct, frozen=True, kw_only=True):
    project: str
    queue_id: str
    id: str
    spec: RepeatItemInput
    period_ms: int
    next_at: str
    last_run_id: str | None = None


def limiter_config(spec: QueueSpec) -> RateLimitConfig:
    config = spec.configuration
    return parse_config(config.rate_limits, config.schedule, config.random_wait)


def check_queue_spec(spec: QueueSpec) -> None:
    """Checks a decoder cannot make (limits, pause crons, sink); the error names the field."""
    limiter_config(spec)  # raises BadRequest naming the field
    if spec.sink is not None:
        try:
            parse_sink(spec.sink)
        except msgspec.ValidationError as e:
            raise JobSpecError(sink_field(e), str(e)) from e


def repeat_period_ms(item: RepeatItemInput) -> int:
    try:
        period = parse_duration_ms(item.repeat)
    except DurationError as e:
        raise JobSpecError("repeat", str(e)) from e
    if not MIN_REPEAT_MS <= period <= MAX_REPEAT_MS:
        raise JobSpecError("repeat", "must be between 10 minutes and 366 days")
    return int(period)
