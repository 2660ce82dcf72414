"""Which options a run gets: the one place every kind of run (a run/start body, a job's
payload item, an item a JobRun's automation added, a queue item) has its options resolved.

The run's own request wins, then its job (the item, then ``configuration``, then the job's
top level), then the daemon's defaults. A run without a sink takes its project's
Intuned.json default (``defaults.sink``), else the daemon's ``sinks.default``.
"""

from __future__ import annotations

from typing import Any

import msgspec

from ..job_spec import JobSpec, PayloadItem
from ..messages import ProjectVersion, RunOptions, RunRequest
from ..queue_spec import QueueItem, QueueSpec


class Defaults(msgspec.Struct, frozen=True, kw_only=True):
    max_attempts: int
    request_timeout_s: int
    sink: dict[str, Any] | None = None


def for_request(request: RunRequest, project: ProjectVersion, defaults: Defaults) -> RunOptions:
    return RunOptions(
        max_attempts=request.max_attempts or defaults.max_attempts,
        request_timeout_s=request.request_timeout_s or defaults.request_timeout_s,
        save_trace=request.save_trace,
        proxy=request.proxy,
        auth_session=request.auth_session,
        sink=_sink(request.sink, project, defaults),
    )


def for_item(spec: JobSpec, item: PayloadItem, project: ProjectVersion, defaults: Defaults) -> RunOptions:
    config = spec.configuration
    attempts = (item.retry and item.retry.maximum_attempts) or (config.retry and config.retry.maximum_attempts)
    return RunOptions(
        max_attempts=attempts or defaults.max_attempts,
        request_timeout_s=item.request_timeout or config.request_timeout or defaults.request_timeout_s,
        save_trace=config.save_trace is not False,
        proxy=config.proxy or spec.proxy,
        auth_session=msgspec.to_builtins(spec.auth_session) if spec.auth_session else None,
        sink=_sink(spec.sink, project, defaults),
    )


def for_queue_item(spec: QueueSpec, item: QueueItem, project: ProjectVersion, defaults: Defaults) -> RunOptions:
    """The item's retry and session, else its queue's; the queue's sink."""
    config = spec.configuration
    attempts = (item.retry and item.retry.maximum_attempts) or (config.retry and config.retry.maximum_attempts)
    session = item.auth_session or spec.auth_session
    return RunOptions(
        max_attempts=attempts or defaults.max_attempts,
        request_timeout_s=defaults.request_timeout_s,
        save_trace=True,
        auth_session=msgspec.to_builtins(session) if session else None,
        sink=_sink(spec.sink, project, defaults),
    )


def _sink(own: Any, project: ProjectVersion, defaults: Defaults) -> Any:
    return own or project.default_sink or defaults.sink or None
