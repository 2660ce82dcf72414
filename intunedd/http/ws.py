"""``/events``: committed run and attempt events as JSON text frames, filtered by query.

``?project=NAME&run=RUN_ID&type=run.completed&type=…``; authenticate with the
``x-api-key`` header or, for browsers that cannot set headers, ``?apiKey=``. A client
that falls a whole buffer behind is disconnected (close code 1013, try again later).
"""

from __future__ import annotations

import msgspec
from quart import Blueprint, websocket

from ..messages import EventFilter
from .handles import Handles

_encoder = msgspec.json.Encoder()
TRY_AGAIN_LATER = 1013


def events_blueprint(h: Handles) -> Blueprint:
    bp = Blueprint("events", __name__)

    @bp.websocket("/api/v1/workspace/<workspace_id>/events")
    async def events(workspace_id: str) -> None:
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

    return bp
