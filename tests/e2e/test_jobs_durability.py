"""Schedules, jobs-as-code and crash recovery of JobRuns, against the real daemon."""

from __future__ import annotations

import time
from typing import Any

import pytest

from .conftest import Daemon, DaemonFactory

pytestmark = pytest.mark.e2e

ECHO = {"api/echo.py": "async def automation(page, params, **kwargs):\n    return params\n"}


def _get(daemon: Daemon, project: str, path: str, **params: Any) -> Any:
    with daemon.client() as c:
        response = c.get(daemon.path(project, path), params=params)
        assert response.status_code == 200, response.text
        return response.json()


def _until(predicate: Any, timeout: float = 60, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
    return value


def test_an_interval_schedule_fires_scheduled_job_runs(daemon: Daemon) -> None:
    daemon.deploy("sched", ECHO)
    job = {
        "id": "every-second",
        "payload": [{"apiName": "echo", "parameters": {}}],
        "configuration": {},
        "schedule": {"intervals": [{"every": "1s"}]},
    }
    with daemon.client() as c:
        assert c.post(daemon.path("sched", "/jobs"), json=job).status_code == 201
    runs = _until(
        lambda: (r := _get(daemon, "sched", "/jobs/every-second/runs", pageSize=50))["totalCount"] >= 3 and r,
        what="three scheduled JobRuns",
    )
    assert {jr["type"] for jr in runs["jobRuns"]} == {"SCHEDULED"}
    got = _get(daemon, "sched", "/jobs/every-second")
    assert got["last_run_time"] is not None
    assert got["next_run_time"] > got["last_run_time"]
    with daemon.client() as c:
        c.post(daemon.path("sched", "/jobs/every-second/pause"))
    assert _get(daemon, "sched", "/jobs/every-second")["next_run_time"] is None


def test_jobs_as_code_are_applied_on_deploy(daemon: Daemon) -> None:
    files = {
        **ECHO,
        "intuned-resources/jobs/nightly.job.jsonc": """
            // applied on every deploy
            {
              "configuration": {"maxConcurrentRequests": 2, "retry": {"maximumAttempts": 1}},
              "payload": [{"apiName": "echo", "parameters": {"from": "code"}},],
              "schedule": {"calendars": [{"hour": 3, "minute": 30}], "timezone": "Europe/Paris"},
            }
        """,
    }
    daemon.deploy("coded", files)
    job = _get(daemon, "coded", "/jobs/nightly")
    assert job["source"] == "CODE"
    assert job["payload"][0]["parameters"] == {"from": "code"}
    assert job["next_run_time"].endswith(("T01:30:00.000Z", "T02:30:00.000Z"))  # 03:30 in Paris
    body = {"payload": [], "configuration": {}}
    with daemon.client() as c:
        assert c.put(daemon.path("coded", "/jobs/nightly"), json=body).status_code == 403
        assert c.delete(daemon.path("coded", "/jobs/nightly")).status_code == 403
        assert c.post(daemon.path("coded", "/jobs/nightly/pause")).status_code == 200
        assert c.post(daemon.path("coded", "/jobs/nightly/resume")).status_code == 200
    daemon.deploy("coded", ECHO)  # the file is gone: so is its job
    with daemon.client() as c:
        assert c.get(daemon.path("coded", "/jobs/nightly")).status_code == 404


def test_kill9_mid_job_run_every_item_ends_exactly_once(daemon_factory: DaemonFactory) -> None:
    daemon = daemon_factory()
    daemon.deploy("big", ECHO, {"replication": {"maxConcurrentRequests": 2}})
    items = 300
    job = {"id": "big", "payload": [{"apiName": "echo", "parameters": {"i": i}} for i in range(items)],
           "configuration": {"maxConcurrentRequests": 2}}  # fmt: skip
    with daemon.client() as c:
        assert c.post(daemon.path("big", "/jobs"), json=job).status_code == 201
        job_run_id = c.post(daemon.path("big", "/jobs/big/trigger")).json()["jobRunId"]
    _until(
        lambda: _get(daemon, "big", f"/jobs/big/runs/{job_run_id}")["jobRun"]["counts"]["completed"] >= 40,
        what="40 completed items",
    )
    daemon.kill9()
    daemon.start()
    job_run = _until(
        lambda: (jr := _get(daemon, "big", f"/jobs/big/runs/{job_run_id}")["jobRun"])["status"] == "COMPLETED" and jr,
        timeout=120,
        what="the JobRun to complete after the restart",
    )
    assert (job_run["payloads"], job_run["successful_runs"], job_run["failed_runs"]) == (items, items, 0)
    runs = _get(daemon, "big", "/runs", limit=500, filter=f"job_run_id={job_run_id}")["items"]
    assert len(runs) == items
    outputs = sorted(_get(daemon, "big", f"/run/{r['id']}/result")["result"]["i"] for r in runs[:20])
    assert len(set(outputs)) == 20
    daemon.stop()
