"""The dashboard blueprint: sign-in and sign-out, the session and CSRF guard, and its pages.

Every page and action needs a live session (``auth.py``); every POST but the sign-in carries
the session's CSRF token. Errors are shown as a page, with the API's status and message.
"""

from __future__ import annotations

import time
from pathlib import Path

from quart import Blueprint, Response, g, request, send_from_directory
from werkzeug.exceptions import HTTPException

from ..errors import ApiError, Forbidden, NotFound, from_store
from ..http.handles import Handles
from ..store.errors import StoreError
from ..store.keys import hash_key
from .auth import (
    CSRF_FIELD,
    SIGN_IN_FIELD,
    close_session,
    offer_sign_in,
    open_session,
    request_session,
    sign_in_token_ok,
)
from .render import compact_json, pretty_json, render, safe_next, see_other
from .sessions import csrf_ok, new_token
from .views_collections import add_collection_views
from .views_jobs import add_job_views
from .views_ops import add_ops_views
from .views_runs import add_run_views

PUBLIC = frozenset({"dashboard.sign_in", "dashboard.sign_in_post", "dashboard.asset"})
STATIC = Path(__file__).parent / "static"
ASSETS = frozenset(p.name for p in STATIC.iterdir())
# The pages only load what the daemon serves; media may come from the public base URL (signed links).
CSP = "default-src 'self'; img-src 'self' data:; media-src 'self' {base}; frame-ancestors 'none'; form-action 'self'"


def dashboard_blueprint(h: Handles) -> Blueprint:
    bp = Blueprint("dashboard", __name__, template_folder="templates")
    bp.add_app_template_filter(pretty_json)
    bp.add_app_template_filter(compact_json)

    @bp.context_processor
    async def workspace() -> dict[str, str]:
        return {"workspace": h.workspace_id}

    @bp.before_request
    async def guard() -> Response | None:
        g.started = time.perf_counter()
        g.session = await request_session(h)
        if request.endpoint in PUBLIC:
            return None
        if g.session is None:
            if request.method == "GET":
                return see_other("/sign-in", next=request.full_path.rstrip("?"))
            raise Forbidden("Sign in to the dashboard first", details={"field": "session"})
        if request.method == "POST" and not csrf_ok(g.session, (await request.form).get(CSRF_FIELD)):
            raise Forbidden("The form's CSRF token is missing or wrong; reload the page", details={"field": CSRF_FIELD})
        return None

    @bp.after_request
    async def headers(response: Response) -> Response:
        response.headers["Content-Security-Policy"] = CSP.format(base=h.settings.server.public_base_url)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        # The server's own time for the page (browsers' dev tools show it; bench/dashboard.py reads it).
        response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - g.started) * 1000:.2f}"
        if request.endpoint != "dashboard.asset":
            response.headers["Cache-Control"] = "no-store"
        return response

    @bp.errorhandler(ApiError)
    async def api_error(error: ApiError) -> Response:
        return Response(await render("error.html", error=error), status=error.status)

    @bp.errorhandler(StoreError)
    async def store_error(error: StoreError) -> Response:
        return await api_error(from_store(error))

    @bp.errorhandler(HTTPException)
    async def http_error(error: HTTPException) -> Response:
        problem = ApiError(error.description or "Bad request")
        problem.status = error.code or 400
        return await api_error(problem)

    @bp.get("/assets/<name>")
    async def asset(name: str) -> Response:
        """The dashboard's own CSS and script: a fixed set of files, so no name reaches the file system."""
        if name not in ASSETS:
            raise NotFound(f"No dashboard asset {name[:100]!r}")
        return await send_from_directory(STATIC, name)

    async def sign_in_page(target: str, failed: bool) -> Response:
        token = new_token()
        page = await render("sign_in.html", next=target, failed=failed, token=token)
        response = Response(page, status=401 if failed else 200)
        offer_sign_in(h, response, token)
        return response

    @bp.get("/sign-in")
    async def sign_in() -> Response:
        return await sign_in_page(safe_next(request.args.get("next")), failed=False)

    @bp.post("/sign-in")
    async def sign_in_post() -> Response:
        if not await sign_in_token_ok():
            raise Forbidden("The sign-in form's token is missing or wrong; reload the page", {"field": SIGN_IN_FIELD})
        form = await request.form
        digest = hash_key(form.get("key", "").strip())
        target = safe_next(form.get("next"))
        if not form.get("key") or not await h.known_keys.valid(digest, h.records.key_is_valid):
            return await sign_in_page(target, failed=True)
        response = see_other(target)
        open_session(h, response, digest)
        return response

    @bp.post("/sign-out")
    async def sign_out() -> Response:
        response = see_other("/sign-in")
        close_session(h, response, g.session)
        return response

    add_ops_views(bp, h)
    add_run_views(bp, h)
    add_job_views(bp, h)
    add_collection_views(bp, h)
    return bp
