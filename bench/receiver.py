"""A webhook receiver for the benchmarks: a minimal HTTP/1.1 server on asyncio in a thread of the
benchmark's process, counting POSTs by ``Idempotency-Key`` (duplicates counted apart)."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import psutil

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"


class _ReceiverProtocol(asyncio.Protocol):
    """HTTP/1.1 with keep-alive and Content-Length bodies: all httpx sends for a webhook."""

    def __init__(self, receiver: Receiver) -> None:
        self.receiver = receiver
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.receiver.connections += 1

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            lines = bytes(self.buffer[:end]).split(b"\r\n")
            headers: dict[bytes, bytes] = {}
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                headers[name.strip().lower()] = value.strip()
            if b"chunked" in headers.get(b"transfer-encoding", b""):
                self.receiver.problem("chunked request body (not handled by the receiver)")
                assert self.transport is not None
                self.transport.close()
                return
            length = int(headers.get(b"content-length", b"0"))
            if len(self.buffer) < end + 4 + length:
                return
            body = bytes(self.buffer[end + 4 : end + 4 + length])
            del self.buffer[: end + 4 + length]
            self.receiver.handle(headers, body)
            assert self.transport is not None
            if self.receiver.answer_after_s:
                # Same delay for every request: the answers of one keep-alive connection stay in order.
                asyncio.get_running_loop().call_later(self.receiver.answer_after_s, self._answer)
            else:
                self.transport.write(RESPONSE)

    def _answer(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(RESPONSE)


class Receiver:
    """Counts webhook POSTs by ``Idempotency-Key``; runs its own asyncio loop in a thread.
    ``answer_after_s`` delays every answer (a request is counted on arrival): a slow receiver,
    so that deliveries are in flight when the kill -9 campaign kills the daemon."""

    def __init__(self, answer_after_s: float = 0.0) -> None:
        self.answer_after_s = answer_after_s
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, name="receiver", daemon=True)
        self._ready = threading.Event()
        self._server: asyncio.Server | None = None
        self.port = 0
        self.thread_id = 0
        self.connections = 0
        self.reset()

    def reset(self, expected: set[str] | None = None, keep_bodies: bool = False) -> None:
        self.requests = 0
        self.duplicates = 0
        self.mismatched = 0  # body's apiInfo.runId differs from the key's run id
        self.problems: list[str] = []
        self.arrivals: dict[str, tuple[float, float]] = {}  # key -> (perf_counter, wall clock)
        self.by_run: dict[str, tuple[float, float]] = {}
        self.bodies: dict[str, bytes] = {}
        self.keep_bodies = keep_bodies
        self.expected = expected or set()
        self.expected_seen = 0
        self.all_seen = threading.Event()
        if not self.expected:
            self.all_seen.set()

    def problem(self, text: str) -> None:
        if len(self.problems) < 5:
            self.problems.append(text)

    def handle(self, headers: dict[bytes, bytes], body: bytes) -> None:
        now, wall = time.perf_counter(), time.time()
        self.requests += 1
        raw = headers.get(b"idempotency-key")
        if raw is None:
            self.problem("a request without Idempotency-Key")
            return
        key = raw.decode()
        if key in self.arrivals:
            self.duplicates += 1
            return
        self.arrivals[key] = (now, wall)
        run_id = key.split(":", 1)[0]
        self.by_run[run_id] = (now, wall)
        if self.keep_bodies:
            self.bodies[run_id] = body
        if body[:1] == b"{":  # the load test's bodies are not sink bodies
            try:
                if json.loads(body)["apiInfo"]["runId"] != run_id:
                    self.mismatched += 1
            except (ValueError, KeyError, TypeError):
                self.mismatched += 1
        if key in self.expected:
            self.expected_seen += 1
            if self.expected_seen == len(self.expected):
                self.all_seen.set()

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self.thread_id = threading.get_native_id()
        self._server = self._loop.run_until_complete(
            self._loop.create_server(lambda: _ReceiverProtocol(self), "127.0.0.1", 0, backlog=1024)
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        self._server.close()
        self._loop.run_until_complete(self._server.wait_closed())
        self._loop.close()

    def __enter__(self) -> Receiver:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("receiver did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def cpu_seconds(self) -> float:
        """CPU time of the receiver's thread so far."""
        for t in psutil.Process().threads():
            if t.id == self.thread_id:
                return float(t.user_time + t.system_time)
        return 0.0
