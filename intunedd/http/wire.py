"""Every JSON body the HTTP API answers, as Structs named and cased exactly as the wire is.

Intuned's clients parse these, so the casing is theirs and mixed on purpose of history: runs
are camelCase, Jobs keep snake_case times beside ``projectId``, JobRuns are snake_case. A key
that is sometimes absent is ``UNSET`` (never encoded); ``None`` always encodes as ``null``.
The builders that fill these from records live beside the request schemas (``schemas.py``,
``job_schemas.py``); ``openapi.py`` turns these types into the published document.
"""

from __future__ import annotations

from typing import Any

from msgspec import UNSET, Struct, UnsetType

from ..actors.browser_pool import PoolStatistics
from ..actors.retention import DiskUsage, RetentionStatistics
from ..actors.runner import RunnerStatistics
from ..actors.sink_dispatcher import DispatcherStatistics
from ..actors.store import StoreStatistics
from ..job_spec import JobAuthSession, JobConfiguration, PayloadItem

# -- runs -------------------------------------------------------------------------------------


class RunStatus(Struct, rename="camel"):
    """The start (201) and cancel answers."""

    run_id: str
    status: str


class RunResult(Struct, rename="camel"):
    """``RunResultResponse``: what is present depends on ``status``."""

    run_id: str
    status: str
    result: Any | UnsetType = UNSET
    extended_payloads: list[Any] | UnsetType = UNSET
    message: str | UnsetType = UNSET
    error: Any | UnsetType = UNSET
    reason: Any | UnsetType = UNSET


class SyncRunResult(Struct, rename="camel", kw_only=True):
    """The legacy sync ``POST …/run`` answer; ``error`` is a code here, not an object."""

    status: str
    result: Any | UnsetType = UNSET
    error: str | UnsetType = UNSET
    message: str | UnsetType = UNSET
    status_code: int | UnsetType = UNSET
    run_id: str


class RunItem(Struct, rename="camel", kw_only=True):
    id: str
    api_name: str
    status: str
    run_type: str
    project_version: int
    created_at: str
    started_at: str | None
    ended_at: str | None
    run_duration: int | None
    attempts_count: int
    job_id: str | UnsetType = UNSET
    job_run_id: str | None | UnsetType = UNSET
    queue_id: str | UnsetType = UNSET
    error: Any | UnsetType = UNSET
    reason: Any | UnsetType = UNSET


class RunList(Struct, rename="camel"):
    items: list[RunItem]
    total: int
    # Ours: pass it back as ``cursor`` for the next page (keyset paging, fast at any depth).
    next_cursor: str | None = None


class AttemptItem(Struct, rename="camel", kw_only=True):
    """One attempt; the ``…Url`` links are signed and expire, and exist only for files kept."""

    number: int
    status: str
    started_at: str
    ended_at: str | None
    has_log: bool
    has_trace: bool
    has_video: bool
    error: Any | UnsetType = UNSET
    log_url: str | UnsetType = UNSET
    trace_url: str | UnsetType = UNSET
    video_url: str | UnsetType = UNSET
    trace_viewer_url: str | UnsetType = UNSET


class RetryShown(Struct, rename="camel"):
    maximum_attempts: int


class RunConfiguration(Struct, rename="camel"):
    """A run's options as shown back: proxy password and sink secrets masked."""

    retry: RetryShown
    request_timeout: int
    save_trace: bool
    proxy: str | None
    sink: dict[str, Any] | None


class RunDetail(RunItem, kw_only=True):
    parameters: Any
    result: Any
    extended_payloads: list[Any] | None
    configuration: RunConfiguration
    attempts: list[AttemptItem]


# -- projects ---------------------------------------------------------------------------------


class EnvironmentItem(Struct, rename="camel", kw_only=True):
    """The version's own Python environment: ``runtime`` is "intunedd" (our intuned_runtime and
    intuned_browser) or "intuned" (Intuned's own runtime, driven through its platform contract)."""

    key: str
    runtime: str
    python: str


class ProjectItem(Struct, rename="camel", kw_only=True):
    name: str
    version: int
    apis: list[str]
    deployed_at: str
    api_access: bool
    max_concurrent_requests: int
    environment: EnvironmentItem | None  # null: the daemon's own environment


