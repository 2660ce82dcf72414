"""Projects (and a form to start a run), the runs table, a run's page and an attempt's log."""

from __future__ import annotations

import json
from functools import partial
from typing import Any

import trio
from quart import Blueprint, Response, current_app, request

from ..errors import BadRequest, NotFound
from ..http.handles import Handles
from ..http.routes.runs import attempt_links
from ..http.schemas import MAX_JSON_DEPTH, decode_json, query_int, run_detail, run_item
from ..messages import ProjectVersion, RunRecord, RunRequest
from ..policy.run_filters import Condition
from ..sinks.config import mask as mask_sink
from .attempt_log import read_tail
from .forms import filter_values, run_conditions
from .render import page, render, see_other

PAGE_SIZE = 50
RUN = "/projects/<project>/runs/<run_id>"


async def choose_project(h: Handles) -> tuple[list[ProjectVersion], str]:
    """The deployed projects, and the one the page shows: ``?project=``, else the first."""
    projects = await h.records.projects()
    chosen = request.args.get("project") or (projects[0].name if projects else "")
    return projects, chosen


def shown_settings(settings: Any) -> str:
    """A version's Intuned.json settings as the page shows them: its default sink's secrets masked."""
    if isinstance(settings, dict) and isinstance(settings.get("defaults"), dict):
        defaults = settings["defaults"]
        if isinstance(defaults.get("sink"), dict):
            settings = {**settings, "defaults": {**defaults, "sink": mask_sink(defaults["sink"])}}
    return json.dumps(settings, indent=2, sort_keys=True)


def add_run_views(bp: Blueprint, h: Handles) -> None:
    async def load(project: str, run_id: str) -> RunRecord:
        run = await h.records.run(run_id)
        if run is None or run.project != project:
            raise NotFound(f"run '{run_id}' not found in project '{project}'", details={"field": "runId"})
        return run

    @bp.get("/projects")
    async def projects() -> str:
        current = await h.records.projects()
        history = {}
        for p in current:
            versions = await h.records.project_history(p.name)
            history[p.name] = [(version, shown_settings(settings)) for version, settings in versions]
        return await render("projects.html", projects=current, history=history)

    @bp.post("/projects/<project>/runs")
    async def start_run(project: str) -> Response:
        form = await request.form
        text = form.get("parameters", "").strip() or "{}"
        parameters = decode_json(text.encode(), dict[str, Any], current_app.config[MAX_JSON_DEPTH])
        api = form.get("api", "")
        if not api:
            raise BadRequest("Choose the API to run", details={"field": "api"})
        run = await h.runner.submit(project, api, parameters, RunRequest())
        return see_other(f"/projects/{project}/runs/{run.id}")

    async def runs_of(project: str, conditions: list[Condition], number: int) -> tuple[list[Any], int]:
        if not project:
            return [], 0
        found, total = await h.records.runs(project, conditions, PAGE_SIZE, (number - 1) * PAGE_SIZE)
        return [run_item(r) for r in found], total

    @bp.get("/runs")
    async def runs() -> str:
        projects, project = await choose_project(h)
        values = filter_values(request.args)
        number = query_int("page", 1, 1)
        items, total = await runs_of(project, run_conditions(values), number)
        return await page(
            "runs.html", "_runs_rows.html", projects=projects, project=project, values=values, runs=items, total=total,
            page_number=number, pages=max(1, -(-total // PAGE_SIZE)), page_size=PAGE_SIZE,
        )  # fmt: skip

    @bp.get("/runs/row")
    async def run_row() -> Response:
        """One row of the runs table, if the run matches the table's filters (the live updates ask)."""
        project = request.args.get("project", "")
        conditions = [*run_conditions(filter_values(request.args)), Condition("id", "=", request.args.get("run", ""))]
        found, _ = await runs_of(project, conditions, 1)
        if not found:
            return Response("", status=204)
        return Response(await render("_run_row.html", run=found[0], project=project))

    @bp.get(RUN)
    async def run_page(project: str, run_id: str) -> str:
        run = await load(project, run_id)
        detail = run_detail(run, await h.records.attempts(run_id), partial(attempt_links, h, project))
        return await page("run.html", "_run_live.html", project=project, run=detail)

    @bp.post(f"{RUN}/cancel")
    async def cancel(project: str, run_id: str) -> Response:
        await h.runner.cancel(project, run_id)
        return see_other(f"/projects/{project}/runs/{run_id}")

    @bp.get(f"{RUN}/attempts/<int:number>/log")
    async def attempt_log(project: str, run_id: str, number: int) -> str:
        await load(project, run_id)
        attempts = {a.number: a for a in await h.records.attempts(run_id)}
        if number not in attempts:
            raise NotFound(f"run '{run_id}' has no attempt {number}", details={"field": "attempt"})
        tail = await trio.to_thread.run_sync(read_tail, attempts[number].log_path)
        query = request.args.get("q", "")
        lines = [ln for ln in tail.lines if query.lower() in ln.message.lower()] if tail else []
        links = attempt_links(h, project, attempts[number])
        return await render(
            "log.html", project=project, run_id=run_id, number=number, tail=tail, lines=lines, q=query,
            log_url=links.get("logUrl"),
        )  # fmt: skip
