"""The metrics actor on a real bus: it counts what is published, and survives being dropped."""

from __future__ import annotations

from functools import partial

import trio
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from intunedd.actors.browser_pool import HostStatistics, PoolStatistics
from intunedd.actors.bus import run_bus
from intunedd.actors.metrics import run_metrics
from intunedd.actors.rate_limiter import RateLimiterStatistics
from intunedd.actors.runner import RunnerStatistics
from intunedd.actors.sink_dispatcher import DispatcherStatistics
from intunedd.actors.store import StoreStatistics
from intunedd.config import MetricsSettings
from intunedd.messages import Event, Publish
from intunedd.metrics.statistics import Sources

SOURCES = Sources(
    pool=lambda: PoolStatistics(
        size=2, idle=1, spawned=3, killed=1, recycled=0, last_spawn_error="no chromium",
        hosts=[
            HostStatistics(host="ws://a:3000", capacity=1, live=1, up=True, failures=0),
            HostStatistics(host="ws://b:3000", capacity=1, live=0, up=False, failures=2),
        ],
    ),  # fmt: skip
    runner=lambda: RunnerStatistics(waiting=4, running=1, draining=False),
    sinks=lambda: DispatcherStatistics(in_flight=0, attempts=7),
    store=lambda: StoreStatistics(calls=10, writes=5, inbox_used=0),
    rate_limiter=lambda: RateLimiterStatistics(keys=1, admissions=2, inbox_used=0, waiting=1),
)


def _values(registry: CollectorRegistry) -> dict[str, float]:
    """Unlabelled samples and the total of each labelled one, by sample name."""
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            values[sample.name] = values.get(sample.name, 0) + sample.value
    return values


def _finished(i: int) -> Event:
    return Event(type="run.completed", at="2026-01-01T00:00:00.000Z", project="p", run_id=f"r{i}", data={"api": "a"})


async def _until(registry: CollectorRegistry, name: str, value: float) -> dict[str, float]:
    with trio.fail_after(5):
        while (values := _values(registry)).get(name) != value:
            await trio.sleep(0.01)
    return values


async def test_statistics_are_read_at_scrape_time(nursery: trio.Nursery) -> None:
    bus = await nursery.start(partial(run_bus, buffer=100))
    registry = await nursery.start(partial(run_metrics, bus, MetricsSettings(), SOURCES))
    values = _values(registry)
    assert (values["intunedd_runs_waiting"], values["intunedd_runs_running"]) == (4, 1)
    assert (values["intunedd_pool_spawns_total"], values["intunedd_pool_kills_total"]) == (3, 1)
    assert values["intunedd_pool_spawn_failing"] == 1
    assert values["intunedd_sink_delivery_attempts_total"] == 7
    assert values["intunedd_queues_rate_limited"] == 1
    assert (values["intunedd_browser_host_up"], values["intunedd_browser_host_workers"]) == (1, 1)  # summed over hosts


async def test_a_dropped_subscription_is_taken_again(nursery: trio.Nursery) -> None:
    bus = await nursery.start(partial(run_bus, buffer=2))
    registry = await nursery.start(partial(run_metrics, bus, MetricsSettings(), SOURCES))
    publisher = bus.publisher()
    # Five at once overflow a buffer of two before the actor can read: the bus drops it.
    await publisher.send(Publish(events=[_finished(i) for i in range(5)]))
    await _until(registry, "intunedd_metrics_resubscribes_total", 1)
    before = _values(registry)["intunedd_runs_finished_total"]
    assert 2 <= before < 5  # what reached the actor before the drop; the rest were lost to it
    await publisher.send(Publish(events=[_finished(9)]))
    await _until(registry, "intunedd_runs_finished_total", before + 1)


async def test_an_event_it_cannot_read_is_skipped(nursery: trio.Nursery) -> None:
    bus = await nursery.start(partial(run_bus, buffer=100))
    registry = await nursery.start(partial(run_metrics, bus, MetricsSettings(), SOURCES))
    publisher = bus.publisher()
    broken = Event(type="attempt.started", at="not a time", run_id="r", data={"attempt": 1})
    await publisher.send(Publish(events=[broken, _finished(1)]))
    await _until(registry, "intunedd_runs_finished_total", 1)
