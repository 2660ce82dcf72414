"""Jobs and JobRuns: Intuned's paths, bodies and status codes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import msgspec
from quart import Blueprint, Response, request

from ...errors import NotFound
from ...job_spec import JobRunRecord
from ..handles import Handles
from ..job_schemas import aggregate_line, decode_job, job_get, job_list_item, job_run_body, spec_of
from ..responses import json_response
from ..schemas import query_int, request_bytes
from ..signing import expiry, signed_url
from ..wire import JobRunGet, JobRunList, JobRunResults, JobSaved, JobTriggered, Message

JOBS = "/api/v1/workspace/<workspace_id>/projects/<project>/jobs"
MAX_PAGE = 500
_encoder = msgspec.json.Encoder()


def jobs_blueprint(h: Handles) -> Blueprint:
    bp = Blueprint("jobs", __name__)

    @bp.post(JOBS)
    async def create(workspace_id: str, project: str) -> Response:
        job = decode_job(await request_bytes(), with_id=True)
        assert hasattr(job, "id")
        await h.runner.create_job(project, job.id, spec_of(job))
        return json_response(JobSaved(job.id, "created"), 201)

    @bp.get(JOBS)
    async def list_jobs(workspace_id: str, project: str) -> Response:
        jobs = await h.records.jobs(project)
        return json_response([job_list_item(job, h.workspace_id) for job in jobs])

    @bp.get(f"{JOBS}/<job_id>")
    async def get(workspace_id: str, project: str, job_id: str) -> Response:
        job = await h.records.job(project, job_id)
        if job is None:
            raise NotFound(f"job '{job_id}' not found in project '{project}'", details={"field": "jobId"})
        return json_response(job_get(job))

    @bp.put(f"{JOBS}/<job_id>")
    async def update(workspace_id: str, project: str, job_id: str) -> Response:
        job = decode_job(await request_bytes(), with_id=False)
        await h.runner.update_job(project, job_id, spec_of(job))
        return json_response(JobSaved(job_id, "updated job successfully"))

    @bp.delete(f"{JOBS}/<job_id>")
    async def delete(workspace_id: str, project: str, job_id: str) -> Response:
        await h.runner.delete_job(project, job_id)
        return Response(b"", status=204)

    @bp.post(f"{JOBS}/<job_id>/pause")
    async def pause(workspace_id: str, project: str, job_id: str) -> Response:
        await h.runner.pause_job(project, job_id)
        return json_response(Message("Paused"))

    @bp.post(f"{JOBS}/<job_id>/resume")
    async def resume(workspace_id: str, project: str, job_id: str) -> Response:
        await h.runner.resume_job(project, job_id)
        return json_response(Message("Resumed"))

    @bp.post(f"{JOBS}/<job_id>/trigger")
    async def trigger(workspace_id: str, project: str, job_id: str) -> Response:
        job_run: JobRunRecord = await h.runner.trigger_job(project, job_id)
        message = "JobRun started" if job_run.status != "CANCELED" else (job_run.reason or {}).get("message", "")
        return json_response(JobTriggered(job_run.id, message))

    async def load_run(project: str, job_id: str, job_run_id: str) -> JobRunRecord:
        job_run = await h.records.job_run(project, job_id, job_run_id)
        if job_run is None:
            raise NotFound(f"JobRun '{job_run_id}' not found for job '{job_id}'", details={"field": "jobRunId"})
        return job_run

    @bp.get(f"{JOBS}/<job_id>/runs")
    async def list_runs(workspace_id: str, project: str, job_id: str) -> Response:
        if await h.records.job(project, job_id) is None:
            raise NotFound(f"job '{job_id}' not found in project '{project}'", details={"field": "jobId"})
        size = query_int("pageSize", 20, 1, MAX_PAGE)
        number = query_int("pageNumber", 1, 1)
        sort_by = request.args.get("sortBy", "")
        job_runs, total = await h.records.job_runs(project, job_id, size, number, sort_by)
        counts = await h.records.job_runs_counts([jr.id for jr in job_runs])
        bodies = [job_run_body(jr, counts[jr.id], h.workspace_id) for jr in job_runs]
        return json_response(JobRunList(bodies, total))

    @bp.get(f"{JOBS}/<job_id>/runs/<job_run_id>")
    async def get_run(workspace_id: str, project: str, job_id: str, job_run_id: str) -> Response:
        job_run = await load_run(project, job_id, job_run_id)
        counts = (await h.records.job_runs_counts([job_run.id]))[job_run.id]
        body = JobRunGet(job_run_body(job_run, counts, h.workspace_id))
        if job_run.end_time is not None and job_run.status != "CANCELED":
            path = f"/api/v1/workspace/{h.workspace_id}/projects/{project}/jobs/{job_id}/runs/{job_run_id}/results"
            now = h.clock.now()
            body.results = JobRunResults(
                signed_url=signed_url(h.signing_secret, h.settings.server, path, now),
                signed_url_expiration=datetime.fromtimestamp(expiry(now), UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                format="jsonl",
            )
        return json_response(body)

    @bp.get(f"{JOBS}/<job_id>/runs/<job_run_id>/results")
    async def results(workspace_id: str, project: str, job_id: str, job_run_id: str) -> Response:
        job_run = await load_run(project, job_id, job_run_id)

        async def lines() -> AsyncIterator[bytes]:
            async for run in h.records.job_run_results(job_run.id):
                yield _encoder.encode(aggregate_line(run, h.workspace_id)) + b"\n"

        response = Response(lines(), content_type="application/x-ndjson")
        response.headers["Content-Disposition"] = f'attachment; filename="jobrun_{job_run_id}.jsonl"'
        return response

    @bp.post(f"{JOBS}/<job_id>/runs/<job_run_id>/terminate")
    async def terminate(workspace_id: str, project: str, job_id: str, job_run_id: str) -> Response:
        await h.runner.terminate_job_run(project, job_id, job_run_id)
        return json_response(Message("JobRun terminated"))

    return bp
