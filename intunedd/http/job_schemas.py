"""Jobs on the wire: decoding bodies, and the Job, JobRun and aggregate-result shapes."""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import UNSET

from ..errors import BadRequest
from ..job_spec import JOB_ID, JobCreate, JobRecord, JobRunRecord, JobSpec, JobSpecError, check_job_spec
from ..messages import RunRecord
from ..proxies import mask_proxy
from ..sinks.config import mask as mask_sink
from .schemas import decode_body
from .wire import (
    AggregateApiInfo,
    AggregateLine,
    AggregateOutput,
    JobGet,
    JobListItem,
    JobProxy,
    JobRunBody,
    ProjectRef,
    Ref,
)


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


def _spec_fields(spec: JobSpec) -> dict[str, Any]:
    """The spec as a Job answer shows it: proxies' passwords and sink secrets masked."""
    config = spec.configuration
    return {
        "payload": spec.payload,
        "configuration": msgspec.structs.replace(config, proxy=mask_proxy(config.proxy)),
        "schedule": UNSET if spec.schedule is None else spec.schedule,
        "sink": mask_sink(spec.sink),
        "auth_session": UNSET if spec.auth_session is None else spec.auth_session,
        "notifications": UNSET if spec.notifications is None else spec.notifications,
    }


def _job_fields(job: JobRecord) -> dict[str, Any]:
    return {
        "id": job.id,
        **_spec_fields(job.spec),
        "state": job.state,
        "created_at": job.created_at,
        "next_run_time": job.next_run_time,
        "last_run_time": job.last_run_time,
        "source": job.source,
    }


def job_get(job: JobRecord) -> JobGet:
    proxy = job.spec.proxy
    return JobGet(**_job_fields(job), proxy=UNSET if proxy is None else mask_proxy(proxy), project_id=job.project)


def job_list_item(job: JobRecord, workspace_id: str) -> JobListItem:
    proxy = JobProxy("v1", mask_proxy(job.spec.proxy)) if job.spec.proxy else None
    return JobListItem(**_job_fields(job), workspace_id=workspace_id, project_id=job.project, proxy=proxy)


def _masked_snapshot(snap: dict[str, Any]) -> dict[str, Any]:
    """A JobRun's frozen copy of its Job, with every proxy password and sink secret hidden."""
    shown = dict(snap)
    shown["sink"] = mask_sink(shown.get("sink"))
    if isinstance(shown.get("proxy"), dict):
        shown["proxy"] = {**shown["proxy"], "url": mask_proxy(shown["proxy"]["url"])}
    config = shown.get("configuration")
    if isinstance(config, dict) and isinstance(config.get("proxy"), str):
        shown["configuration"] = {**config, "proxy": mask_proxy(config["proxy"])}
    return shown


def job_run_body(job_run: JobRunRecord, counts: dict[str, int], workspace_id: str) -> JobRunBody:
    return JobRunBody(
        id=job_run.id,
        start_time=job_run.start_time,
        end_time=job_run.end_time,
        workspace_id=workspace_id,
        project_id=job_run.project,
        job_id=job_run.job_id,
        created_at=job_run.created_at,
        updated_at=job_run.updated_at,
        type=job_run.type,
        status=job_run.status,
        payloads=sum(counts.values()),
        successful_runs=counts["completed"],
        failed_runs=counts["failed"],
        error=job_run.error,
        reason=job_run.reason,
        job_configuration_snapshot=_masked_snapshot(job_run.snapshot),
        counts=counts,
    )


def aggregate_line(run: RunRecord, workspace_id: str) -> AggregateLine:
    """One line of a JobRun's aggregate results (Intuned's JSONL export shape)."""
    result = AggregateOutput(run.result, run.extended_payloads) if run.status == "completed" else None
    return AggregateLine(
        api_info=AggregateApiInfo(
            name=run.api,
            parameters=run.parameters,
            run_id=run.id,
            status=run.status,
            result=result,
            started_at=run.started_at,
            ended_at=run.ended_at,
            error=run.error,
            reason=run.reason,
        ),
        workspace_id=workspace_id,
        project=ProjectRef(run.project, run.project),
        project_job=Ref(run.job_id),
        project_job_run=Ref(run.job_run_id),
    )
