"""Metrics counted from the bus's committed events: what happened, by project, API and outcome.

Durations pair an event with an earlier one (an attempt's start with its end, a delivery's
creation with its success); the earlier halves wait in bounded maps, oldest forgotten first,
so a daemon that misses the second half (a restart, a dropped subscription) never grows.
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import UTC, datetime, timedelta
from typing import Generic, TypeVar

from prometheus_client import CollectorRegistry, Counter, Histogram

from ..clock import parse_iso
from ..messages import Event
from .labels import LabelCap

K = TypeVar("K")
V = TypeVar("V")

PENDING_LIMIT = 10_000  # earlier halves kept per map
NOT_FINAL = frozenset({"created", "started", "requeued"})
ATTEMPT_BUCKETS = (0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
LAG_BUCKETS = (0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 14400.0)
LATENESS_BUCKETS = (0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 3600.0)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
UNKNOWN = "unknown"
# Every event ``observe`` counts: the metrics actor subscribes to these alone.
TYPES = frozenset(
    {f"run.{what}" for what in ("created", "started", "requeued", "completed", "failed", "canceled")}
    | {"attempt.started", "attempt.finished", "delivery.created", "delivery.delivered", "delivery.failed"}
    | {"jobrun.created"}
)


class _Recent(Generic[K, V]):
    """A map that forgets its oldest entries beyond ``limit``."""

    def __init__(self, limit: int) -> None:
        self._items: OrderedDict[K, V] = OrderedDict()
        self._limit = limit

    def put(self, key: K, value: V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self._limit:
            self._items.popitem(last=False)

    def get(self, key: K) -> V | None:
        return self._items.get(key)

    def pop(self, key: K) -> V | None:
        return self._items.pop(key, None)

    def __len__(self) -> int:
        return len(self._items)


def slot_time(slot_key: object) -> datetime | None:
    """The slot a SCHEDULED JobRun fired for, from its key ``<job>:<slot ms since the epoch>``."""
    if not isinstance(slot_key, str):
        return None
    ms = slot_key.rpartition(":")[2]
    if not (ms.isascii() and ms.isdigit()):
        return None
    try:
        return EPOCH + timedelta(milliseconds=int(ms))
    except OverflowError:  # past year 9999: no slot
        return None


def _seconds(start: datetime, end: datetime) -> float:
    return max(0.0, (end - start).total_seconds())


class EventMetrics:
    """Updates its metrics in ``registry`` from each event it is shown."""

    def __init__(self, registry: CollectorRegistry, max_label_sets: int, pending_limit: int = PENDING_LIMIT) -> None:
        self._labels = LabelCap(max_label_sets)
        self._runs: _Recent[str, tuple[str, str]] = _Recent(pending_limit)  # run id -> project, API
        self._attempts: _Recent[tuple[str, int], datetime] = _Recent(pending_limit)
        self._deliveries: _Recent[str, datetime] = _Recent(pending_limit)
        self.runs_created = Counter("intunedd_runs_created", "Runs accepted", ["project", "api"], registry=registry)
        self.runs_finished = Counter(
            "intunedd_runs_finished", "Runs that reached a final status", ["project", "api", "status"],
            registry=registry,
        )  # fmt: skip
        self.attempt_duration = Histogram(
            "intunedd_attempt_duration_seconds", "Attempts' wall time, by how they ended",
            ["project", "api", "outcome"], buckets=ATTEMPT_BUCKETS, registry=registry,
        )  # fmt: skip
        self.deliveries = Counter(
            "intunedd_sink_deliveries", "Sink deliveries that ended, delivered or failed for good", ["kind", "outcome"],
            registry=registry,
        )  # fmt: skip
        self.delivery_lag = Histogram(
            "intunedd_sink_delivery_lag_seconds", "From a run's end to its delivery's success", ["kind"],
            buckets=LAG_BUCKETS, registry=registry,
        )  # fmt: skip
        self.lateness = Histogram(
            "intunedd_scheduler_lateness_seconds", "From a schedule slot to its JobRun's creation (jitter included)",
            buckets=LATENESS_BUCKETS, registry=registry,
        )  # fmt: skip
        self.jobruns_created = Counter(
            "intunedd_jobruns_created", "JobRuns created, by trigger", ["project", "trigger"], registry=registry
        )

    def pending(self) -> int:
        """Earlier halves waiting for their pair (bounded by ``pending_limit`` per kind)."""
        return len(self._runs) + len(self._attempts) + len(self._deliveries)

    def observe(self, event: Event) -> None:
        kind, _, what = event.type.partition(".")
        if kind == "run":
            self._run(event, what)
        elif kind == "attempt":
            self._attempt(event, what)
        elif kind == "delivery":
            self._delivery(event, what)
        elif event.type == "jobrun.created":
            self._job_run(event)

    def _project_api(self, event: Event) -> tuple[str, str]:
        api = event.data.get("api")
        if isinstance(api, str):
            return event.project or UNKNOWN, api
        known = self._runs.get(event.run_id or "")
        return known or (event.project or UNKNOWN, UNKNOWN)

    def _run(self, event: Event, status: str) -> None:
        run_id = event.run_id or ""
        project, api = self._project_api(event)
        if status == "created":
            self.runs_created.labels(*self._labels(project, api)).inc()
        if status in NOT_FINAL:
            self._runs.put(run_id, (project, api))
            return
        self._runs.pop(run_id)
        self.runs_finished.labels(*self._labels(project, api), status).inc()

    def _attempt(self, event: Event, what: str) -> None:
        number = event.data.get("attempt")
        if not isinstance(number, int):
            return
        key = (event.run_id or "", number)
        if what == "started":
            self._attempts.put(key, parse_iso(event.at))
            return
        started = self._attempts.pop(key)
        if what != "finished" or started is None:
            return
        outcome = str(event.data.get("status") or UNKNOWN)
        self.attempt_duration.labels(*self._labels(*self._project_api(event)), outcome).observe(
            _seconds(started, parse_iso(event.at))
        )

    def _delivery(self, event: Event, what: str) -> None:
        delivery_id = event.data.get("delivery_id")
        kind = str(event.data.get("kind") or UNKNOWN)
        if not isinstance(delivery_id, str):
            return
        if what == "created":
            self._deliveries.put(delivery_id, parse_iso(event.at))
        elif what in ("delivered", "failed"):
            self.deliveries.labels(kind, what).inc()
            created = self._deliveries.pop(delivery_id)
            if what == "delivered" and created is not None:
                self.delivery_lag.labels(kind).observe(_seconds(created, parse_iso(event.at)))

    def _job_run(self, event: Event) -> None:
        trigger = str(event.data.get("trigger") or UNKNOWN)
        self.jobruns_created.labels(self._labels(event.project or UNKNOWN)[0], trigger).inc()
        slot = slot_time(event.data.get("slot_key")) if trigger == "SCHEDULED" else None
        if slot is not None:
            self.lateness.observe(_seconds(slot, parse_iso(event.at)))
