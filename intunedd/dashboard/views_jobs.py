"""Jobs and JobRuns: schedule and next firing, live counts, a JobRun's runs, and the buttons."""

from __future__ import annotations

from quart import Blueprint, Response, request

from ..errors import NotFound
from ..http.handles import Handles
from ..http.job_schemas import job_get, job_run_body
from ..http.schemas import query_int, run_item
from ..job_spec import JobRecord
from ..policy.run_filters import Condition
from .render import page, render, see_other
from .views_runs import PAGE_SIZE, choose_project

JOB = "/projects/<project>/jobs/<job_id>"
JOB_RUNS_SHOWN = 20


def add_job_views(bp: Blueprint, h: Handles) -> None:
    async def load(project: str, job_id: str) -> JobRecord:
        job = await h.records.job(project, job_id)
        if job is None:
            raise NotFound(f"job '{job_id}' not found in project '{project}'", details={"field": "jobId"})
        return job

    def back(project: str, job_id: str) -> Response:
        """Where a button returns to: the page it was on (a JobRun's, say), else the job's."""
        target = request.args.get("back", "")
        allowed = target.startswith(f"/projects/{project}/jobs/{job_id}")
        return see_other(target if allowed else f"/projects/{project}/jobs/{job_id}")

    @bp.get("/jobs")
    async def jobs() -> str:
        projects, project = await choose_project(h)
        found = [job_get(j) for j in await h.records.jobs(project)] if project else []
        return await render("jobs.html", projects=projects, project=project, jobs=found)

    @bp.get(JOB)
    async def job_page(project: str, job_id: str) -> str:
        job = await load(project, job_id)
        job_runs, total = await h.records.job_runs(project, job_id, JOB_RUNS_SHOWN, 1, "")
        counts = await h.records.job_runs_counts([jr.id for jr in job_runs])
        bodies = [job_run_body(jr, counts[jr.id], h.workspace_id) for jr in job_runs]
        return await page("job.html", "_job_live.html", project=project, job=job_get(job), job_runs=bodies, total=total)

    @bp.get(f"{JOB}/runs/<job_run_id>")
    async def job_run_page(project: str, job_id: str, job_run_id: str) -> str:
        job = await load(project, job_id)
        job_run = await h.records.job_run(project, job_id, job_run_id)
        if job_run is None:
            raise NotFound(f"JobRun '{job_run_id}' not found for job '{job_id}'", details={"field": "jobRunId"})
        counts = (await h.records.job_runs_counts([job_run.id]))[job_run.id]
        number = query_int("page", 1, 1)
        runs, total = await h.records.runs(
            project, [Condition("job_run_id", "=", job_run.id)], PAGE_SIZE, (number - 1) * PAGE_SIZE
        )
        return await page(
            "job_run.html", "_job_run_live.html", project=project, job=job_get(job),
            job_run=job_run_body(job_run, counts, h.workspace_id), runs=[run_item(r) for r in runs], total=total,
            page_number=number, pages=max(1, -(-total // PAGE_SIZE)),
        )  # fmt: skip

    @bp.post(f"{JOB}/trigger")
    async def trigger(project: str, job_id: str) -> Response:
        job_run = await h.runner.trigger_job(project, job_id)
        return see_other(f"/projects/{project}/jobs/{job_id}/runs/{job_run.id}")

    @bp.post(f"{JOB}/pause")
    async def pause(project: str, job_id: str) -> Response:
        await h.runner.pause_job(project, job_id)
        return back(project, job_id)

    @bp.post(f"{JOB}/resume")
    async def resume(project: str, job_id: str) -> Response:
        await h.runner.resume_job(project, job_id)
        return back(project, job_id)

    @bp.post(f"{JOB}/delete")
    async def delete(project: str, job_id: str) -> Response:
        await h.runner.delete_job(project, job_id)
        return see_other("/jobs", project=project)

    @bp.post(f"{JOB}/runs/<job_run_id>/terminate")
    async def terminate(project: str, job_id: str, job_run_id: str) -> Response:
        await h.runner.terminate_job_run(project, job_id, job_run_id)
        return see_other(f"/projects/{project}/jobs/{job_id}/runs/{job_run_id}")