class Deployed(ProjectItem, kw_only=True):
    """The deploy answer (201): the new version, named again as ``projectName``."""

    project_name: str
    environment_reused: bool
    warnings: list[str]


# -- jobs -------------------------------------------------------------------------------------


class _JobBody(Struct, kw_only=True):
    """What the Job GET and list items share: the spec as written (secrets masked) and its state."""

    id: str
    payload: list[PayloadItem]
    configuration: JobConfiguration
    schedule: dict[str, Any] | UnsetType = UNSET
    sink: dict[str, Any] | None
    auth_session: JobAuthSession | UnsetType = UNSET
    notifications: list[dict[str, Any]] | UnsetType = UNSET
    state: str
    created_at: str
    next_run_time: str | None
    last_run_time: str | None
    source: str


class JobGet(_JobBody, kw_only=True, rename={"project_id": "projectId"}):
    """``JobsGetResponse``: ``projectId`` in camelCase beside snake_case times; proxy a string."""

    proxy: str | None | UnsetType = UNSET
    project_id: str


class JobProxy(Struct):
    version: str
    url: str | None


class JobListItem(_JobBody, kw_only=True):
    """``JobsListResponseValueItem``: snake_case ids, and the proxy as ``{version, url}``."""

    workspace_id: str
    project_id: str
    proxy: JobProxy | None


class JobSaved(Struct):
    """Job create (201) and update answers."""

    id: str
    message: str


class Message(Struct):
    """Pause, resume and terminate answers."""

    message: str


class JobTriggered(Struct, rename="camel"):
    job_run_id: str
    message: str


class JobRunBody(Struct):
    """A JobRun (snake_case throughout); ``job_configuration_snapshot`` is the Job as it was."""

    id: str
    start_time: str
    end_time: str | None
    workspace_id: str
    project_id: str
    job_id: str
    created_at: str
    updated_at: str
    type: str
    status: str
    payloads: int
    successful_runs: int
    failed_runs: int
    error: dict[str, Any] | None
    reason: dict[str, Any] | None
    job_configuration_snapshot: dict[str, Any]
    counts: dict[str, int]


class JobRunList(Struct, rename="camel"):
    job_runs: list[JobRunBody]
    total_count: int


class JobRunResults(Struct):
    """Where a finished JobRun's aggregate JSONL can be fetched: a signed, expiring URL."""

    signed_url: str
    signed_url_expiration: str
    format: str


class JobRunGet(Struct, rename="camel"):
    job_run: JobRunBody
    results: JobRunResults | UnsetType = UNSET


class AggregateOutput(Struct, rename="camel"):
    output: Any
    extended_payloads: list[Any] | None


class AggregateApiInfo(Struct, rename={"run_id": "runId"}):
    name: str
    parameters: Any
    run_id: str
    status: str
    result: AggregateOutput | None
    started_at: str | None
    ended_at: str | None
    error: Any
    reason: Any


class ProjectRef(Struct):
    id: str
    name: str


class Ref(Struct):
    id: str | None


class AggregateLine(Struct, rename="camel"):
    """One line of a JobRun's aggregate results (Intuned's JSONL export shape)."""

    api_info: AggregateApiInfo
    workspace_id: str
    project: ProjectRef
    project_job: Ref
    project_job_run: Ref


# -- deliveries, the daemon -------------------------------------------------------------------


class DeliveryBody(Struct, rename="camel", kw_only=True):
    id: str
    run_id: str
    project_name: str
    kind: str
    sink: dict[str, Any] | None
    status: str
    attempts: int
    created_at: str
    updated_at: str
    next_attempt_at: str | None
    first_attempt_at: str | None
    delivered_at: str | None
    last_status: int | None
    last_error: str | None


class DeliveryList(Struct):
    items: list[DeliveryBody]
    total: int


class Info(Struct, rename="camel"):
    workspace_id: str
    version: str


class Health(Struct):
    status: str
    version: str
    pool: PoolStatistics
    runner: RunnerStatistics
    store: StoreStatistics
    sinks: DispatcherStatistics
    disk: DiskUsage | None  # None until the first measurement, just after start
    retention: RetentionStatistics


class QuarantineItem(Struct, rename="camel"):
    kind: str
    record_id: str
    reason: str
    created_at: str


class QuarantineList(Struct):
    items: list[QuarantineItem]
