"""What happens to a run after one of its attempts ends: a pure decision."""

from __future__ import annotations

from typing import Any, Literal

import msgspec

DOC_URL = "https://docs.intunedhq.com/docs/support/errors"

# Intuned's categories for the attempt error codes the workers report.
CATEGORIES = {
    "script-execution-exception": "execution",
    "script-unexpected-error": "execution",
    "script-no-valid-output-received": "execution",
    "script-timeout": "execution",
    "result-too-big-error": "execution",
    "script-process-crashed": "infrastructure",
    "check-attempts-failed": "auth",
    "create-attempts-failed": "auth",
    "post-create-check-attempts-failed": "auth",
    "auth-session-not-found": "auth",
}


class Decision(msgspec.Struct, frozen=True):
    action: Literal["complete", "retry", "fail"]
    error: dict[str, Any] | None = None


def error_object(code: str, message: str, *, retryable: bool, details: Any = None) -> dict[str, Any]:
    """Intuned's ErrorObject (note its spelling ``retirable``)."""
    body: dict[str, Any] = {
        "message": message,
        "code": code,
        "category": CATEGORIES.get(code, "execution"),
        "retirable": retryable,
        "doc_url": DOC_URL,
    }
    if details is not None:
        body["details"] = details
    return body


def after_attempt(*, succeeded: bool, error: dict[str, Any] | None, attempts_made: int, max_attempts: int) -> Decision:
    """``attempts_made`` counts the attempts that count against ``max_attempts``."""
    if succeeded:
        return Decision("complete")
    assert error is not None
    if error.get("retirable", True) and attempts_made < max_attempts:
        return Decision("retry", error)
    details = dict(error.get("details") or {}) if isinstance(error.get("details"), dict) else {}
    details["attempts_count"] = attempts_made
    return Decision("fail", {**error, "details": details})
