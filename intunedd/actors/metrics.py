"""The metrics actor: keeps the daemon's Prometheus registry current from the event bus.

It only reads events, so it can fall behind but never hold anyone up; should the bus drop it
for being slow, it subscribes again (counted) and carries on from there. Scrapes read the
registry directly: ``StatisticsCollector`` asks the other actors' in-memory statistics then.
"""

from __future__ import annotations

import logging
from typing import NoReturn

import trio
from prometheus_client import CollectorRegistry, Counter, Gauge

from ..config import MetricsSettings
from ..messages import Event, EventFilter
from ..metrics.events import TYPES, EventMetrics
from ..metrics.statistics import Sources, StatisticsCollector
from .bus import BusHandle

log = logging.getLogger(__name__)
_FILTER = EventFilter(types=TYPES)


def metrics_registry(settings: MetricsSettings, sources: Sources) -> tuple[CollectorRegistry, EventMetrics]:
    """The daemon's own registry (never the global one: two daemons in one process stay apart)."""
    registry = CollectorRegistry(auto_describe=False)
    counted = EventMetrics(registry, settings.max_label_sets)
    registry.register(StatisticsCollector(sources))
    Gauge(
        "intunedd_metrics_pending_pairs", "Start events kept until their end arrives (bounded)", registry=registry
    ).set_function(counted.pending)
    return registry, counted


async def run_metrics(
    bus: BusHandle,
    settings: MetricsSettings,
    sources: Sources,
    *,
    task_status: trio.TaskStatus[CollectorRegistry] = trio.TASK_STATUS_IGNORED,
) -> NoReturn:
    registry, counted = metrics_registry(settings, sources)
    resubscribed = Counter(
        "intunedd_metrics_resubscribes", "Times the bus dropped the metrics actor for being slow", registry=registry
    )
    # Subscribed before reporting started: every event committed afterwards is counted.
    subscription: trio.MemoryReceiveChannel[Event] = await bus.subscribe(_FILTER)
    task_status.started(registry)
    while True:
        async with subscription:
            async for event in subscription:
                try:
                    counted.observe(event)
                except Exception:  # noqa: BLE001 - a metric is never worth stopping the daemon for
                    log.exception("metrics could not count a %s event", event.type)
        resubscribed.inc()
        subscription = await bus.subscribe(_FILTER)
