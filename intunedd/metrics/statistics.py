"""Metrics read at scrape time from the actors' ``statistics()``: plain in-memory reads that never
wait on an actor, so a scrape, however slow its client, holds nothing up."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ..actors.browser_pool import PoolStatistics
from ..actors.rate_limiter import RateLimiterStatistics
from ..actors.runner import RunnerStatistics
from ..actors.sink_dispatcher import DispatcherStatistics
from ..actors.store import StoreStatistics


@dataclass(frozen=True)
class Sources:
    pool: Callable[[], PoolStatistics]
    runner: Callable[[], RunnerStatistics]
    sinks: Callable[[], DispatcherStatistics]
    store: Callable[[], StoreStatistics]
    rate_limiter: Callable[[], RateLimiterStatistics]


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, value=value)


class StatisticsCollector(Collector):
    def __init__(self, sources: Sources) -> None:
        self._sources = sources

    def collect(self) -> Iterator[Metric]:
        runner = self._sources.runner()
        yield _gauge("intunedd_runs_waiting", "Runs accepted and waiting for a slot or a worker", runner.waiting)
        yield _gauge("intunedd_runs_running", "Runs with an attempt in progress", runner.running)
        yield from self._pool()
        sinks = self._sources.sinks()
        yield _gauge("intunedd_sink_deliveries_in_flight", "Sink deliveries being sent", sinks.in_flight)
        yield _counter("intunedd_sink_delivery_attempts", "Sink delivery attempts made", sinks.attempts)
        store = self._sources.store()
        yield _counter("intunedd_store_calls", "Reads and writes the store actor served", store.calls)
        yield _counter("intunedd_store_writes", "Write transactions the store actor committed", store.writes)
        yield _gauge("intunedd_store_inbox_used", "Requests queued for the store actor", store.inbox_used)
        limiter = self._sources.rate_limiter()
        yield _gauge("intunedd_queues_rate_limited", "Queues whose next item waits for a rate limit", limiter.waiting)
        yield _gauge("intunedd_rate_limit_admissions", "Admissions in the queues' rate windows", limiter.admissions)

    def _pool(self) -> Iterator[Metric]:
        pool = self._sources.pool()
        yield _gauge("intunedd_pool_size", "Workers the pool keeps", pool.size)
        live = sum(env.live for env in pool.envs.values())
        yield _gauge("intunedd_pool_workers", "Workers alive: idle, leased or starting", live)
        yield _gauge("intunedd_pool_idle_workers", "Workers idle in the pool", pool.idle)
        yield _gauge("intunedd_pool_waiting_leases", "Attempts waiting for a worker", pool.waiting)
        yield _counter("intunedd_pool_spawns", "Workers started", pool.spawned)
        yield _counter("intunedd_pool_spawn_failures", "Workers that failed to start", pool.spawn_failures)
        yield _counter("intunedd_pool_kills", "Workers killed (crashed, hung or over a limit)", pool.killed)
        yield _counter("intunedd_pool_recycles", "Workers replaced after their attempts or memory limit", pool.recycled)
        yield _counter("intunedd_pool_retires", "Idle workers closed", pool.retired)
        yield _gauge(
            "intunedd_pool_spawn_failing", "1 while the last attempt to start a worker failed",
            1 if pool.last_spawn_error else 0,
        )  # fmt: skip
        if pool.hosts:
            up = GaugeMetricFamily("intunedd_browser_host_up", "1 while a browser host takes workers", labels=["host"])
            workers = GaugeMetricFamily("intunedd_browser_host_workers", "Workers on a browser host", labels=["host"])
            for host in pool.hosts:
                up.add_metric([host.host], 1 if host.up else 0)
                workers.add_metric([host.host], host.live)
            yield up
            yield workers
