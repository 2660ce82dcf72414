"""The sink dispatcher: delivers finished runs to their sinks, at least once.

Its work list is the ``deliveries`` outbox, written in the same transaction as each run's
final state, so nothing accepted can be lost: after a crash the rows are still there. It
wakes when the bus announces a new delivery (or a manual retry), when an attempt ends and
when the earliest retry falls due, keeps up to ``sinks.concurrency`` deliveries in flight, and records each attempt's
outcome as ``policy.delivery`` decides (retry with backoff inside the window, or give up).
A delivery repeated after a crash carries the same idempotency key, so receivers can drop it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import NoReturn

import httpx
import msgspec
import trio

from ..clock import Clock, iso, parse_iso
from ..collections import signing
from ..collections.signing import CALLBACK_KIND
from ..config import SinkSettings
from ..messages import Event, EventFilter
from ..policy.delivery import Next, after_attempt
from ..sinks import s3, webhook
from ..sinks.body import s3_key, sink_body
from ..sinks.config import S3Sink, WebhookSink, parse_sink
from ..sinks.destinations import DestinationRefused
from ..sinks.outcome import short_error
from ..sinks.webhook import IDEMPOTENCY_HEADER
from ..store import delivery_queries, queries
from ..store.delivery_queries import Delivery
from .bus import BusHandle
from .store import StoreHandle

log = logging.getLogger(__name__)
WAKE_TYPES = frozenset({"delivery.created", "delivery.retried"})
UNRECORDED_RETRY_S = 5.0
_encoder = msgspec.json.Encoder()
HttpClientFactory = Callable[[], httpx.AsyncClient]


def default_http_client(settings: SinkSettings) -> HttpClientFactory:
    def make() -> httpx.AsyncClient:
        limits = httpx.Limits(max_connections=settings.concurrency, max_keepalive_connections=settings.concurrency)
        return httpx.AsyncClient(
            timeout=httpx.Timeout(settings.webhook_timeout_s),
            transport=webhook.guarded_transport(limits),
            follow_redirects=False,
        )

    return make


class _InvalidSink(Exception):
    """The stored sink fails today's checks (an older version accepted it): it cannot be delivered."""


class DispatcherStatistics(msgspec.Struct, frozen=True):
    in_flight: int
    attempts: int


class _Dispatcher:
    def __init__(
        self,
        store: StoreHandle,
        settings: SinkSettings,
        clock: Clock,
        workspace_id: str,
        client: httpx.AsyncClient,
        callback_secret: str = "",
    ) -> None:
        self.store = store
        self.callback_secret = callback_secret
        self.settings = settings
        self.clock = clock
        self.workspace_id = workspace_id
        self.client = client
        self.in_flight: set[str] = set()
        self.wake = trio.Event()
        self.attempts = 0

    def statistics(self) -> DispatcherStatistics:
        return DispatcherStatistics(in_flight=len(self.in_flight), attempts=self.attempts)

    async def _send(self, delivery: Delivery) -> tuple[int | None, str | None]:
        if delivery.kind == CALLBACK_KIND:
            return await self._send_callback(delivery)
        run = await self.store.read(queries.get_run, delivery.run_id)
        if run is None:
            return 404, "the run no longer exists"
        body = _encoder.encode(sink_body(run, self.workspace_id))
        try:
            sink = parse_sink(delivery.sink)
        except msgspec.ValidationError as e:
            await self.store.write(queries.quarantine, "delivery", delivery.id, f"invalid sink: {e}")
            raise _InvalidSink(f"invalid sink: {e}") from e
        if isinstance(sink, WebhookSink):
            return await webhook.post(
                self.client,
                sink,
                body,
                idempotency_key=f"{run.id}:{delivery.id}",
                secret=self.settings.signing_secret,
                timestamp=int(self.clock.now().timestamp()),
            )
        assert isinstance(sink, S3Sink)
        started = await self.store.read(delivery_queries.job_run_started, run.job_run_id) if run.job_run_id else None
        key = s3_key(sink.prefix, run, started)
        return await trio.to_thread.run_sync(
            lambda: s3.put(sink, key, body, timeout_s=self.settings.webhook_timeout_s), abandon_on_cancel=True
        )

    async def _send_callback(self, delivery: Delivery) -> tuple[int | None, str | None]:
        """A collection run's run.completed: its body was stored with the row; its signature is this attempt's."""
        body = _encoder.encode(delivery.sink["body"])
        headers = {IDEMPOTENCY_HEADER: delivery.id}
        if self.callback_secret:
            headers |= signing.headers(self.callback_secret, int(self.clock.now().timestamp()), body)
        url = delivery.sink["url"]
        try:
            WebhookSink(url=url)  # as a sink's URL is checked; addresses are checked on connecting
        except (ValueError, msgspec.ValidationError) as e:
            raise _InvalidSink(f"invalid callback_url: {e}") from e
        return await webhook.send(self.client, url, body, headers)

    async def _send_reporting(self, delivery: Delivery) -> tuple[int | None, str | None, bool]:
        """``_send``'s status and error, and whether trying again is pointless."""
        try:
            return *(await self._send(delivery)), False
        except (_InvalidSink, DestinationRefused) as e:
            log.warning("delivery %s of run %s refused: %s", delivery.id, delivery.run_id, short_error(e))
            return None, short_error(e), True
        except Exception as e:  # noqa: BLE001 - one delivery's failure must not end the dispatcher
            log.exception("delivery %s of run %s failed unexpectedly", delivery.id, delivery.run_id)
            return None, short_error(e), False

    async def attempt(self, delivery: Delivery) -> None:
        try:
            status, error, hopeless = await self._send_reporting(delivery)
            self.attempts += 1
            now = self.clock.now()
            first = parse_iso(delivery.first_attempt_at) if delivery.first_attempt_at else now
            webhook_like = delivery.kind in ("webhook", CALLBACK_KIND)
            window = self.settings.webhook_window_s if webhook_like else self.settings.s3_window_s
            decision = Next("give-up") if hopeless else after_attempt(
                status,
                delivery.attempts + 1,
                first,
                now,
                window,
                first_delay_s=self.settings.first_retry_s,
                max_delay_s=self.settings.max_retry_s,
            )
            if decision.verdict != "delivered":
                log.info("delivery %s of run %s: %s (%s)", delivery.id, delivery.run_id, status, decision.verdict)
            try:
                await self.store.write(
                    delivery_queries.record_attempt,
                    delivery,
                    decision.verdict,
                    status,
                    error,
                    iso(first),
                    iso(decision.at) if decision.at else None,
                )
            except Exception as e:  # noqa: BLE001 - e.g. the disk is full: the delivery stays due
                # Unrecorded, the delivery is due again (at least once); holding it in flight a
                # while keeps a full disk from turning into a busy loop of resends.
                log.warning("delivery %s of run %s not recorded (%s); it will be sent again", delivery.id,
                            delivery.run_id, short_error(e))  # fmt: skip
                await trio.sleep(UNRECORDED_RETRY_S)
        finally:
            self.in_flight.discard(delivery.id)
            self.wake.set()

    async def next_wake_deadline(self) -> float:
        if len(self.in_flight) >= self.settings.concurrency:
            return float("inf")  # full: the next finished attempt wakes us
        due = await self.store.read(delivery_queries.next_due_at, frozenset(self.in_flight))
        if due is None:
            return float("inf")
        return trio.current_time() + max(0.0, (parse_iso(due) - self.clock.now()).total_seconds())


