"""Who is signed in to the dashboard: the session cookie, checked on every page and action.

The cookie names a row of the session table (``sessions.py``); the session is live while it has
not expired and the key that opened it is still valid. The cookie authenticates the dashboard's
pages and, from a page of the same origin, the event websocket; never the JSON API.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from quart import Response, request, websocket

from ..http.handles import Handles
from .sessions import Session, tokens_match

COOKIE = "intunedd_session"
CSRF_FIELD = "csrf"
# Signing in has no session to hold a CSRF token yet: the sign-in form's token is also in a cookie
# (double submit), which a form posted from another site cannot send (SameSite=Strict).
SIGN_IN_COOKIE = "intunedd_sign_in"
SIGN_IN_FIELD = "sign_in_token"
SIGN_IN_TOKEN_S = 3600


def _now(h: Handles) -> float:
    return h.clock.now().timestamp()


async def live_session(h: Handles, session_id: str | None) -> Session | None:
    session = h.dashboard_sessions.get(session_id, _now(h))
    if session is None:
        return None
    if not await h.known_keys.valid(session.key_digest, h.records.key_is_valid):
        h.dashboard_sessions.close(session.id)
        return None
    return session


async def request_session(h: Handles) -> Session | None:
    return await live_session(h, request.cookies.get(COOKIE))


async def websocket_session(h: Handles) -> Session | None:
    """The dashboard session of a websocket opened by one of its pages. Browsers send cookies on a
    websocket from any site (SameSite counts no ports), so the Origin must be this very host."""
    origin = websocket.headers.get("origin", "")
    if not origin or urlsplit(origin).netloc != websocket.host:
        return None
    return await live_session(h, websocket.cookies.get(COOKIE))


def _secure(h: Handles) -> bool:
    return request.scheme == "https" or h.settings.server.public_base_url.startswith("https:")


def offer_sign_in(h: Handles, response: Response, token: str) -> None:
    response.set_cookie(
        SIGN_IN_COOKIE, token, max_age=SIGN_IN_TOKEN_S, path="/sign-in", httponly=True, samesite="Strict",
        secure=_secure(h),
    )  # fmt: skip


async def sign_in_token_ok() -> bool:
    return tokens_match(request.cookies.get(SIGN_IN_COOKIE), (await request.form).get(SIGN_IN_FIELD))


def open_session(h: Handles, response: Response, key_digest: str) -> Session:
    lifetime = h.settings.server.dashboard_session_s
    session = h.dashboard_sessions.open(key_digest, _now(h), lifetime)
    response.set_cookie(
        COOKIE, session.id, max_age=int(lifetime), path="/", httponly=True, samesite="Strict", secure=_secure(h)
    )
    response.delete_cookie(SIGN_IN_COOKIE, path="/sign-in")
    return session


def close_session(h: Handles, response: Response, session: Session) -> None:
    h.dashboard_sessions.close(session.id)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="Strict")
