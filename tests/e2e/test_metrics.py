"""``/metrics`` of a real daemon after known runs, parsed by prometheus-client's own parser."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from .conftest import Daemon, DaemonFactory, Receiver, api_error, free_port

pytestmark = pytest.mark.e2e

PROJECT = "metered"
APIS = {
    "api/echo.py": "async def automation(page, params, **kwargs):\n    return params\n",
    "api/boom.py": "async def automation(page, params, **kwargs):\n    raise ValueError('no')\n",
}
TIMEOUT_S = 30.0

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _labels(**labels: str) -> frozenset[tuple[str, str]]:
    return frozenset(labels.items())


def _scrape_until(scrape: Callable[[], Samples], done: Callable[[Samples], bool]) -> Samples:
    """Metrics follow the event bus: poll until they have caught up, bounded."""
    deadline = time.monotonic() + TIMEOUT_S
    while not done(samples := scrape()):
        assert time.monotonic() < deadline, samples
        time.sleep(0.1)
    return samples


def test_metrics_count_known_runs_and_deliveries(daemon_factory: DaemonFactory, receiver: Receiver) -> None:
    open_port = free_port()
    daemon: Daemon = daemon_factory(metrics__listen=f"127.0.0.1:{open_port}")
    daemon.deploy(PROJECT, APIS)
    once = {"retry": {"maximumAttempts": 1}}
    runs = [
        daemon.start_run(PROJECT, {"api": "echo", "parameters": {"i": 1}}),
        daemon.start_run(PROJECT, {"api": "echo", "parameters": {"i": 2}}),
        daemon.start_run(PROJECT, {"api": "boom", "parameters": {}, **once}),
        daemon.start_run(
            PROJECT, {"api": "echo", "parameters": {}, "sink": {"type": "webhook", "url": f"{receiver.url}/ok"}}
        ),
        daemon.start_run(
            PROJECT, {"api": "echo", "parameters": {}, "sink": {"type": "webhook", "url": f"{receiver.url}/reject"}}
        ),
    ]
    statuses = [daemon.wait_for(PROJECT, run_id)["status"] for run_id in runs]
    assert statuses == ["completed", "completed", "failed", "completed", "completed"]

    def scrape() -> Samples:
        with daemon.client() as c:
            response = c.get("/metrics")
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/plain")
        return _parse(response.text)

    delivered = ("intunedd_sink_deliveries_total", _labels(kind="webhook", outcome="delivered"))
    failed_delivery = ("intunedd_sink_deliveries_total", _labels(kind="webhook", outcome="failed"))
    got = _scrape_until(scrape, lambda s: s.get(delivered) == 1 and s.get(failed_delivery) == 1)

    echo, boom = _labels(project=PROJECT, api="echo"), _labels(project=PROJECT, api="boom")
    assert got["intunedd_runs_created_total", echo] == 4
    assert got["intunedd_runs_finished_total", echo | {("status", "completed")}] == 4
    assert got["intunedd_runs_finished_total", boom | {("status", "failed")}] == 1
    assert ("intunedd_runs_finished_total", echo | {("status", "failed")}) not in got
    assert got["intunedd_attempt_duration_seconds_count", echo | {("outcome", "completed")}] == 4
    assert got["intunedd_attempt_duration_seconds_count", boom | {("outcome", "failed")}] == 1
    assert got["intunedd_attempt_duration_seconds_sum", echo | {("outcome", "completed")}] > 0
    assert got["intunedd_sink_delivery_lag_seconds_count", _labels(kind="webhook")] == 1
    assert got["intunedd_sink_delivery_attempts_total", frozenset()] == 2
    assert (got["intunedd_runs_waiting", frozenset()], got["intunedd_runs_running", frozenset()]) == (0, 0)
    assert got["intunedd_pool_size", frozenset()] == 2
    assert got["intunedd_pool_spawns_total", frozenset()] >= 2
    assert got["intunedd_pool_spawn_failing", frozenset()] == 0
    assert {"intunedd_pool_kills_total", "intunedd_pool_recycles_total"} <= {name for name, _ in got}
    assert got["intunedd_queues_rate_limited", frozenset()] == 0

    # The main port wants the key; the open address serves /metrics, and nothing else, without one.
    with httpx.Client(base_url=daemon.url, timeout=10) as anonymous:
        api_error(anonymous.get("/metrics"), 401)
        api_error(anonymous.get("/metrics", headers={"x-api-key": "wrong"}), 401)
    with httpx.Client(base_url=f"http://127.0.0.1:{open_port}", timeout=10) as open_listener:
        response = open_listener.get("/metrics")
        assert response.status_code == 200
        assert _parse(response.text)["intunedd_runs_finished_total", boom | {("status", "failed")}] == 1
        assert open_listener.get("/api/v1/info").status_code == 404
        assert open_listener.get("/health").status_code == 404


def test_scheduler_lateness_is_measured_per_scheduled_job_run(daemon: Daemon) -> None:
    daemon.deploy(PROJECT, APIS)
    job = {
        "id": "tick",
        "payload": [{"apiName": "echo", "parameters": {}}],
        "configuration": {"retry": {"maximumAttempts": 1}},
        "schedule": {"intervals": [{"every": "1s"}]},
    }
    with daemon.client() as c:
        created = c.post(daemon.path(PROJECT, "/jobs"), json=job)
        assert created.status_code == 201, created.text

        def scrape() -> Samples:
            return _parse(c.get("/metrics").text)

        try:
            got = _scrape_until(
                scrape, lambda s: s.get(("intunedd_scheduler_lateness_seconds_count", frozenset()), 0) >= 2
            )
        finally:
            assert c.delete(daemon.path(PROJECT, "/jobs/tick")).status_code in (200, 204)
    fired = got["intunedd_scheduler_lateness_seconds_count", frozenset()]
    # Summed over projects: on the session's shared daemon, past metrics.max_label_sets, this project's
    # label may be folded into "other".
    scheduled = sum(
        value
        for (name, labels), value in got.items()
        if name == "intunedd_jobruns_created_total" and ("trigger", "SCHEDULED") in labels
    )
    assert scheduled >= fired
    assert 0 <= got["intunedd_scheduler_lateness_seconds_sum", frozenset()] / fired < 2.0  # on time, give or take
