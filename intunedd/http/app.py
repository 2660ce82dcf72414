"""The Quart-Trio application: authentication, the canonical error body, the blueprints."""

from __future__ import annotations

import importlib.util
import logging
import re
from pathlib import Path

import msgspec
from quart import Response, g, request, send_from_directory, websocket
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from .. import __version__
from ..dashboard.auth import websocket_session
from ..dashboard.routes import dashboard_blueprint
from ..errors import ApiError, BadRequest, Forbidden, NotFound, PayloadTooLarge, Unauthorized, from_store
from ..store.errors import StoreError
from ..store.keys import hash_key
from . import signing
from .handles import Handles
from .keys import keys_blueprint
from .metrics import METRICS_PATH, metrics_blueprint
from .openapi import document
from .responses import json_response
from .routes.auth_sessions import auth_sessions_blueprint
from .routes.collections import collections_blueprint
from .routes.deliveries import deliveries_blueprint
from .routes.functions import functions_blueprint
from .routes.jobs import jobs_blueprint
from .routes.projects import projects_blueprint
from .routes.queues import queues_blueprint
from .routes.runs import runs_blueprint
from .schemas import MAX_JSON_DEPTH
from .wire import Health, Info, QuarantineItem, QuarantineList
from .ws import events_blueprint, websocket_key

log = logging.getLogger(__name__)
API_PREFIX = "/api/v1/"
ARTIFACT_PATH = re.compile(r"(/runs/[^/]+/attempts/\d+/(log|trace|video)|/jobs/[^/]+/runs/[^/]+/results)$")
_PLAYWRIGHT = importlib.util.find_spec("playwright")
TRACE_VIEWER = (
    Path(_PLAYWRIGHT.origin if _PLAYWRIGHT and _PLAYWRIGHT.origin else ".").parent
    / "driver/package/lib/vite/traceViewer"
)


def _error_response(error: ApiError) -> Response:
    return json_response(error.body(), error.status)


async def _authenticate(handles: Handles, key: str | None, workspace_id: str | None) -> str:
    """The digest of a valid ``key``, for a path of this daemon's workspace."""
    if not key:
        raise Unauthorized("Missing API key: send it in the x-api-key header", details={"field": "x-api-key"})
    digest = hash_key(key)
    if not await handles.known_keys.valid(digest, handles.records.key_is_valid):
        raise Unauthorized("Invalid API key", details={"field": "x-api-key"})
    _check_workspace(handles, workspace_id)
    return digest


def _check_workspace(handles: Handles, workspace_id: str | None) -> None:
    if workspace_id is not None and workspace_id != handles.workspace_id:
        raise Forbidden(
            f"workspaceId '{workspace_id}' is not this daemon's workspace", details={"field": "workspaceId"}
        )


def create_app(handles: Handles) -> QuartTrio:
    app = QuartTrio(__name__, static_folder=None)  # no /static: the daemon has no static files of its own
    app.config["MAX_CONTENT_LENGTH"] = handles.settings.server.max_body_bytes
    app.config[MAX_JSON_DEPTH] = handles.settings.server.max_json_depth
    app.config["PROVIDE_AUTOMATIC_OPTIONS"] = False
    api_document = msgspec.json.encode(document(__version__))

    @app.before_request
    async def check_key() -> None:
        if not request.path.startswith(API_PREFIX) and request.path != METRICS_PATH:
            return
        given = request.args.get("signature")
        if given is not None and ARTIFACT_PATH.search(request.path):
            if not signing.verify(
                handles.signing_secret, request.path, request.args.get("expires", ""), given, handles.clock.now()
            ):
                raise Forbidden("The signed URL is invalid or has expired", details={"field": "signature"})
            return
        view_args = request.view_args or {}
        await _authenticate(handles, request.headers.get("x-api-key"), view_args.get("workspace_id"))

    @app.before_websocket
    async def check_ws_key() -> None:
        # A browser cannot set headers on a websocket: the dashboard's page streams on its session cookie.
        workspace_id = (websocket.view_args or {}).get("workspace_id")
        session = None if websocket_key() else await websocket_session(handles)
        if session is None:
            g.key_digest = await _authenticate(handles, websocket_key(), workspace_id)
        else:
            _check_workspace(handles, workspace_id)
            g.key_digest = session.key_digest

    @app.errorhandler(ApiError)
    async def api_error(error: ApiError) -> Response:
        return _error_response(error)

    @app.errorhandler(StoreError)
    async def store_error(error: StoreError) -> Response:
        return _error_response(from_store(error))

    @app.errorhandler(HTTPException)
    async def http_error(error: HTTPException) -> Response:
        if isinstance(error, RequestEntityTooLarge):
            limit = handles.settings.server.max_body_bytes
            return _error_response(PayloadTooLarge(f"The request body exceeds {limit} bytes", {"field": "body"}))
        if error.code == 404:
            return _error_response(NotFound(f"No route for {request.method} {request.path}"))
        problem = BadRequest(error.description or "Bad request")
        problem.status = error.code or 400
        if problem.status == 405:
            problem.code = "method-not-allowed"
        return _error_response(problem)

    @app.errorhandler(Exception)
    async def unexpected(error: Exception) -> Response:
        log.exception("unexpected error serving %s %s", request.method, request.path)
        return _error_response(ApiError("Internal server error"))

    @app.get("/health")
    async def health() -> Response:
        return json_response(
            Health(
                status="ok",
                version=__version__,
                pool=handles.pool.statistics(),
                runner=handles.runner.statistics(),
                store=handles.records.statistics(),
                sinks=handles.sink_statistics(),
                disk=handles.retention.disk_usage(),
                retention=handles.retention.statistics(),
            )
        )

    @app.get("/api/v1/info")
    async def info() -> Response:
        return json_response(Info(handles.workspace_id, __version__))

    @app.get("/api/v1/workspace/<workspace_id>/quarantine")
    async def quarantined(workspace_id: str) -> Response:
        """Stored records the daemon set aside because it could not process them, with why."""
        rows = await handles.records.quarantine()
        return json_response(QuarantineList(msgspec.convert(rows, list[QuarantineItem])))

    @app.get("/openapi.json")
    async def openapi_json() -> Response:
        return Response(api_document, content_type="application/json")

    @app.get("/trace-viewer/<path:name>")
    async def trace_viewer(name: str) -> Response:
        # Playwright's own trace viewer, served from the installed package; it loads a
        # trace from ?trace=<signed trace URL> (see the run detail's attempts).
        try:
            return await send_from_directory(TRACE_VIEWER, name)
        except OSError as e:  # a name the file system refuses (too long, …) names no file
            raise NotFound(f"No trace viewer file {name[:100]!r}") from e

    app.register_blueprint(runs_blueprint(handles))
    app.register_blueprint(jobs_blueprint(handles))
    app.register_blueprint(deliveries_blueprint(handles))
    app.register_blueprint(projects_blueprint(handles))
    app.register_blueprint(events_blueprint(handles))
    app.register_blueprint(keys_blueprint(handles))
    app.register_blueprint(metrics_blueprint(handles))
    app.register_blueprint(functions_blueprint(handles))
    app.register_blueprint(auth_sessions_blueprint(handles))
    app.register_blueprint(queues_blueprint(handles))
    app.register_blueprint(collections_blueprint(handles))
    app.register_blueprint(dashboard_blueprint(handles))
    return app
