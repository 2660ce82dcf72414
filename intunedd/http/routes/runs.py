"""Runs: Intuned's start/result/sync paths, plus cancel, list, detail and artifacts."""

from __future__ import annotations

from functools import partial
from urllib.parse import urlencode

import trio
from quart import Blueprint, Response, request

from ...errors import BadRequest, NotFound
from ...messages import AttemptRecord, RunRecord
from ...policy.run_filters import FilterError, parse_filter
from ..handles import Handles
from ..responses import file_response, first_file, json_response
from ..schemas import (
    RunStartBody,
    decode_body,
    query_int,
    request_bytes,
    run_detail,
    run_item,
    run_result,
    sync_run_result,
)
from ..signing import public_base_url, signed_url
from ..wire import RunList, RunStatus

PROJECT = "/api/v1/workspace/<workspace_id>/projects/<project>"
MAX_PAGE = 500


def attempt_links(h: Handles, project: str, attempt: AttemptRecord) -> dict[str, str]:
    """Signed, expiring URLs for the attempt's files, and the trace viewer pointed at one."""
    kinds = {"log": attempt.log_path, "trace": attempt.trace_path, "video": attempt.video_path}
    now = h.clock.now()
    found: dict[str, str] = {}
    for kind, path in kinds.items():
        if path is None:
            continue
        url_path = f"/api/v1/workspace/{h.workspace_id}/projects/{project}/runs/{attempt.run_id}"
        url_path += f"/attempts/{attempt.number}/{kind}"
        found[f"{kind}Url"] = signed_url(h.signing_secret, h.settings.server, url_path, now)
    if "traceUrl" in found:
        viewer = f"{public_base_url(h.settings.server)}/trace-viewer/index.html"
        found["traceViewerUrl"] = f"{viewer}?{urlencode({'trace': found['traceUrl']})}"
    return found


def runs_blueprint(h: Handles) -> Blueprint:
    bp = Blueprint("runs", __name__)

    async def submit(project: str) -> RunRecord:
        body = decode_body(await request_bytes(), RunStartBody)
        return await h.runner.submit(project, body.api, body.parameters, body.run_request())

    async def load(project: str, run_id: str) -> RunRecord:
        run = await h.records.run(run_id)
        if run is None or run.project != project:
            raise NotFound(f"run '{run_id}' not found in project '{project}'", details={"field": "runId"})
        return run

    @bp.post(f"{PROJECT}/run/start")
    async def start(workspace_id: str, project: str) -> Response:
        run = await submit(project)
        return json_response(RunStatus(run.id, "pending"), 201)

    @bp.post(f"{PROJECT}/run")
    async def run_sync(workspace_id: str, project: str) -> Response:
        run = await submit(project)
        with trio.move_on_after(h.settings.runs.sync_run_max_wait_s):
            await h.runner.wait(run.id)
        return json_response(sync_run_result(await load(project, run.id)))

    @bp.get(f"{PROJECT}/run/<run_id>/result")
    async def result(workspace_id: str, project: str, run_id: str) -> Response:
        return json_response(run_result(await load(project, run_id)))

    @bp.post(f"{PROJECT}/run/<run_id>/cancel")
    async def cancel(workspace_id: str, project: str, run_id: str) -> Response:
        await h.runner.cancel(project, run_id)
        run = await load(project, run_id)
        return json_response(RunStatus(run.id, run.status))

    @bp.get(f"{PROJECT}/runs")
    async def list_runs(workspace_id: str, project: str) -> Response:
        limit = query_int("limit", 50, 1, MAX_PAGE)
        offset = query_int("offset", 0, 0)
        try:
            conditions = [parse_filter(f) for f in request.args.getlist("filter")]
        except FilterError as e:
            raise BadRequest(str(e), details={"field": "filter"}) from e
        cursor = request.args.get("cursor")
        before = None if cursor is None else query_int("cursor", 0, 1)
        runs, total = await h.records.runs(project, conditions, limit, offset, before)
        after = str(runs[-1].seq) if len(runs) == limit else None
        return json_response(RunList([run_item(r) for r in runs], total, after))

    @bp.get(f"{PROJECT}/runs/<run_id>")
    async def detail(workspace_id: str, project: str, run_id: str) -> Response:
        run = await load(project, run_id)
        return json_response(run_detail(run, await h.records.attempts(run_id), partial(attempt_links, h, project)))

    async def attempt(project: str, run_id: str, number: int) -> AttemptRecord:
        await load(project, run_id)
        for found in await h.records.attempts(run_id):
            if found.number == number:
                return found
        raise NotFound(f"run '{run_id}' has no attempt {number}", details={"field": "attempt"})

    @bp.get(f"{PROJECT}/runs/<run_id>/attempts/<int:number>/log")
    async def attempt_log(workspace_id: str, project: str, run_id: str, number: int) -> Response:
        found = await attempt(project, run_id, number)
        return await file_response(found.log_path, "application/x-ndjson", f"log_{run_id}_{number}.jsonl")

    @bp.get(f"{PROJECT}/runs/<run_id>/attempts/<int:number>/trace")
    async def attempt_trace(workspace_id: str, project: str, run_id: str, number: int) -> Response:
        found = await attempt(project, run_id, number)
        return await file_response(found.trace_path, "application/zip", f"trace_{run_id}_{number}.zip")

    @bp.get(f"{PROJECT}/runs/<run_id>/attempts/<int:number>/video")
    async def attempt_video(workspace_id: str, project: str, run_id: str, number: int) -> Response:
        found = await attempt(project, run_id, number)
        video = await trio.to_thread.run_sync(first_file, found.video_path, ".webm")
        return await file_response(video, "video/webm", f"video_{run_id}_{number}.webm")

    return bp
