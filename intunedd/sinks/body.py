"""What a sink receives for one finished run (Intuned's sink body), and where S3 keeps it."""

from __future__ import annotations

from typing import Any

from ..clock import parse_iso
from ..messages import RunRecord


def sink_body(run: RunRecord, workspace_id: str) -> dict[str, Any]:
    if run.status == "completed":
        result: dict[str, Any] = {"status": "completed", "result": run.result, "statusCode": 200}
    else:
        error = run.error or {}
        result = {
            "status": run.status,
            "error": error.get("code", "unexpected"),
            "message": error.get("message", "Run failed"),
            "statusCode": 500,
        }
    body: dict[str, Any] = {
        "apiInfo": {"name": run.api, "parameters": run.parameters, "runId": run.id, "result": result},
        "workspaceId": workspace_id,
        "project": {"id": run.project, "name": run.project},
    }
    auth_session = run.options.auth_session
    if isinstance(auth_session, dict) and auth_session.get("id"):
        body["authSession"] = {"id": auth_session["id"]}
    if run.job_id:
        body["projectJob"] = {"id": run.job_id}
        body["projectJobRun"] = {"id": run.job_run_id}
    elif run.queue_id:
        body["projectQueue"] = {"id": run.queue_id}
    return body


def _stamp(iso_time: str | None) -> str:
    moment = parse_iso(iso_time) if iso_time else None
    return moment.strftime("%Y%m%dT%H%M%S.%f")[:-3] + "Z" if moment else "unknown"


def s3_key(prefix: str, run: RunRecord, job_run_started: str | None) -> str:
    """``{prefix}{project}/jobs/{job}/{jobrun start}_{jobrun}/{run end}_{run}.json`` for job items,
    ``{prefix}{project}/runs/{yyyy}/{mm}/{dd}/{run end}_{run}.json`` for standalone runs, and
    ``{prefix}{project}/queues/{queue}/{yyyy}/{mm}/{dd}/…`` for queue items.

    Keys sort by time within their folder, a JobRun's results share one folder, and a key is
    fixed by the run, so a repeated delivery overwrites rather than duplicates."""
    name = f"{_stamp(run.ended_at)}_{run.id}.json"
    if run.job_id and run.job_run_id:
        return f"{prefix}{run.project}/jobs/{run.job_id}/{_stamp(job_run_started)}_{run.job_run_id}/{name}"
    ended = parse_iso(run.ended_at) if run.ended_at else None
    day = ended.strftime("%Y/%m/%d") if ended else "unknown"
    folder = f"queues/{run.queue_id}" if run.queue_id else "runs"
    return f"{prefix}{run.project}/{folder}/{day}/{name}"
