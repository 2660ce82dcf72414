"""AuthSessions: Intuned's paths (irregular on purpose: create has no ``/start``, update has none
either, validate has one), bodies and status codes (spec §5.2).

``PUT …/auth-sessions/{id}/state`` is our addition: it imports a Playwright storage-state file as a
RECORDER session (Intuned records those in a hosted browser this daemon does not have).
"""

from __future__ import annotations

from quart import Blueprint, Response

from ...errors import NotFound, Unavailable
from ...store.auth_queries import AuthOperation, AuthSessionRecord, OperationKind
from ..auth_schemas import (
    AuthSessionsApi,
    CreateSessionBody,
    UpdateSessionBody,
    ValidateSessionBody,
    decode_operation_body,
    decode_state,
    operation_result,
    session_body,
)
from ..auth_wire import OperationStarted
from ..handles import Handles
from ..responses import json_response
from ..schemas import request_bytes

SESSIONS = "/api/v1/workspace/<workspace_id>/projects/<project>/auth-sessions"


def _session_missing(project: str, session_id: str) -> NotFound:
    return NotFound(f"auth session '{session_id}' not found in project '{project}'", details={"field": "authSessionId"})


def auth_sessions_blueprint(h: Handles) -> Blueprint:
    bp = Blueprint("auth_sessions", __name__)

    def actor() -> AuthSessionsApi:
        if h.auth_sessions is None:
            raise Unavailable("AuthSession operations are not available in this daemon")
        return h.auth_sessions

    async def load_session(project: str, session_id: str) -> AuthSessionRecord:
        session = await h.records.auth_session(project, session_id)
        if session is None:
            raise _session_missing(project, session_id)
        return session

    async def result(project: str, kind: OperationKind, op_id: str, session_id: str | None = None) -> Response:
        op: AuthOperation | None = await h.records.auth_operation(project, kind, op_id)
        if op is None or (session_id is not None and op.session_id != session_id):
            raise NotFound(f"{kind} operation '{op_id}' not found", details={"field": "operationId"})
        return json_response(operation_result(op))

    @bp.get(SESSIONS)
    async def list_sessions(workspace_id: str, project: str) -> Response:
        return json_response([session_body(s) for s in await h.records.auth_sessions(project)])

    @bp.get(f"{SESSIONS}/<session_id>")
    async def get(workspace_id: str, project: str, session_id: str) -> Response:
        return json_response(session_body(await load_session(project, session_id)))

    @bp.delete(f"{SESSIONS}/<session_id>")
    async def delete(workspace_id: str, project: str, session_id: str) -> Response:
        if not await actor().delete(project, session_id):
            raise _session_missing(project, session_id)
        return Response(b"", status=204)

    @bp.post(f"{SESSIONS}/create")
    async def create(workspace_id: str, project: str) -> Response:
        body = decode_operation_body(await request_bytes(), CreateSessionBody)
        op = await actor().start_create(project, body)
        return json_response(OperationStarted("started", op.id), 201)

    @bp.get(f"{SESSIONS}/create/<operation_id>/result")
    async def create_result(workspace_id: str, project: str, operation_id: str) -> Response:
        return await result(project, "create", operation_id)

    @bp.post(f"{SESSIONS}/<session_id>/update")
    async def update(workspace_id: str, project: str, session_id: str) -> Response:
        body = decode_operation_body(await request_bytes(), UpdateSessionBody)
        op = await actor().start_update(project, session_id, body)
        return json_response(OperationStarted("started", op.id), 201)

    @bp.get(f"{SESSIONS}/<session_id>/update/<operation_id>/result")
    async def update_result(workspace_id: str, project: str, session_id: str, operation_id: str) -> Response:
        return await result(project, "update", operation_id, session_id)

    @bp.post(f"{SESSIONS}/<session_id>/validate/start")
    async def validate(workspace_id: str, project: str, session_id: str) -> Response:
        body = decode_operation_body(await request_bytes(), ValidateSessionBody)
        op = await actor().start_validate(project, session_id, body)
        return json_response(OperationStarted("pending", op.id), 201)

    @bp.get(f"{SESSIONS}/<session_id>/validate/<operation_id>/result")
    async def validate_result(workspace_id: str, project: str, session_id: str, operation_id: str) -> Response:
        return await result(project, "validate", operation_id, session_id)

    @bp.put(f"{SESSIONS}/<session_id>/state")
    async def import_state(workspace_id: str, project: str, session_id: str) -> Response:
        """Our addition: a Playwright storage state imported as a RECORDER session, READY."""
        state = decode_state(session_id, await request_bytes())
        session = await actor().import_state(project, session_id, state)
        return json_response(session_body(session))

    return bp
