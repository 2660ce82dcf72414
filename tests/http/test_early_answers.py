"""How connections end under Quart-Trio and Hypercorn, through ``keep_alive_safe``.

Quart-Trio cancels a request's tasks once its response is sent, which used to cancel Hypercorn in
the middle of ending the response: a connection answered before its request's body arrived (a 401, a
404) was neither closed nor reused, so the client's next request on it waited forever; and an idle
keep-alive connection was never timed out."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import hypercorn.config
import hypercorn.trio
import trio
from quart import Response, request
from quart_trio import QuartTrio

from intunedd.http.asgi import keep_alive_safe

EARLY = b"POST /early HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n"
ECHO = b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
HEALTH = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
IDLE_TIMEOUT_S = 0.5


def _app() -> QuartTrio:
    app = QuartTrio(__name__, static_folder=None)

    @app.post("/early")
    async def early() -> Response:  # answers without reading its body, as a refused request does
        return Response(b"no", status=401)

    @app.post("/echo")
    async def echo() -> Response:
        return Response(await request.get_data())

    @app.get("/health")
    async def health() -> Response:
        return Response(b"ok")

    return app


@asynccontextmanager
async def _served() -> AsyncIterator[int]:
    config = hypercorn.config.Config()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = None
    config.keep_alive_timeout = IDLE_TIMEOUT_S
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(partial(hypercorn.trio.serve, keep_alive_safe(_app()), config))
        yield int(binds[0].rsplit(":", 1)[1])
        nursery.cancel_scope.cancel()


def _read_answer(client: socket.socket, ending: bytes) -> bytes:
    answer = b""
    while not answer.endswith(ending):
        chunk = client.recv(65536)
        assert chunk, f"closed after {answer!r}"
        answer += chunk
    return answer


def _rest_until_closed(client: socket.socket) -> bytes:
    received = b""
    try:
        while chunk := client.recv(65536):
            received += chunk
    except TimeoutError:
        return received + b"<still open>"
    return received


def _after_early_answer(port: int) -> tuple[bytes, bytes]:
    """The early answer, and what follows once its body and a next request are sent. From a thread, as
    a client in another process would, so the server runs on while it waits."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
        client.sendall(EARLY)
        answer = _read_answer(client, b"no")
        client.sendall(b"hello" + HEALTH)
        return answer, _rest_until_closed(client)


def _two_requests_then_idle(port: int) -> tuple[bytes, bytes, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
        client.sendall(ECHO)
        first = _read_answer(client, b"hello")
        client.sendall(HEALTH)
        second = _read_answer(client, b"ok")
        return first, second, _rest_until_closed(client)


async def test_an_answer_before_the_body_arrived_closes_the_connection_and_says_so() -> None:
    async with _served() as port:
        for _ in range(5):  # the race between the body's arrival and the answer's end goes either way
            answer, after = await trio.to_thread.run_sync(_after_early_answer, port)
            assert answer.startswith(b"HTTP/1.1 401")
            assert b"connection: close" in answer.lower()
            assert after == b""


async def test_a_read_body_keeps_the_connection_alive_until_it_idles() -> None:
    async with _served() as port:
        first, second, after = await trio.to_thread.run_sync(_two_requests_then_idle, port)
    assert first.startswith(b"HTTP/1.1 200") and b"connection: close" not in first.lower()
    assert second.startswith(b"HTTP/1.1 200")
    assert after == b""  # closed by the idle timeout, well before the client's own 10 s


async def _answer_headers(http_version: str, headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The headers an app that answers without reading the body sends through ``keep_alive_safe``."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 401, "headers": [(b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})

    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)

    async def receive() -> Any:
        raise AssertionError("the app never reads")

    scope = {"type": "http", "http_version": http_version, "headers": headers}
    await keep_alive_safe(app)(scope, receive, send)  # type: ignore[arg-type]
    return list(sent[0]["headers"])


async def test_only_an_http1_answer_with_a_body_unread_says_connection_close() -> None:
    close = (b"connection", b"close")
    assert close in await _answer_headers("1.1", [(b"content-length", b"5")])
    assert close in await _answer_headers("1.1", [(b"transfer-encoding", b"chunked")])
    assert close not in await _answer_headers("1.1", [(b"content-length", b"0")])  # nothing left unread
    assert close not in await _answer_headers("1.1", [])
    assert close not in await _answer_headers("2", [(b"content-length", b"5")])  # no such header in HTTP/2
