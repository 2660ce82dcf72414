"""Jobs on the wire: decoding bodies, and the Job, JobRun and aggregate-result shapes."""

from __future__ import annotations

from typing import Any

import msgspec

from ..errors import BadRequest
from ..job_spec import JOB_ID, JobCreate, JobRecord, JobRunRecord, JobSpec, JobSpecError, check_job_spec
from ..messages import RunRecord
from ..proxies import mask_proxy
from ..sinks.config import mask as mask_sink
from .schemas import decode_body


def decode_job(body: bytes, *, with_id: bool) -> JobCreate | JobSpec:
    job = decode_body(body, JobCreate if with_id else JobSpec)
    if isinstance(job, JobCreate) and not JOB_ID.match(job.id):
        raise BadRequest("id must be a URL slug: 1-100 letters, digits, '-' or '_'", details={"field": "id"})
    try:
        check_job_spec(job)
    except JobSpecError as e:
        raise BadRequest(f"Invalid job: {e}", details={"field": e.field}) from e
    return job


def spec_of(job: JobCreate | JobSpec) -> JobSpec:
    fields = {name: getattr(job, name) for name in JobSpec.__struct_fields__}
    return JobSpec(**fields)


def _spec_body(spec: JobSpec) -> dict[str, Any]:
    body: dict[str, Any] = msgspec.to_builtins(spec)
    body["sink"] = mask_sink(spec.sink)
    if spec.proxy:
        body["proxy"] = mask_proxy(spec.proxy)
    if spec.configuration.proxy:
        body["configuration"]["proxy"] = mask_proxy(spec.configuration.proxy)
    return body


def job_get(job: JobRecord) -> dict[str, Any]:
    """``JobsGetResponse``: note ``projectId`` in camelCase beside snake_case times."""
    return {
        "id": job.id,
        **_spec_body(job.spec),
        "state": job.state,
        "created_at": job.created_at,
        "next_run_time": job.next_run_time,
        "last_run_time": job.last_run_time,
        "projectId": job.project,
        "source": job.source,
    }


def job_list_item(job: JobRecord, workspace_id: str) -> dict[str, Any]:
    """``JobsListResponseValueItem``: snake_case ids, and the proxy as ``{version, url}``."""
    body = {
        "id": job.id,
        "workspace_id": workspace_id,
        "project_id": job.project,
        **_spec_body(job.spec),
        "state": job.state,
        "created_at": job.created_at,
        "next_run_time": job.next_run_time,
        "last_run_time": job.last_run_time,
        "source": job.source,
    }
    body["proxy"] = {"version": "v1", "url": body["proxy"]} if job.spec.proxy else None
    return body


def job_run_body(job_run: JobRunRecord, counts: dict[str, int], workspace_id: str) -> dict[str, Any]:
    snapshot = dict(job_run.snapshot)
    snapshot["sink"] = mask_sink(snapshot.get("sink"))
    if isinstance(snapshot.get("proxy"), dict):
        snapshot["proxy"] = {**snapshot["proxy"], "url": mask_proxy(snapshot["proxy"]["url"])}
    total = sum(counts.values())
    return {
        "id": job_run.id,
        "start_time": job_run.start_time,
        "end_time": job_run.end_time,
        "workspace_id": workspace_id,
        "project_id": job_run.project,
        "job_id": job_run.job_id,
        "created_at": job_run.created_at,
        "updated_at": job_run.updated_at,
        "type": job_run.type,
        "status": job_run.status,
        "payloads": total,
        "successful_runs": counts["completed"],
        "failed_runs": counts["failed"],
        "error": job_run.error,
        "reason": job_run.reason,
        "job_configuration_snapshot": snapshot,
        "counts": counts,
    }


def aggregate_line(run: RunRecord, workspace_id: str) -> dict[str, Any]:
    """One line of a JobRun's aggregate results (Intuned's JSONL export shape)."""
    result = None
    if run.status == "completed":
        result = {"output": run.result, "extendedPayloads": run.extended_payloads}
    return {
        "apiInfo": {
            "name": run.api,
            "parameters": run.parameters,
            "runId": run.id,
            "status": run.status,
            "result": result,
            "started_at": run.started_at,
            "ended_at": run.ended_at,
            "error": run.error,
            "reason": run.reason,
        },
        "workspaceId": workspace_id,
        "project": {"id": run.project, "name": run.project},
        "projectJob": {"id": run.job_id},
        "projectJobRun": {"id": run.job_run_id},
    }
