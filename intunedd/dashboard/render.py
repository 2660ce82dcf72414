"""What every page shares: rendering with the session's CSRF token, live fragments, redirects."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import msgspec
from quart import Response, g, render_template, request

NAV = (
    ("/", "Overview"),
    ("/projects", "Projects"),
    ("/runs", "Runs"),
    ("/jobs", "Jobs"),
    ("/deliveries", "Deliveries"),
    ("/queues", "Queues"),
    ("/auth-sessions", "Auth sessions"),
    ("/collections", "Collections"),
)


def section(path: str) -> str:
    """The menu entry a path belongs to: a run's page is under Runs, a JobRun's under Jobs."""
    parts = path.strip("/").split("/")
    if len(parts) >= 3 and parts[0] == "projects":
        return f"/{parts[2]}"
    return f"/{parts[0]}"


def pretty_json(value: Any) -> str:
    """A wire Struct or JSON value, indented for a <pre>."""
    return json.dumps(msgspec.to_builtins(value), indent=2, ensure_ascii=False)


def compact_json(value: Any) -> str:
    return msgspec.json.encode(value).decode()


async def render(template: str, **context: Any) -> str:
    session = g.get("session")
    return await render_template(
        template, csrf=session.csrf if session else "", signed_in=session is not None, nav=NAV,
        current=section(request.path), **context,
    )  # fmt: skip


async def page(template: str, live: str, **context: Any) -> str:
    """The whole page, or (``?partial=1``, what the live-update script asks for) its live part."""
    return await render(live if request.args.get("partial") else template, **context)


def see_other(location: str, **query: str) -> Response:
    """A redirect after a form: the browser follows it with a GET."""
    shown = {k: v for k, v in query.items() if v}
    response = Response("", status=303)
    response.headers["Location"] = f"{location}?{urlencode(shown)}" if shown else location
    return response


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path of this daemon only, never another site."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target
