"""The HTTP wire: request bodies and response shapes, with Intuned's exact field names.

Intuned's casing is mixed on purpose of history (runs are camelCase, errors carry
``doc_url`` and the misspelled ``retirable``); every Struct names its fields as the wire
does. Decoding errors become 400s that name the offending field.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType
from quart import current_app, request

from ..clock import parse_iso
from ..errors import BadRequest
from ..messages import AttemptRecord, DeployOutcome, ProjectVersion, RunRecord, RunRequest
from ..proxies import check_proxy, mask_proxy
from ..sinks.config import Sink, mask
from ..store.delivery_queries import Delivery
from .json_depth import within_depth
from .wire import (
    AttemptItem,
    DeliveryBody,
    Deployed,
    EnvironmentItem,
    ProjectItem,
    RetryShown,
    RunConfiguration,
    RunDetail,
    RunItem,
    RunResult,
    SyncRunResult,
)

T = TypeVar("T")

# Query integers end up in SQLite, whose integers are 64-bit; no page or offset needs more.
MAX_QUERY_INT = 2**31 - 1
MAX_JSON_DEPTH = "INTUNEDD_MAX_JSON_DEPTH"  # the app config key holding server.max_json_depth

PositiveAttempts = Annotated[int, Meta(ge=1, le=100)]
TimeoutSeconds = Annotated[int, Meta(ge=1, le=7 * 24 * 3600)]
ApiName = Annotated[str, Meta(min_length=1, max_length=500)]
AuthSessionReference = Annotated[
    dict[str, Any],
    Meta(
        description="The run's AuthSession: {id, autoRecreate?, checkAttempts?, createAttempts?, proxy?, "
        "requestTimeout?, runtimeInput?, exclusive?}. exclusive (ours): true to be the only attempt using the "
        "session; the run is canceled with auth-session-already-in-use if another attempt is using it."
    ),
]


class Retry(Struct, rename="camel", forbid_unknown_fields=True):
    maximum_attempts: PositiveAttempts | UnsetType = UNSET


class RunStartBody(Struct, rename="camel"):
    """``RunStartRequestBody``; unknown fields are ignored, as newer clients may send more."""

    api: ApiName
    parameters: dict[str, Any]
    retry: Retry | None = None
    request_timeout: TimeoutSeconds | None = None
    proxy: str | None = None
    save_trace: bool | None = None
    auth_session: AuthSessionReference | None = None
    sink: Sink | None = None

    def __post_init__(self) -> None:
        check_proxy(self.proxy)

    def run_request(self) -> RunRequest:
        attempts = self.retry.maximum_attempts if self.retry else None
        return RunRequest(
            max_attempts=attempts if isinstance(attempts, int) else None,
            request_timeout_s=self.request_timeout,
            save_trace=self.save_trace is not False,
            proxy=self.proxy,
            auth_session=self.auth_session,
            sink=msgspec.to_builtins(self.sink) if self.sink else None,
        )


_FIELD_AT = re.compile(r"at `\$\.?([^`]*)`")
_MISSING = re.compile(r"missing required field `([^`]+)`")


def _field_of(message: str) -> str | None:
    missing = _MISSING.search(message)
    at = _FIELD_AT.search(message)
    prefix = at.group(1) if at else ""
    if missing:
        return f"{prefix}.{missing.group(1)}" if prefix else missing.group(1)
    return prefix or None


async def request_bytes() -> bytes:
    data = await request.get_data(as_text=False)
    return data if isinstance(data, bytes) else data.encode()


def query_int(name: str, default: int, minimum: int, maximum: int = MAX_QUERY_INT) -> int:
    """A whole-number query argument within bounds; a 400 naming it otherwise."""
    raw = request.args.get(name)
    try:
        value = default if raw is None else int(raw)
    except ValueError as e:
        raise BadRequest(f"{name} must be a whole number", details={"field": name}) from e
    if not minimum <= value <= maximum:
        raise BadRequest(f"{name} must be {minimum}-{maximum}", details={"field": name})
    return value


def decode_body(body: bytes, kind: type[T]) -> T:
    """A request body as ``kind``, nested at most ``server.max_json_depth`` deep."""
    return decode_json(body, kind, current_app.config[MAX_JSON_DEPTH])


def decode_json(body: bytes, kind: type[T], max_depth: int) -> T:
    if not body.strip():
        raise BadRequest("The request body is empty; expected a JSON object", details={"field": "body"})
    try:
        if within_depth(body, max_depth):
            return msgspec.json.decode(body, type=kind)
        msgspec.json.decode(body)  # malformed JSON is reported as malformed, not as too deep
    except msgspec.ValidationError as e:
        text = str(e)
        field = _field_of(text)
        raise BadRequest(f"Invalid request body: {text}", details={"field": field} if field else None) from e
    except msgspec.DecodeError as e:
        raise BadRequest(f"Malformed JSON: {e}", details={"field": "body"}) from e
    except RecursionError:
        pass  # msgspec ran out of stack: deeper than any limit that fits it
    raise BadRequest(f"The JSON body nests deeper than {max_depth} levels", details={"field": "body"})


# -- responses (the Structs are in wire.py) ----------------------------------------------------

_REASON_MESSAGES = {"canceled": "Run canceled"}


def run_result(run: RunRecord) -> RunResult:
    """``RunResultResponse``."""
    if run.status == "completed":
        return RunResult(run.id, run.status, result=run.result, extended_payloads=run.extended_payloads or UNSET)
    if run.status == "failed":
        message = (run.error or {}).get("message", "Run failed")
        return RunResult(run.id, run.status, message=message, error=run.error)
    if run.status == "canceled":
        message = (run.reason or {}).get("message", _REASON_MESSAGES["canceled"])
        return RunResult(run.id, run.status, message=message, reason=run.reason)
    return RunResult(run.id, run.status)


def sync_run_result(run: RunRecord) -> SyncRunResult:
    """The legacy sync ``POST …/run`` answer: completed or failed, with an HTTP-like code."""
    if run.status == "completed":
        return SyncRunResult(status="completed", result=run.result, status_code=200, run_id=run.id)
    if run.status in ("pending", "started"):
        return SyncRunResult(status=run.status, run_id=run.id)
    problem = run.error or run.reason or {}
    return SyncRunResult(
        status=run.status,
        error=problem.get("code") or problem.get("type") or "unexpected",
        message=problem.get("message", "Run did not complete"),
        status_code=500,
        run_id=run.id,
    )


def _duration_ms(run: RunRecord) -> int | None:
    if not (run.started_at and run.ended_at):
        return None
    return int((parse_iso(run.ended_at) - parse_iso(run.started_at)).total_seconds() * 1000)


def _run_fields(run: RunRecord) -> dict[str, Any]:
    """What a run's list item and its detail share; job ids, error and reason only when set."""
    return {
        "id": run.id,
        "api_name": run.api,
        "status": run.status,
        "run_type": run.run_type,
        "project_version": run.version,
        "created_at": run.created_at,
        "started_at": run.started_at,
        "ended_at": run.ended_at,
        "run_duration": _duration_ms(run),
        "attempts_count": run.attempts_count,
        "job_id": run.job_id or UNSET,
        "job_run_id": run.job_run_id if run.job_id else UNSET,
        "queue_id": run.queue_id or UNSET,
        "error": UNSET if run.error is None else run.error,
        "reason": UNSET if run.reason is None else run.reason,
    }


