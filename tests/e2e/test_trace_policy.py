"""``runs.trace_policy`` end to end: a retried run under each policy that changes which attempts
keep a trace, on the real daemon with real Chromium."""

from __future__ import annotations

import zipfile
from io import BytesIO
from typing import Any

import httpx
import pytest

from .conftest import Daemon, DaemonFactory

pytestmark = pytest.mark.e2e

APIS = {
    "api/flaky.py": """
        from intuned_runtime import run_info

        async def automation(page, params, **kwargs):
            await page.goto(params["url"])
            if run_info().attempt_number < 2:
                raise RuntimeError("first attempt fails")
            return await page.title()
    """,
}


def _flaky_run(d: Daemon, site: str) -> list[dict[str, Any]]:
    d.deploy("traces", APIS, {"replication": {"maxConcurrentRequests": 1}})
    run_id = d.start_run("traces", {"api": "flaky", "parameters": {"url": f"{site}/hello"}})
    assert d.wait_for("traces", run_id)["result"] == "page hello"
    attempts: list[dict[str, Any]] = d.detail("traces", run_id)["attempts"]
    assert [a["status"] for a in attempts] == ["failed", "completed"]
    return attempts


def _trace_files(attempt: dict[str, Any]) -> list[str]:
    """The names in the attempt's trace zip, fetched by its signed link."""
    r = httpx.get(attempt["traceUrl"], timeout=30)
    assert r.status_code == 200
    return zipfile.ZipFile(BytesIO(r.content)).namelist()


def test_retain_on_failure_keeps_only_the_failed_attempts_trace(daemon_factory: DaemonFactory, site: str) -> None:
    d = daemon_factory(pool__size=1, runs__trace_policy="retain-on-failure")
    failed, completed = _flaky_run(d, site)
    assert failed["hasTrace"] and "trace.trace" in _trace_files(failed)
    assert not completed["hasTrace"] and "traceUrl" not in completed
    # The completed attempt's recording is gone from disk too, not just from the listing.
    attempt_dirs = [p.parent for p in d.state_dir.rglob("log.jsonl")]
    assert sorted((p / "trace.zip").exists() for p in attempt_dirs) == [False, True]


def test_on_first_retry_traces_only_the_retry(daemon_factory: DaemonFactory, site: str) -> None:
    d = daemon_factory(pool__size=1, runs__trace_policy="on-first-retry")
    first, retry = _flaky_run(d, site)
    assert not first["hasTrace"]
    assert retry["hasTrace"] and "trace.trace" in _trace_files(retry)
    # The policy's price: a run that gets no retry has no trace, even when it fails.
    body = {"api": "flaky", "parameters": {"url": f"{site}/hello"}, "retry": {"maximumAttempts": 1}}
    run_id = d.start_run("traces", body)
    assert d.wait_for("traces", run_id)["status"] == "failed"
    assert d.detail("traces", run_id)["attempts"][0]["hasTrace"] is False
