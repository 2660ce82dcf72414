"""The overview, sink deliveries, queues and AuthSessions (their status, never their state)."""

from __future__ import annotations

from quart import Blueprint, Response, request

from ..errors import BadRequest, Unavailable
from ..http.auth_schemas import ValidateSessionBody, session_body
from ..http.handles import Handles
from ..http.routes.deliveries import STATUSES
from ..http.routes.queues import queue_bodies
from ..http.schemas import delivery_body, query_int, run_item
from .chart import activity_chart, since
from .render import page, render, see_other
from .views_runs import PAGE_SIZE, choose_project

CHART_HOURS = 6
CHART_BUCKET_MINUTES = 10
ACTIVE_SHOWN = 20
FAILED_SHOWN = 10


def add_ops_views(bp: Blueprint, h: Handles) -> None:
    @bp.get("/")
    async def overview() -> str:
        now = h.clock.now()
        rows = await h.records.finished_by_minute(since(now, CHART_HOURS))
        failed, failed_total = await h.records.deliveries("failed", None, FAILED_SHOWN, 0)
        active = [(r.project, run_item(r)) for r in await h.records.active_runs(ACTIVE_SHOWN)]
        return await page(
            "overview.html", "_overview_live.html", pool=h.pool.statistics(), runner=h.runner.statistics(),
            sinks=h.sink_statistics(), active=active,
            chart=activity_chart(rows, now, CHART_HOURS, CHART_BUCKET_MINUTES),
            failed=[delivery_body(d) for d in failed], failed_total=failed_total,
        )  # fmt: skip

    @bp.get("/deliveries")
    async def deliveries() -> str:
        status = request.args.get("status", "failed")
        if status not in ("", *STATUSES):
            raise BadRequest(f"status must be one of {', '.join(STATUSES)}", details={"field": "status"})
        number = query_int("page", 1, 1)
        found, total = await h.records.deliveries(status or None, None, PAGE_SIZE, (number - 1) * PAGE_SIZE)
        return await page(
            "deliveries.html", "_deliveries_live.html", status=status, statuses=STATUSES,
            deliveries=[delivery_body(d) for d in found], total=total, page_number=number,
            pages=max(1, -(-total // PAGE_SIZE)),
        )  # fmt: skip

    @bp.post("/deliveries/<delivery_id>/retry")
    async def retry(delivery_id: str) -> Response:
        await h.records.retry_delivery(delivery_id)
        return see_other("/deliveries", status=request.args.get("status", "failed"), notice="Delivery retried")

    @bp.get("/queues")
    async def queues() -> str:
        projects, project = await choose_project(h)
        shown = await queue_bodies(h, project) if project else []
        return await page("queues.html", "_queues_live.html", projects=projects, project=project, queues=shown)

    @bp.get("/auth-sessions")
    async def auth_sessions() -> str:
        projects, project = await choose_project(h)
        found = [session_body(s) for s in await h.records.auth_sessions(project)] if project else []
        return await render("auth_sessions.html", projects=projects, project=project, sessions=found)

    @bp.post("/projects/<project>/auth-sessions/<session_id>/validate")
    async def validate(project: str, session_id: str) -> Response:
        if h.auth_sessions is None:
            raise Unavailable("AuthSession operations are not available in this daemon")
        op = await h.auth_sessions.start_validate(project, session_id, ValidateSessionBody())
        return see_other("/auth-sessions", project=project, notice=f"Validation {op.id} started for {session_id}")
