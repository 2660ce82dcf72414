"""A Job as Intuned's API writes it, and the records the store keeps of jobs and JobRuns.

Field names copy the wire exactly: the body's top level is snake_case (``auth_session``)
while payload items and the configuration are camelCase (``apiName``, ``maxConcurrentRequests``).
"""

from __future__ import annotations

import re
from typing import Annotated, Any

import msgspec
from msgspec import Meta, Struct

from .errors import BadRequest
from .policy.rate_limits import parse_config
from .policy.schedule import ScheduleError, parse_schedule
from .proxies import check_proxy
from .sinks.config import SinkFieldError, parse_sink

JOB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$")
Attempts = Annotated[int, Meta(ge=1, le=100)]
Seconds = Annotated[int, Meta(ge=1, le=7 * 24 * 3600)]


class Retry(Struct, rename="camel", omit_defaults=True):
    maximum_attempts: Attempts | None = None


class PayloadItem(Struct, rename="camel"):
    api_name: Annotated[str, Meta(min_length=1)]
    parameters: dict[str, Any] = {}
    request_timeout: Seconds | None = None
    retry: Retry | None = None


class JobConfiguration(Struct, rename="camel", omit_defaults=True):
    retry: Retry | None = None
    max_concurrent_requests: Annotated[float, Meta(ge=1, le=1000)] | None = None
    request_timeout: Seconds | None = None
    max_runs: Annotated[int, Meta(ge=1)] | None = None
    proxy: str | None = None
    save_trace: bool | None = None  # ours: items keep a Playwright trace unless this is false
    rate_limits: list[Any] | None = None  # ours: a queue's rateLimits, limiting how fast items start
    # Intuned's 2024 fields, accepted and ignored for compatibility.
    run_mode: str | None = None


class JobAuthSession(Struct, rename="camel", omit_defaults=True):
    id: str
    check_attempts: Attempts = 3
    create_attempts: Attempts = 3
    save_trace: bool | None = None


class JobSpec(Struct, omit_defaults=True):
    """The create body without ``id``, which is also the update body."""

    payload: list[PayloadItem]
    configuration: JobConfiguration
    schedule: dict[str, Any] | None = None
    sink: dict[str, Any] | None = None
    proxy: str | None = None
    auth_session: JobAuthSession | None = None
    notifications: list[dict[str, Any]] | None = None


class JobCreate(JobSpec, omit_defaults=True, kw_only=True):
    id: str


class JobRecord(Struct, frozen=True, kw_only=True):
    project: str
    id: str
    spec: JobSpec
    state: str
    source: str
    created_at: str
    updated_at: str
    next_run_time: str | None = None
    last_run_time: str | None = None
    last_slot_ms: int | None = None


class JobRunRecord(Struct, frozen=True, kw_only=True):
    id: str
    project: str
    job_id: str
    type: str
    status: str
    snapshot: dict[str, Any]
    max_concurrent: int
    created_at: str
    updated_at: str
    start_time: str
    end_time: str | None = None
    reason: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    slot_key: str | None = None


def sink_field(error: msgspec.ValidationError) -> str:
    """``sink.url``: the field a sink check names, else msgspec's "... - at `$.url`" (or the
    missing field it names)."""
    if isinstance(error.__cause__, SinkFieldError):
        return f"sink.{error.__cause__.field}"
    message = str(error)
    for marker in ("missing required field `", "at `$."):
        if marker in message:
            return "sink." + message.split(marker, 1)[1].split("`", 1)[0]
    return "sink"


class JobSpecError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def check_job_spec(spec: JobSpec) -> None:
    """Checks a decoder cannot make (schedule, proxies, sink kind); the error names the field."""
    if spec.schedule is not None:
        try:
            parse_schedule(spec.schedule)
        except ScheduleError as e:
            raise JobSpecError(e.field, str(e).split(": ", 1)[-1]) from e
    if spec.configuration.rate_limits is not None:
        try:
            parse_config(spec.configuration.rate_limits, None, None)
        except BadRequest as e:
            raise JobSpecError(str((e.details or {}).get("field", "configuration.rateLimits")), e.message) from e
    for where, proxy in (("proxy", spec.proxy), ("configuration.proxy", spec.configuration.proxy)):
        try:
            check_proxy(proxy)
        except ValueError as e:
            raise JobSpecError(where, str(e)) from e
    if spec.sink is not None:
        try:
            parse_sink(spec.sink)
        except msgspec.ValidationError as e:
            raise JobSpecError(sink_field(e), str(e)) from e


def snapshot(spec: JobSpec) -> dict[str, Any]:
    """``job_configuration_snapshot``: the job as it was when the JobRun started."""
    body: dict[str, Any] = {
        "configuration": msgspec.to_builtins(spec.configuration),
        "sink": spec.sink,
        "auth_session": msgspec.to_builtins(spec.auth_session) if spec.auth_session else None,
    }
    proxy = spec.configuration.proxy or spec.proxy
    if proxy:
        body["proxy"] = {"version": "v1", "url": proxy}
    if spec.notifications:
        body["notifications"] = spec.notifications
    return body


def spec_from_snapshot(snap: dict[str, Any]) -> JobSpec:
    """The parts of a job a JobRun keeps using: what its items (and extended ones) inherit."""
    proxy = snap.get("proxy")
    return JobSpec(
        payload=[],
        configuration=msgspec.convert(snap.get("configuration") or {}, JobConfiguration),
        sink=snap.get("sink"),
        proxy=proxy["url"] if isinstance(proxy, dict) else proxy,
        auth_session=msgspec.convert(snap["auth_session"], JobAuthSession) if snap.get("auth_session") else None,
    )
