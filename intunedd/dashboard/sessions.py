"""Dashboard sign-in sessions: a server-side table of random ids, each bound to the API key that
opened it (by digest, so a revoked key ends its sessions) and holding the session's CSRF token.

The table lives in the daemon's memory: a restart signs everyone out, which is the safe failure.
It holds at most ``max_sessions``; opening one more forgets the one closest to expiring.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass

MAX_SESSIONS = 1000
TOKEN_BYTES = 32


@dataclass(frozen=True)
class Session:
    id: str
    csrf: str
    key_digest: str
    expires_at: float  # unix seconds, from the injected clock


class SessionTable:
    def __init__(self, max_sessions: int = MAX_SESSIONS, token: Callable[[int], str] = secrets.token_urlsafe) -> None:
        self._max = max_sessions
        self._token = token
        self._sessions: dict[str, Session] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    def open(self, key_digest: str, now: float, lifetime_s: float) -> Session:
        if len(self._sessions) >= self._max:
            del self._sessions[min(self._sessions.values(), key=lambda s: s.expires_at).id]
        session = Session(self._token(TOKEN_BYTES), self._token(TOKEN_BYTES), key_digest, now + lifetime_s)
        self._sessions[session.id] = session
        return session

    def get(self, session_id: str | None, now: float) -> Session | None:
        """The live session of that id; an expired one is forgotten and answers None."""
        session = self._sessions.get(session_id or "")
        if session is None:
            return None
        if session.expires_at <= now:
            del self._sessions[session.id]
            return None
        return session

    def close(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)


def tokens_match(expected: str | None, given: str | None) -> bool:
    """Whether ``given`` is the token ``expected``, compared in constant time; two absent tokens never match."""
    if not expected or given is None:
        return False
    # Bytes, not str: compare_digest refuses non-ASCII text, and a forged token may be any text.
    return hmac.compare_digest(expected.encode("utf-8", "replace"), given.encode("utf-8", "replace"))


def csrf_ok(session: Session, given: str | None) -> bool:
    return tokens_match(session.csrf, given)


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)