def run_item(run: RunRecord) -> RunItem:
    return RunItem(**_run_fields(run))


def attempt_item(attempt: AttemptRecord, links: dict[str, str]) -> AttemptItem:
    return AttemptItem(
        number=attempt.number,
        status=attempt.status,
        started_at=attempt.started_at,
        ended_at=attempt.ended_at,
        has_log=attempt.log_path is not None,
        has_trace=attempt.trace_path is not None,
        has_video=attempt.video_path is not None,
        error=UNSET if attempt.error is None else attempt.error,
        log_url=links.get("logUrl", UNSET),
        trace_url=links.get("traceUrl", UNSET),
        video_url=links.get("videoUrl", UNSET),
        trace_viewer_url=links.get("traceViewerUrl", UNSET),
    )


def run_detail(
    run: RunRecord, attempts: list[AttemptRecord], links: Callable[[AttemptRecord], dict[str, str]]
) -> RunDetail:
    return RunDetail(
        **_run_fields(run),
        parameters=run.parameters,
        result=run.result,
        extended_payloads=run.extended_payloads,
        configuration=RunConfiguration(
            retry=RetryShown(run.options.max_attempts),
            request_timeout=run.options.request_timeout_s,
            save_trace=run.options.save_trace,
            proxy=mask_proxy(run.options.proxy),
            sink=mask(run.options.sink),
        ),
        attempts=[attempt_item(a, links(a)) for a in attempts],
    )


def _project_fields(project: ProjectVersion) -> dict[str, Any]:
    return {
        "name": project.name,
        "version": project.version,
        "apis": project.apis,
        "deployed_at": project.deployed_at,
        "api_access": project.api_access,
        "max_concurrent_requests": project.max_concurrent,
        "environment": None
        if project.environment is None
        else EnvironmentItem(**msgspec.structs.asdict(project.environment)),
    }


def project_item(project: ProjectVersion) -> ProjectItem:
    return ProjectItem(**_project_fields(project))


def deployed(outcome: DeployOutcome) -> Deployed:
    project = outcome.project
    return Deployed(
        **_project_fields(project),
        project_name=project.name,
        environment_reused=outcome.environment_reused,
        warnings=outcome.warnings,
    )


def delivery_body(delivery: Delivery) -> DeliveryBody:
    return DeliveryBody(
        id=delivery.id,
        run_id=delivery.run_id,
        project_name=delivery.project,
        kind=delivery.kind,
        sink=mask(delivery.sink),
        status=delivery.status,
        attempts=delivery.attempts,
        created_at=delivery.created_at,
        updated_at=delivery.updated_at,
        next_attempt_at=delivery.next_attempt_at if delivery.status == "pending" else None,
        first_attempt_at=delivery.first_attempt_at,
        delivered_at=delivery.delivered_at,
        last_status=delivery.last_status,
        last_error=delivery.last_error,
    )