async def _watch_bus(bus: BusHandle, events: trio.MemoryReceiveChannel[Event], dispatcher: _Dispatcher) -> NoReturn:
    while True:
        async with events:
            async for _ in events:
                dispatcher.wake.set()
        # The bus dropped us for falling behind; the outbox scan covers what we missed.
        dispatcher.wake.set()
        events = await bus.subscribe(EventFilter(types=WAKE_TYPES))


async def _start_due(dispatcher: _Dispatcher, nursery: trio.Nursery) -> None:
    room = dispatcher.settings.concurrency - len(dispatcher.in_flight)
    if room <= 0:
        return
    busy = frozenset(dispatcher.in_flight)
    due = await dispatcher.store.read(delivery_queries.due_deliveries, iso(dispatcher.clock.now()), room, busy)
    for delivery in due:
        dispatcher.in_flight.add(delivery.id)
        nursery.start_soon(dispatcher.attempt, delivery)


async def run_sink_dispatcher(
    store: StoreHandle,
    bus: BusHandle,
    settings: SinkSettings,
    workspace_id: str,
    *,
    clock: Clock,
    http_client: HttpClientFactory | None = None,
    callback_secret: str = "",
    task_status: trio.TaskStatus[_Dispatcher] = trio.TASK_STATUS_IGNORED,
) -> NoReturn:
    """``callback_secret`` signs collection runs' callbacks (``collections.signing``)."""
    async with (http_client or default_http_client(settings))() as client, trio.open_nursery() as nursery:
        dispatcher = _Dispatcher(store, settings, clock, workspace_id, client, callback_secret)
        # Subscribed before the first outbox scan, so no delivery falls between the two.
        events = await bus.subscribe(EventFilter(types=WAKE_TYPES))
        nursery.start_soon(_watch_bus, bus, events, dispatcher)
        task_status.started(dispatcher)
        while True:
            dispatcher.wake = trio.Event()
            try:
                await _start_due(dispatcher, nursery)
                deadline = await dispatcher.next_wake_deadline()
            except Exception:  # noqa: BLE001 - an unreadable outbox row must not end the dispatcher
                log.exception("scanning the delivery outbox failed; trying again in %gs", UNRECORDED_RETRY_S)
                deadline = trio.current_time() + UNRECORDED_RETRY_S
            with trio.move_on_at(deadline):
                await dispatcher.wake.wait()
    raise AssertionError("unreachable")
