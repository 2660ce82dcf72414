"""The AuthSession answers (spec §5.2), named and cased as Intuned's clients parse them (camelCase).

A key that is sometimes absent is ``UNSET`` (never encoded); ``None`` encodes as ``null``.
"""

from __future__ import annotations

from typing import Any, Literal

from msgspec import UNSET, Struct, UnsetType


class AuthSessionBody(Struct, rename="camel", kw_only=True):
    """One session, in the list and alone: never its parameters or state; the proxy password masked."""

    id: str
    type: Literal["CREDENTIALS", "RUNTIME", "RECORDER"]
    status: Literal["PENDING", "READY", "EXPIRED"]
    source: str
    proxy: str | None
    has_state: bool
    created_at: str
    updated_at: str
    last_checked_at: str | None


class OperationStarted(Struct, rename="camel"):
    """Create and update answer ``started``; validate answers ``pending``."""

    status: Literal["started", "pending"]
    operation_id: str


class OperationResult(Struct, rename="camel"):
    """The create/update/validate result union: which keys are present depends on ``status``."""

    status: Literal["pending", "in_progress", "done", "failed", "canceled"]
    run_id: str | UnsetType = UNSET
    auth_session_id: str | UnsetType = UNSET
    message: str | UnsetType = UNSET
    error: dict[str, Any] | UnsetType = UNSET
    reason: dict[str, Any] | UnsetType = UNSET
