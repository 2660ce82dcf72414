"""Concurrency caps, cancel of queued runs, kill -9 recovery and SIGTERM drain."""

from __future__ import annotations

import pytest

from .conftest import Daemon, DaemonFactory

pytestmark = pytest.mark.e2e

SLOW = {
    "api/slow.py": """
        import asyncio

        async def automation(page, params, **kwargs):
            await asyncio.sleep(params.get("seconds", 1))
            return params.get("tag")
    """,
}


def _intervals(daemon: Daemon, project: str, run_ids: list[str]) -> list[tuple[str, str]]:
    spans = []
    for run_id in run_ids:
        attempt = daemon.detail(project, run_id)["attempts"][-1]
        spans.append((attempt["startedAt"], attempt["endedAt"]))
    return sorted(spans)


def test_project_concurrency_cap_is_respected_fifo(daemon: Daemon) -> None:
    daemon.deploy("capped", SLOW, {"replication": {"maxConcurrentRequests": 1}})
    run_ids = [daemon.start_run("capped", {"api": "slow", "parameters": {"seconds": 0.3, "tag": i}}) for i in range(3)]
    for run_id in run_ids:
        assert daemon.wait_for("capped", run_id)["status"] == "completed"
    spans = _intervals(daemon, "capped", run_ids)
    for (_, end), (next_start, _) in zip(spans, spans[1:], strict=False):
        assert end <= next_start, f"attempts overlapped: {spans}"
    started = [daemon.detail("capped", r)["startedAt"] for r in run_ids]
    assert started == sorted(started), "runs of one project start in the order they were accepted"


def test_cancel_pending_run(daemon: Daemon) -> None:
    daemon.deploy("queue1", SLOW, {"replication": {"maxConcurrentRequests": 1}})
    blocker = daemon.start_run("queue1", {"api": "slow", "parameters": {"seconds": 30}})
    queued = daemon.start_run("queue1", {"api": "slow", "parameters": {"seconds": 0}})
    daemon.wait_for("queue1", blocker, {"started"})
    assert daemon.result("queue1", queued)["status"] == "pending"
    with daemon.client() as c:
        assert c.post(daemon.path("queue1", f"/run/{queued}/cancel")).json()["status"] == "canceled"
        c.post(daemon.path("queue1", f"/run/{blocker}/cancel"))
    assert daemon.detail("queue1", queued)["attempts"] == []
    assert daemon.wait_for("queue1", blocker)["status"] == "canceled"


def test_kill9_loses_no_accepted_run(daemon_factory: DaemonFactory) -> None:
    daemon = daemon_factory()
    daemon.deploy("durable", SLOW, {"replication": {"maxConcurrentRequests": 2}})
    long_runs = [daemon.start_run("durable", {"api": "slow", "parameters": {"seconds": 2, "tag": i}}) for i in range(2)]
    queued = [daemon.start_run("durable", {"api": "slow", "parameters": {"seconds": 0, "tag": i}}) for i in range(5)]
    for run_id in long_runs:
        daemon.wait_for("durable", run_id, {"started"})
    daemon.kill9()
    daemon.start()
    for run_id in long_runs:
        result = daemon.wait_for("durable", run_id)
        assert result["status"] == "completed"
        attempts = daemon.detail("durable", run_id)["attempts"]
        assert [a["status"] for a in attempts] == ["interrupted", "completed"]
    for run_id in queued:
        assert daemon.wait_for("durable", run_id)["status"] == "completed"
    daemon.stop()


def test_sigterm_drains_then_requeues(daemon_factory: DaemonFactory) -> None:
    daemon = daemon_factory(runs__drain_timeout_s=1)
    daemon.deploy("drain", SLOW)
    run_id = daemon.start_run("drain", {"api": "slow", "parameters": {"seconds": 30}})
    daemon.wait_for("drain", run_id, {"started"})
    assert daemon.stop() == 0
    daemon.start()
    attempts = daemon.detail("drain", run_id)["attempts"]
    assert attempts[0]["status"] == "interrupted"
    assert daemon.result("drain", run_id)["status"] in ("pending", "started")
    with daemon.client() as c:
        c.post(daemon.path("drain", f"/run/{run_id}/cancel"))
    assert daemon.wait_for("drain", run_id)["status"] == "canceled"
    daemon.stop()
