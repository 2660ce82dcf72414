"""Errors the HTTP API answers with, and the canonical body they are encoded to.

    ApiError (status, code)
     ├── BadRequest        400 bad-request       malformed JSON, wrong types, unknown API
     ├── Unauthorized      401 unauthorized      missing or unknown x-api-key
     ├── Forbidden         403 forbidden         another workspace's id, API access disabled
     ├── NotFound          404 not-found         project, run, attempt, artifact
     ├── Conflict          409 conflict
     ├── PayloadTooLarge   413 bad-request       body over server.max_body_bytes
     ├── TooManyRequests   429 too-many-requests  over events.max_connections_per_key
     └── Unavailable       503 internal-server-error  the daemon is draining, or its disk is full

The store raises its own errors (``store.errors``); ``from_store`` maps them here.

The body copies Intuned's: ``{code, category, message, retirable, details?, correlationId}``.
"""

from __future__ import annotations

import errno
import sqlite3
from typing import Any

import msgspec
from msgspec import UNSET, UnsetType

from .ids import new_uuid
from .store.errors import CodeOwned, RecordExists, RecordMissing, StoreError

DISK_FULL = "The disk holding the daemon's state is full: writes are refused until space is freed"
_DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


class ErrorBody(msgspec.Struct, kw_only=True, rename={"correlation_id": "correlationId"}):
    """The canonical error body; ``retirable`` is Intuned's spelling."""

    code: str
    category: str
    message: str
    retirable: bool
    details: Any | UnsetType = UNSET
    correlation_id: str


class ApiError(Exception):
    status = 500
    code = "internal-server-error"
    category = "infrastructure"

    def __init__(self, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def body(self) -> ErrorBody:
        return ErrorBody(
            code=self.code,
            category=self.category,
            message=self.message,
            retirable=self.status >= 500,
            details=UNSET if self.details is None else self.details,
            correlation_id=new_uuid(),
        )


class _UserError(ApiError):
    category = "user"


class BadRequest(_UserError):
    status = 400
    code = "bad-request"


class Unauthorized(_UserError):
    status = 401
    code = "unauthorized"


class Forbidden(_UserError):
    status = 403
    code = "forbidden"


class NotFound(_UserError):
    status = 404
    code = "not-found"


class Conflict(_UserError):
    status = 409
    code = "conflict"


class PayloadTooLarge(_UserError):
    status = 413
    code = "bad-request"


class TooManyRequests(_UserError):
    status = 429
    code = "too-many-requests"


class Unavailable(ApiError):
    status = 503


def disk_full(error: BaseException) -> Unavailable | None:
    """SQLite's SQLITE_FULL or a file write's ENOSPC (or EDQUOT), here or as what caused
    ``error`` (``raise ... from``), as the 503 the API answers with.

    Both are transient: once space is freed the same write succeeds, so nothing needs a restart.
    """
    cause: BaseException | None = error
    while cause is not None and not (
        getattr(cause, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
        or (isinstance(cause, OSError) and cause.errno in _DISK_FULL_ERRNOS)
    ):
        cause = cause.__cause__
    if cause is None:
        return None
    unavailable = Unavailable(DISK_FULL, details={"reason": "disk-full"})
    unavailable.__cause__ = error
    return unavailable


def from_store(error: StoreError) -> ApiError:
    """The answer to a store refusal: one mapping for the runner and the routes."""
    kind: type[ApiError] = ApiError
    if isinstance(error, RecordMissing):
        kind = NotFound
    elif isinstance(error, RecordExists):
        kind = Conflict
    elif isinstance(error, CodeOwned):
        kind = Forbidden
    return kind(error.message, details=error.details)
