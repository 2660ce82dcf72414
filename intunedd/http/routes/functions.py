"""The backend functions Intuned's runtime calls from inside an attempt (spec §6.2): its persistent store
and the auth-session parameters, at ``{FUNCTIONS_DOMAIN}/api/{workspaceId}/functions/{projectId}/…``.

They are authorised not by an API key but by the attempt's functions token (``functions_token.py``),
which names the one project whose data the automation may reach.
"""

from __future__ import annotations

from typing import Any

import msgspec
from quart import Blueprint, Response, request

from ... import functions_token
from ...errors import BadRequest, Forbidden, NotFound, PayloadTooLarge, Unauthorized
from ...workers import protocol
from ..handles import Handles
from ..responses import json_response
from ..schemas import decode_body, request_bytes

FUNCTIONS = "/api/<workspace_id>/functions/<project>"


class StoredValue(msgspec.Struct):
    value: Any


class KvValue(msgspec.Struct):
    """What the runtime's ``persistent_store.get`` reads: ``value.value``, or a null ``value`` if unset."""

    value: StoredValue | None


class KvPut(msgspec.Struct):
    value: Any


class KvSaved(msgspec.Struct):
    pass


class AuthParameters(msgspec.Struct):
    """What the runtime's ``get_auth_session_parameters`` reads."""

    parameters: Any


def _bearer_token() -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("Missing functions token: send it as 'Authorization: Bearer <token>'",
                           details={"field": "Authorization"})  # fmt: skip
    return token.strip()


def _key(key: str) -> str:
    try:
        return msgspec.convert(key, protocol.StoreKey)
    except msgspec.ValidationError as e:
        message = f"Invalid key: needs 1 to {protocol.MAX_NAME_CHARS} characters and no ':' or '#'"
        raise BadRequest(message, details={"field": "key"}) from e


def functions_blueprint(h: Handles) -> Blueprint:
    bp = Blueprint("functions", __name__)

    def authorise(workspace_id: str, project: str) -> None:
        claims = functions_token.verify(h.signing_secret, _bearer_token(), h.clock.now())
        if claims is None:
            raise Unauthorized("Invalid or expired functions token", details={"field": "Authorization"})
        if workspace_id != h.workspace_id:
            raise Forbidden(f"workspaceId '{workspace_id}' is not this daemon's workspace",
                            details={"field": "workspaceId"})  # fmt: skip
        if project != claims.project:
            raise Forbidden("The functions token is not for this project", details={"field": "projectId"})

    @bp.get(f"{FUNCTIONS}/kv-store/<path:key>")
    async def kv_get(workspace_id: str, project: str, key: str) -> Response:
        authorise(workspace_id, project)
        value = await h.records.kv_get(project, _key(key))
        return json_response(KvValue(None if value is None else StoredValue(value)))

    @bp.put(f"{FUNCTIONS}/kv-store/<path:key>")
    async def kv_set(workspace_id: str, project: str, key: str) -> Response:
        authorise(workspace_id, project)
        name = _key(key)
        body = await request_bytes()
        # The limit a worker's persistent_store.set frame has on our own runtime's path.
        limit = protocol.max_from_worker_bytes(h.settings.runs.max_result_bytes)
        if len(body) > limit:
            raise PayloadTooLarge(f"The value is {len(body)} bytes encoded, over the limit of {limit}",
                                  details={"field": "value"})  # fmt: skip
        await h.records.kv_set(project, name, decode_body(body, KvPut).value)
        return json_response(KvSaved())

    @bp.get(f"{FUNCTIONS}/auth-session/<auth_session_id>/parameters")
    async def auth_session_parameters(workspace_id: str, project: str, auth_session_id: str) -> Response:
        authorise(workspace_id, project)
        parameters = await h.records.auth_parameters(h.secrets, project, auth_session_id)
        if parameters is None:
            raise NotFound(
                f"AuthSession '{auth_session_id}' has no parameters in this project", details={"field": "authSessionId"}
            )
        return json_response(AuthParameters(parameters))

    return bp
