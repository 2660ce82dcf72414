"""``/events``: committed run and attempt events as JSON text frames, filtered by query.

``?project=NAME&run=RUN_ID&type=run.completed&type=…``; authenticate with the
``x-api-key`` header or, for browsers that cannot set headers, ``?apiKey=`` or (a page of the
dashboard, same origin) its session cookie. A client
that falls a whole buffer behind (in events or in bytes, see the bus) is disconnected
(close code 1013, try again later). Each key may hold ``events.max_connections_per_key``
connections at once; one more is refused with 429 before the handshake completes.
"""

from __future__ import annotations

from collections import Counter

import msgspec
from quart import Blueprint, g, websocket

from ..errors import TooManyRequests
from ..messages import EventFilter
from .handles import Handles

_encoder = msgspec.json.Encoder()
TRY_AGAIN_LATER = 1013


def websocket_key() -> str:
    return websocket.headers.get("x-api-key") or websocket.args.get("apiKey") or ""


def events_blueprint(h: Handles) -> Blueprint:
    bp = Blueprint("events", __name__)
    limit = h.settings.events.max_connections_per_key
    open_per_key: Counter[str] = Counter()

    @bp.websocket("/api/v1/workspace/<workspace_id>/events")
    async def events(workspace_id: str) -> None:
        digest: str = g.key_digest  # of the key (or the dashboard session's key) checked before this handler
        if open_per_key[digest] >= limit:
            raise TooManyRequests(
                f"This API key already has {limit} event streams open", details={"field": "x-api-key"}
            )
        open_per_key[digest] += 1
        try:
            await _stream(h)
        finally:
            open_per_key[digest] -= 1
            if not open_per_key[digest]:
                del open_per_key[digest]

    return bp


async def _stream(h: Handles) -> None:
    types = websocket.args.getlist("type")
    subscription = await h.bus.subscribe(
        EventFilter(
            project=websocket.args.get("project"),
            run_id=websocket.args.get("run"),
            types=frozenset(types) if types else None,
        )
    )
    await websocket.accept()
    async with subscription:
        async for event in subscription:
            await websocket.send(_encoder.encode(event).decode())
    await websocket.close(TRY_AGAIN_LATER, "too slow: events were dropped")
