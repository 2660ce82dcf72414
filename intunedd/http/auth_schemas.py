"""AuthSessions on the wire (spec §5.2): the request bodies, the actor calls they become, and the
session and operation-result answers built from stored records.

Bodies are camelCase as Intuned's clients send them; unknown fields are ignored, as newer clients
may send more. An answer never carries a session's parameters or storage state, and its proxy
only with the password masked.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Protocol, TypeVar

import msgspec
from msgspec import Meta, Struct

from ..errors import BadRequest, PayloadTooLarge
from ..proxies import check_proxy
from ..store.auth_queries import AuthOperation, AuthSessionRecord
from ..workers import storage_state
from .auth_wire import AuthSessionBody, OperationResult
from .schemas import decode_body

SESSION_ID = r"^[A-Za-z0-9-]{1,100}\Z"  # \Z: "$" would let a trailing newline in
SessionId = Annotated[str, Meta(pattern=SESSION_ID)]
Attempts = Annotated[int, Meta(ge=1, le=10)]
RequestTimeout = Annotated[int, Meta(ge=1, le=3600)]
Parameters = Annotated[dict[str, Any], Meta(max_length=1000)]
Proxy = Annotated[str, Meta(max_length=2000)]

# A storage state is kilobytes for a real login; a body past this is refused before it is decoded.
MAX_STATE_BYTES = 10 * 1024 * 1024


class CreateSessionBody(Struct, rename="camel", kw_only=True):
    """``AuthSessionsCreateStartRequestBody``; ``id`` defaults to a random uuid (the actor picks it)."""

    parameters: Parameters
    id: SessionId | None = None
    proxy: Proxy | None = None
    create_attempts: Attempts = 3
    check_attempts: Attempts = 3
    save_trace: bool | None = None


class UpdateSessionBody(Struct, rename="camel", kw_only=True):
    """``AuthSessionsUpdateStartRequestBody``: create the session again with these parameters."""

    parameters: Parameters
    proxy: Proxy | None = None
    create_attempts: Attempts = 3
    check_attempts: Attempts = 3
    save_trace: bool | None = None


class ValidateSessionBody(Struct, rename="camel", kw_only=True):
    """``AuthSessionsValidateStartRequestBody``."""

    auto_recreate: bool = True
    check_attempts: Attempts = 3
    create_attempts: Attempts = 3
    proxy: Proxy | None = None
    request_timeout: RequestTimeout = 600


class StorageState(storage_state.StorageState, kw_only=True):
    """A Playwright storage-state file (``context.storage_state()``), with Intuned's optional
    ``sessionStorage``: the body of our ``PUT …/auth-sessions/{id}/state`` (RECORDER import). Unlike
    a state a worker captured, a file must name its cookies, so a JSON file of another kind is refused."""

    cookies: Annotated[list[storage_state.Cookie], Meta(max_length=storage_state.MAX_COOKIES)]

    def as_state(self) -> dict[str, Any]:
        state = msgspec.to_builtins(self)
        assert isinstance(state, dict)
        return state


OperationBody = TypeVar("OperationBody", CreateSessionBody, UpdateSessionBody, ValidateSessionBody)


def decode_operation_body(raw: bytes, kind: type[OperationBody]) -> OperationBody:
    """A create, update or validate body; a 400 naming the field otherwise. Validate's every field
    has a default, so an empty body is the defaults."""
    if kind is ValidateSessionBody and not raw.strip():
        raw = b"{}"
    body = decode_body(raw, kind)
    try:
        check_proxy(body.proxy)
    except ValueError as e:
        raise BadRequest(str(e), details={"field": "proxy"}) from e
    return body


def decode_state(session_id: str, raw: bytes) -> dict[str, Any]:
    """An import's storage state; the session id in the path is checked as a create's ``id`` is."""
    if not re.match(SESSION_ID, session_id):
        raise BadRequest("authSessionId must be 1-100 letters, digits or '-'", details={"field": "authSessionId"})
    if len(raw) > MAX_STATE_BYTES:
        raise PayloadTooLarge(f"A storage state may be at most {MAX_STATE_BYTES} bytes", details={"field": "body"})
    return decode_body(raw, StorageState).as_state()


class AuthSessionsApi(Protocol):
    """What the routes ask of the AuthSessions actor; its handle satisfies this."""

    async def start_create(self, project: str, body: CreateSessionBody) -> AuthOperation: ...

    async def start_update(self, project: str, session_id: str, body: UpdateSessionBody) -> AuthOperation: ...

    async def start_validate(self, project: str, session_id: str, body: ValidateSessionBody) -> AuthOperation: ...

    async def import_state(self, project: str, session_id: str, state: dict[str, Any]) -> AuthSessionRecord: ...

    async def delete(self, project: str, session_id: str) -> bool: ...


# -- answers ------------------------------------------------------------------------------------

# What Intuned's clients accept in an operation's error ``code`` and canceled ``reason.type``
# (their models are closed enums): anything else would make the whole answer unparseable, so it
# is sent as the generic value with the original in ``details``.
ERROR_CODES = frozenset({
    "internal-server-error", "script-process-crashed", "unexpected", "script-execution-exception",
    "script-no-valid-output-received", "result-too-big-error", "script-timeout", "script-unexpected-error",
    "auth-check-failed", "all-attempts-failed", "check-attempts-failed", "create-attempts-failed",
    "post-create-check-attempts-failed", "api-attempts-failed", "onepassword-integration-error", "job-run-terminated",
})  # fmt: skip
ERROR_CATEGORIES = frozenset({"infrastructure", "execution", "auth", "user", "billing"})
REASON_TYPES = frozenset({
    "auth-session-validate-dependency-failed", "terminated", "job-run-paused", "job-run-terminated",
    "failed-to-initialize-job-run", "api-access-disabled", "cancelled-user-action",
})  # fmt: skip
FAILED_MESSAGE = "The AuthSession operation failed"
CANCELED_MESSAGE = "The AuthSession operation was canceled"


def _closed(problem: dict[str, Any], key: str, allowed: frozenset[str], fallback: str) -> dict[str, Any]:
    value = problem.get(key)
    if value is None or value in allowed:
        return problem
    details = problem.get("details")
    extra = {key: value} if details is None else {key: value, "details": details}
    return {**problem, key: fallback, "details": extra}


def wire_error(error: dict[str, Any] | None) -> dict[str, Any]:
    """An ErrorObject Intuned's clients parse: ``message`` and ``category`` present, known code."""
    shown = dict(error or {})
    shown.setdefault("message", FAILED_MESSAGE)
    if shown.get("category") not in ERROR_CATEGORIES:
        shown["category"] = "infrastructure"
    return _closed(shown, "code", ERROR_CODES, "unexpected")


