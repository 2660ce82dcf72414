"""The ASGI glue between Quart-Trio and Hypercorn: keep-alive connections that end as HTTP/1.1 says."""

from __future__ import annotations

import trio
from hypercorn.typing import (
    ASGIFramework,
    ASGIReceiveCallable,
    ASGIReceiveEvent,
    ASGISendCallable,
    ASGISendEvent,
    HTTPScope,
    Scope,
)

CLOSE = (b"connection", b"close")


def _declares_body(scope: HTTPScope) -> bool:
    for name, value in scope["headers"]:
        lowered = name.lower()
        if lowered == b"transfer-encoding" or (lowered == b"content-length" and value.strip() not in (b"", b"0")):
            return True
    return False


def keep_alive_safe(app: ASGIFramework) -> ASGIFramework:
    """``app``, with two mends to how its connections end.

    Its sends are shielded from its own cancellation. Quart-Trio cancels a request's tasks once its
    response is sent, and Hypercorn ends the response (arming the idle timeout, or closing the
    connection) inside the app's last send: cancelled there, an idle keep-alive connection was never
    timed out, and one to be closed stayed open, answering nothing. A send only writes to the socket,
    which Hypercorn already does shielded, so shielding all of it adds no wait.

    An answer given before the request's body was read (a 401, a 404, an idempotent replay) says
    ``Connection: close``: the unread rest of the body would be taken for the next request, so the
    server must close the connection, and a client told so opens a new one instead of racing the
    close with its next request."""

    async def wrapped(scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        # HTTP/2 has no Connection header (a stream ends alone): only HTTP/1 answers need it.
        body_read = scope["type"] != "http" or scope["http_version"] == "2" or not _declares_body(scope)

        async def tracked_receive() -> ASGIReceiveEvent:
            nonlocal body_read
            message = await receive()
            if message["type"] == "http.request" and not message.get("more_body", False):
                body_read = True
            return message

        async def whole_send(message: ASGISendEvent) -> None:
            if message["type"] == "http.response.start" and not body_read:
                message = {**message, "headers": [*message.get("headers", []), CLOSE]}
            with trio.CancelScope(shield=True):
                await send(message)

        await app(scope, tracked_receive, whole_send)

    return wrapped
