"""Errors the HTTP API answers with, and the canonical body they are encoded to.

    ApiError (status, code)
     ├── BadRequest        400 bad-request       malformed JSON, wrong types, unknown API
     ├── Unauthorized      401 unauthorized      missing or unknown x-api-key
     ├── Forbidden         403 forbidden         another workspace's id, API access disabled
     ├── NotFound          404 not-found         project, run, attempt, artifact
     ├── Conflict          409 conflict
     ├── PayloadTooLarge   413 bad-request       body over server.max_body_bytes
     └── Unavailable       503 internal-server-error  the daemon is draining

The body copies Intuned's: ``{code, category, message, retirable, details?, correlationId}``.
"""

from __future__ import annotations

from typing import Any

from .ids import new_uuid


class ApiError(Exception):
    status = 500
    code = "internal-server-error"
    category = "infrastructure"

    def __init__(self, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "code": self.code,
            "category": self.category,
            "message": self.message,
            "retirable": self.status >= 500,
        }
        if self.details is not None:
            body["details"] = self.details
        body["correlationId"] = new_uuid()
        return body


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


class Unavailable(ApiError):
    status = 503
