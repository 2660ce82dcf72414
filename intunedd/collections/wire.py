"""The collections API's response bodies (all but ``ScrapeResponse``, which is in ``request``).

Field names, optionality and defaults are those the official ``scrapingpros`` SDK (0.7.8)
parses them with (``scrapingpros.models``); tests/collections/test_wire.py feeds every shape
to the SDK's own models and error mapping. ``None`` is sent as ``null``, as the service does.

Errors are FastAPI's: ``{"detail": "<text>"}`` for most, ``{"detail": [<field error>, …]}``
for a 422, and ``{"detail": {"error_code", "message", …}}`` for a job result that cannot be
given. The SDK reads a 429 whose text mentions "quota" as a spent monthly quota (never retried)
and a 422 mentioning "url blocked" or "ssrf" as ``URLBlockedError``: ``RATE_LIMITED`` and
``URL_BLOCKED`` are worded for that.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import msgspec

BlockReason = Literal[
    "private_ip", "invalid_protocol", "dns_failed", "blocked_hostname", "invalid_port", "malformed_url", "blocked"
]
RunStatus = Literal["in_progress", "completed", "failed", "cancelled"]
JobStatus = Literal["processing", "completed", "failed", "timeout"]
CallbackStatus = Literal["pending", "sent", "failed"]
ResultErrorCode = Literal["result_pending", "result_expired", "result_lost", "job_id_invalid"]

CREATED = "Collection created successfully."
UPDATED = "Collection updated successfully."
RATE_LIMITED = "Rate limit exceeded"
URL_BLOCKED = "URL blocked"
COLLECTION_NOT_FOUND = "Collection not found"
RUN_NOT_FOUND = "Run not found"


class BlockedUrl(msgspec.Struct, kw_only=True):
    index: int
    url: str
    reason: BlockReason
    message: str | None = None


class InvalidItemError(msgspec.Struct, kw_only=True):
    field: str  # dotted path inside the item ("actions.0.selector"), "<root>" for the item itself
    error_type: str
    message: str


class InvalidItem(msgspec.Struct, kw_only=True):
    index: int
    url: str | None = None
    errors: list[InvalidItemError] = []


class NewCollectionResponse(msgspec.Struct, kw_only=True):
    """The answer to a create (201) or an update (200)."""

    id: str
    name: str
    message: str = CREATED
    duplicates_skipped: int = 0
    blocked_urls: list[BlockedUrl] = []
    invalid_items: list[InvalidItem] = []
    duplicate_urls: list[str] = []  # one entry per skipped occurrence


class CollectionPublic(msgspec.Struct, kw_only=True):
    """One item of ``GET /v1/async/collections`` (a bare JSON list), and ``GET …/{id}``."""

    id: str
    name: str
    created_at: float | None = None  # epoch seconds
    updated_at: float | None = None


class FailedJob(msgspec.Struct, kw_only=True):
    job_id: str
    url: str
    error: str | None = None
    status: str


class SuccessCriterion(msgspec.Struct, kw_only=True):
    version: str = "content_success_v1"
    rules: list[str] = []


class RunPublic(msgspec.Struct, kw_only=True):
    run_id: str
    status: RunStatus = "in_progress"
    total_requests: int = 0
    success_requests: int = 0
    failed_requests: int = 0
    timeout_requests: int = 0
    collection_id: str
    failed_jobs: list[FailedJob] = []
    job_ids: list[str] = []
    callback_url: str | None = None
    callback_status: CallbackStatus | None = None
    created_at: float | None = None  # epoch seconds
    success_criterion: SuccessCriterion | None = None
    # False while the run's jobs are still being written: the SDK then skips listing them.
    all_jobs_persisted: bool | None = None


class RunList(msgspec.Struct, kw_only=True):
    """``GET …/runs``: every run, newest first, unpaginated."""

    items: list[RunPublic] = []
    total: int = 0


class JobExecution(msgspec.Struct, kw_only=True):
    job_public_id: str
    run_public_id: str
    collection_id: str
    client_id: str | None = None
    status: JobStatus
    status_code: int | None = None
    message: str | None = None
    url: str | None = None
    custom_id: str | None = None
    # Aware datetimes at millisecond precision: the SDK sends completed_at back as
    # since_completed_at with isoformat(timespec="milliseconds"), which must compare equal.
    queued_at: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    execution_time_ms: int | None = None
    retries_attempted: int | None = None
    block_reason: str | None = None
    url_truncated: bool = False
    protection_stack: list[str] = []
    rule_hits: list[str] = []
    validator_version: str | None = None
    has_extractable_data: bool | None = None
    is_success: bool | None = None
    # An encoded ScrapeResponse, embedded as stored (include_results, completed, small enough).
    result: msgspec.Raw | None = None


class JobPage(msgspec.Struct, kw_only=True):
    items: list[JobExecution]
    cursor_next: str | None = None
    has_more: bool = False


class DownloadResponse(
    msgspec.Struct,
    kw_only=True,
    rename={"content_type": "contentType", "status_code": "statusCode", "execution_time": "executionTime"},
):
    """``POST /v1/sync/download``: the body base64-encoded in ``content``."""

    content: str | None = None
    content_type: str | None = None
    status_code: int
    message: str
    execution_time: float | None = None  # seconds


class Health(msgspec.Struct, kw_only=True):
    """``GET /v1/health`` (no key needed); the SDK returns the JSON as it is."""

    status: Literal["ok", "draining"] = "ok"
    version: str


class Detail(msgspec.Struct, kw_only=True):
    """Most errors: ``{"detail": "<text>"}``."""

    detail: str


class FieldError(msgspec.Struct, kw_only=True):
    """One entry of a 422, as FastAPI words it: ``loc`` is ``["body"|"query"|"path", name, …]``."""

    type: str
    loc: list[str | int]
    msg: str
    input: Any = None


class FieldErrors(msgspec.Struct, kw_only=True):
    """A 422."""

    detail: list[FieldError]


class ResultMissingDetail(msgspec.Struct, kw_only=True, omit_defaults=True):
    error_code: ResultErrorCode
    message: str
    completed_at: str | None = None  # ISO-8601, for result_expired and result_lost
    age_hours: float | None = None


class ResultMissing(msgspec.Struct, kw_only=True):
    """The 404 of ``…/jobs/{job_id}/result``; the SDK raises a typed error per ``error_code``."""

    detail: ResultMissingDetail