def wire_reason(reason: dict[str, Any] | None) -> dict[str, Any]:
    """A ReasonObject Intuned's clients parse: ``type`` and ``message`` present, known type."""
    shown = dict(reason or {})
    shown.setdefault("message", CANCELED_MESSAGE)
    shown.setdefault("type", "cancelled-user-action")
    return _closed(shown, "type", REASON_TYPES, "cancelled-user-action")


def operation_result(op: AuthOperation) -> OperationResult:
    """The create/update/validate result union, by the operation's status."""
    if op.status == "in_progress" and op.run_id is not None:
        return OperationResult("in_progress", run_id=op.run_id)
    if op.status == "done":
        return OperationResult("done", auth_session_id=op.session_id)
    if op.status == "failed":
        error = wire_error(op.error)
        return OperationResult("failed", message=str(error["message"]), error=error)
    if op.status == "canceled":
        reason = wire_reason(op.reason)
        return OperationResult("canceled", message=str(reason["message"]), reason=reason)
    return OperationResult("pending")  # also in_progress before its run has an id: the client needs runId


def session_body(session: AuthSessionRecord) -> AuthSessionBody:
    return AuthSessionBody(
        id=session.id,
        type=session.type,
        status=session.status,
        source=session.source,
        proxy=session.proxy_masked,
        has_state=session.has_state,
        created_at=session.created_at,
        updated_at=session.updated_at,
        last_checked_at=session.last_checked_at,
    )
