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
from quart import request

from ..clock import parse_iso
from ..errors import BadRequest
from ..messages import AttemptRecord, ProjectVersion, RunRecord
from ..proxies import check_proxy, mask_proxy
from ..sinks.config import Sink, mask

T = TypeVar("T")

PositiveAttempts = Annotated[int, Meta(ge=1, le=100)]
TimeoutSeconds = Annotated[int, Meta(ge=1, le=7 * 24 * 3600)]
ApiName = Annotated[str, Meta(min_length=1, max_length=500)]


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
    auth_session: dict[str, Any] | None = None
    sink: Sink | None = None

    def __post_init__(self) -> None:
        check_proxy(self.proxy)


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


def query_int(name: str, default: int, minimum: int, maximum: int | None = None) -> int:
    """A whole-number query argument within bounds; a 400 naming it otherwise."""
    raw = request.args.get(name)
    try:
        value = default if raw is None else int(raw)
    except ValueError as e:
        raise BadRequest(f"{name} must be a whole number", details={"field": name}) from e
    if value < minimum or (maximum is not None and value > maximum):
        bounds = f"{minimum}-{maximum}" if maximum is not None else f">= {minimum}"
        raise BadRequest(f"{name} must be {bounds}", details={"field": name})
    return value


def decode_body(body: bytes, kind: type[T]) -> T:
    if not body.strip():
        raise BadRequest("The request body is empty; expected a JSON object", details={"field": "body"})
    try:
        return msgspec.json.decode(body, type=kind)
    except msgspec.ValidationError as e:
        text = str(e)
        field = _field_of(text)
        raise BadRequest(f"Invalid request body: {text}", details={"field": field} if field else None) from e
    except msgspec.DecodeError as e:
        raise BadRequest(f"Malformed JSON: {e}", details={"field": "body"}) from e


# -- responses ------------------------------------------------------------------------------

_REASON_MESSAGES = {"canceled": "Run canceled"}


def run_result(run: RunRecord) -> dict[str, Any]:
    """``RunResultResponse``."""
    body: dict[str, Any] = {"runId": run.id, "status": run.status}
    if run.status == "completed":
        body["result"] = run.result
        if run.extended_payloads:
            body["extendedPayloads"] = run.extended_payloads
    elif run.status == "failed":
        body["message"] = (run.error or {}).get("message", "Run failed")
        body["error"] = run.error
    elif run.status == "canceled":
        body["message"] = (run.reason or {}).get("message", _REASON_MESSAGES["canceled"])
        body["reason"] = run.reason
    return body


def sync_run_result(run: RunRecord) -> dict[str, Any]:
    """The legacy sync ``POST …/run`` answer: completed or failed, with an HTTP-like code."""
    if run.status == "completed":
        return {"status": "completed", "result": run.result, "statusCode": 200, "runId": run.id}
    if run.status in ("pending", "started"):
        return {"status": run.status, "runId": run.id}
    problem = run.error or run.reason or {}
    return {
        "status": run.status,
        "error": problem.get("code") or problem.get("type") or "unexpected",
        "message": problem.get("message", "Run did not complete"),
        "statusCode": 500,
        "runId": run.id,
    }


def _duration_ms(run: RunRecord) -> int | None:
    if not (run.started_at and run.ended_at):
        return None
    return int((parse_iso(run.ended_at) - parse_iso(run.started_at)).total_seconds() * 1000)


def run_item(run: RunRecord) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": run.id,
        "apiName": run.api,
        "status": run.status,
        "runType": run.run_type,
        "projectVersion": run.version,
        "createdAt": run.created_at,
        "startedAt": run.started_at,
        "endedAt": run.ended_at,
        "runDuration": _duration_ms(run),
        "attemptsCount": run.attempts_count,
    }
    if run.job_id:
        body["jobId"] = run.job_id
        body["jobRunId"] = run.job_run_id
    if run.error is not None:
        body["error"] = run.error
    if run.reason is not None:
        body["reason"] = run.reason
    return body


def attempt_item(attempt: AttemptRecord, links: dict[str, str]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "number": attempt.number,
        "status": attempt.status,
        "startedAt": attempt.started_at,
        "endedAt": attempt.ended_at,
        "hasLog": attempt.log_path is not None,
        "hasTrace": attempt.trace_path is not None,
        "hasVideo": attempt.video_path is not None,
    }
    if attempt.error is not None:
        body["error"] = attempt.error
    return {**body, **links}


def run_detail(
    run: RunRecord, attempts: list[AttemptRecord], links: Callable[[AttemptRecord], dict[str, str]]
) -> dict[str, Any]:
    return {
        **run_item(run),
        "parameters": run.parameters,
        "result": run.result,
        "extendedPayloads": run.extended_payloads,
        "configuration": {
            "retry": {"maximumAttempts": run.options.max_attempts},
            "requestTimeout": run.options.request_timeout_s,
            "saveTrace": run.options.save_trace,
            "proxy": mask_proxy(run.options.proxy),
            "sink": mask(run.options.sink),
        },
        "attempts": [attempt_item(a, links(a)) for a in attempts],
    }


def project_item(project: ProjectVersion) -> dict[str, Any]:
    return {
        "name": project.name,
        "version": project.version,
        "apis": project.apis,
        "deployedAt": project.deployed_at,
        "apiAccess": project.api_access,
        "maxConcurrentRequests": project.max_concurrent,
    }
