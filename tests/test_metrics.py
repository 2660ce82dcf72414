"""The event metrics and the label cap, fed events as the bus delivers them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from intunedd.clock import iso
from intunedd.config import ConfigError, load_settings
from intunedd.messages import Event
from intunedd.metrics.events import EventMetrics, slot_time
from intunedd.metrics.labels import OTHER, LabelCap

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _event(type_: str, seconds: float, project: str = "shop", run_id: str | None = None, **data: Any) -> Event:
    return Event(type=type_, at=iso(T0 + timedelta(seconds=seconds)), project=project, run_id=run_id, data=data)


def _samples(registry: CollectorRegistry) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = generate_latest(registry).decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _labels(**labels: str) -> frozenset[tuple[str, str]]:
    return frozenset(labels.items())


def test_runs_and_attempts_are_counted_by_project_api_and_outcome() -> None:
    registry = CollectorRegistry()
    metrics = EventMetrics(registry, max_label_sets=10)
    for event in (
        _event("run.created", 0, run_id="r1", api="list"),
        _event("run.started", 1, run_id="r1", api="list"),
        _event("attempt.started", 1, run_id="r1", attempt=1),
        _event("attempt.finished", 4, run_id="r1", attempt=1, status="failed"),
        _event("attempt.started", 5, run_id="r1", attempt=2),
        _event("attempt.finished", 5.5, run_id="r1", attempt=2, status="completed"),
        _event("run.completed", 5.5, run_id="r1", api="list"),
        _event("run.created", 6, run_id="r2", api="list"),
        _event("run.canceled", 7, run_id="r2", api="list"),
    ):
        metrics.observe(event)
    got = _samples(registry)
    assert got["intunedd_runs_created_total", _labels(project="shop", api="list")] == 2
    assert got["intunedd_runs_finished_total", _labels(project="shop", api="list", status="completed")] == 1
    assert got["intunedd_runs_finished_total", _labels(project="shop", api="list", status="canceled")] == 1
    failed = _labels(project="shop", api="list", outcome="failed")
    assert got["intunedd_attempt_duration_seconds_sum", failed] == 3.0
    assert got["intunedd_attempt_duration_seconds_bucket", failed | {("le", "2.5")}] == 0
    assert got["intunedd_attempt_duration_seconds_bucket", failed | {("le", "5.0")}] == 1
    assert got["intunedd_attempt_duration_seconds_sum", _labels(project="shop", api="list", outcome="completed")] == 0.5
    assert metrics.pending() == 0  # every start met its end


def test_delivery_lag_and_outcomes() -> None:
    registry = CollectorRegistry()
    metrics = EventMetrics(registry, max_label_sets=10)
    metrics.observe(_event("delivery.created", 0, delivery_id="d1", kind="webhook"))
    metrics.observe(_event("delivery.delivered", 2, delivery_id="d1", kind="webhook"))
    metrics.observe(_event("delivery.created", 0, delivery_id="d2", kind="webhook"))
    metrics.observe(_event("delivery.failed", 9, delivery_id="d2", kind="webhook"))
    got = _samples(registry)
    assert got["intunedd_sink_deliveries_total", _labels(kind="webhook", outcome="delivered")] == 1
    assert got["intunedd_sink_deliveries_total", _labels(kind="webhook", outcome="failed")] == 1
    assert got["intunedd_sink_delivery_lag_seconds_sum", _labels(kind="webhook")] == 2.0
    assert got["intunedd_sink_delivery_lag_seconds_count", _labels(kind="webhook")] == 1


def test_scheduler_lateness_is_measured_from_the_slot_in_the_key() -> None:
    registry = CollectorRegistry()
    metrics = EventMetrics(registry, max_label_sets=10)
    slot_ms = int((T0 - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds() * 1000)
    metrics.observe(_event("jobrun.created", 1.5, trigger="SCHEDULED", slot_key=f"nightly:{slot_ms}"))
    metrics.observe(_event("jobrun.created", 99, trigger="MANUAL", slot_key=None))
    got = _samples(registry)
    assert got["intunedd_scheduler_lateness_seconds_sum", frozenset()] == 1.5
    assert got["intunedd_scheduler_lateness_seconds_count", frozenset()] == 1
    assert got["intunedd_jobruns_created_total", _labels(project="shop", trigger="MANUAL")] == 1


def test_label_sets_beyond_the_cap_are_folded_into_other() -> None:
    registry = CollectorRegistry()
    metrics = EventMetrics(registry, max_label_sets=2)
    for i in range(5):
        metrics.observe(_event("run.created", 0, project=f"p{i}", run_id=f"r{i}", api="a"))
    got = _samples(registry)
    created = {labels: v for (name, labels), v in got.items() if name == "intunedd_runs_created_total"}
    assert created == {_labels(project="p0", api="a"): 1, _labels(project="p1", api="a"): 1,
                       _labels(project=OTHER, api=OTHER): 3}  # fmt: skip


def test_unpaired_starts_are_forgotten_beyond_the_limit() -> None:
    metrics = EventMetrics(CollectorRegistry(), max_label_sets=10, pending_limit=3)
    for i in range(50):
        metrics.observe(_event("attempt.started", i, run_id=f"r{i}", attempt=1))
        metrics.observe(_event("delivery.created", i, delivery_id=f"d{i}", kind="s3"))
    assert metrics.pending() == 6


@given(st.lists(st.tuples(st.text(max_size=3), st.text(max_size=3))), st.integers(min_value=1, max_value=5))
def test_label_cap_keeps_at_most_limit_label_sets_plus_other(values: list[tuple[str, str]], limit: int) -> None:
    cap = LabelCap(limit)
    out = [cap(*pair) for pair in values]
    assert len(set(out) - {(OTHER, OTHER)}) <= limit
    assert all(o == v or o == (OTHER, OTHER) for o, v in zip(out, values, strict=True))
    assert [cap(*pair) for pair in values] == out  # stable: a label set keeps its fate


@given(st.text())
def test_slot_time_never_fails_on_any_key(key: str) -> None:
    slot_time(key)  # a key it cannot read gives None, never an exception


@given(st.text(max_size=10), st.integers(min_value=0, max_value=253_402_300_799_000))
def test_slot_time_reads_the_milliseconds_after_the_last_colon(job: str, ms: int) -> None:
    assert slot_time(f"{job}:{ms}") == datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)


def test_slot_time_of_a_scheduler_key() -> None:
    assert slot_time("job:a:1000") == datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC)
    assert slot_time(None) is None
    assert slot_time("job:²") is None
    assert slot_time("job:" + "9" * 30) is None


@pytest.mark.parametrize("listen", ["9464", "localhost", "127.0.0.1: 9464", "host:port"])
def test_a_metrics_listen_address_without_a_port_is_refused(tmp_path: Path, listen: str) -> None:
    config = tmp_path / "intunedd.toml"
    config.write_text(f"[metrics]\nlisten = {listen!r}\n")
    with pytest.raises(ConfigError, match="metrics.listen"):
        load_settings(str(config), {})


@pytest.mark.parametrize("listen", ["", "127.0.0.1:9464", "[::1]:9464", "0.0.0.0:0"])
def test_metrics_listen_addresses(tmp_path: Path, listen: str) -> None:
    config = tmp_path / "intunedd.toml"
    config.write_text(f"[metrics]\nlisten = {listen!r}\n")
    assert load_settings(str(config), {}).metrics.listen == listen
