"""Runs end to end: the real daemon, real Chromium, pages served on 127.0.0.1."""

from __future__ import annotations

import zipfile
from io import BytesIO

import httpx
import pytest
from intuned_client import IntunedClient

from .conftest import Daemon

pytestmark = pytest.mark.e2e

APIS = {
    "api/title.py": """
        async def automation(page, params, **kwargs):
            await page.goto(params["url"])
            print("visited", params["url"])
            return {"title": await page.title()}
    """,
    "api/nested/echo.py": """
        async def automation(page, params, **kwargs):
            return params
    """,
    "api/flaky.py": """
        from intuned_runtime import run_info

        async def automation(page, params, **kwargs):
            if run_info().attempt_number < 2:
                raise RuntimeError("first attempt fails")
            return {"attempt": run_info().attempt_number}
    """,
    "api/fatal.py": """
        from intuned_runtime import NonRetryableError

        async def automation(page, params, **kwargs):
            raise NonRetryableError("do not retry me")
    """,
    "api/boom.py": """
        async def automation(page, params, **kwargs):
            raise ValueError("boom")
    """,
    "api/slow.py": """
        import asyncio

        async def automation(page, params, **kwargs):
            await asyncio.sleep(params.get("seconds", 30))
            return "slept"
    """,
    "api/crash.py": """
        import os

        async def automation(page, params, **kwargs):
            os._exit(3)
    """,
    "api/big.py": """
        async def automation(page, params, **kwargs):
            return "x" * (3 * 1024 * 1024)
    """,
    "api/store.py": """
        from intuned_runtime import persistent_store

        async def automation(page, params, **kwargs):
            before = await persistent_store.get("counter")
            await persistent_store.set("counter", (before or 0) + 1)
            return before
    """,
}


@pytest.fixture(scope="module")
def project(daemon: Daemon) -> str:
    daemon.deploy("e2e", APIS, {"replication": {"maxConcurrentRequests": 2}})
    return "e2e"


def test_success_returns_result_and_keeps_log_and_trace(daemon: Daemon, project: str, site: str) -> None:
    run_id = daemon.start_run(project, {"api": "title", "parameters": {"url": f"{site}/hello"}})
    assert len(run_id) == 21
    result = daemon.wait_for(project, run_id)
    assert result == {"runId": run_id, "status": "completed", "result": {"title": "page hello"}}
    detail = daemon.detail(project, run_id)
    assert [a["status"] for a in detail["attempts"]] == ["completed"]
    with daemon.client() as c:
        log = c.get(daemon.path(project, f"/runs/{run_id}/attempts/1/log"))
        assert log.status_code == 200
        assert f"visited {site}/hello" in log.text
        trace = c.get(daemon.path(project, f"/runs/{run_id}/attempts/1/trace"))
        assert trace.status_code == 200
        assert zipfile.ZipFile(BytesIO(trace.content)).namelist()


def test_nested_api_name(daemon: Daemon, project: str) -> None:
    run_id = daemon.start_run(project, {"api": "nested/echo", "parameters": {"a": [1, 2]}})
    assert daemon.wait_for(project, run_id)["result"] == {"a": [1, 2]}


def test_retry_then_success(daemon: Daemon, project: str) -> None:
    run_id = daemon.start_run(project, {"api": "flaky", "parameters": {}})
    assert daemon.wait_for(project, run_id)["result"] == {"attempt": 2}
    attempts = daemon.detail(project, run_id)["attempts"]
    assert [a["status"] for a in attempts] == ["failed", "completed"]
    assert attempts[0]["error"]["code"] == "script-execution-exception"


def test_exhausted_attempts_fail_with_traceback(daemon: Daemon, project: str) -> None:
    run_id = daemon.start_run(project, {"api": "boom", "parameters": {}, "retry": {"maximumAttempts": 2}})
    result = daemon.wait_for(project, run_id)
    assert result["status"] == "failed"
    error = result["error"]
    assert error["code"] == "script-execution-exception"
    assert error["category"] == "execution"
    assert error["details"]["attempts_count"] == 2
    assert "ValueError: boom" in error["details"]["stack"]
    assert len(daemon.detail(project, run_id)["attempts"]) == 2


def test_non_retryable_error_stops_retries(daemon: Daemon, project: str) -> None:
    run_id = daemon.start_run(project, {"api": "fatal", "parameters": {}, "retry": {"maximumAttempts": 3}})
    result = daemon.wait_for(project, run_id)
    assert result["status"] == "failed"
    assert result["error"]["retirable"] is False
    assert result["error"]["message"] == "do not retry me"
    assert len(daemon.detail(project, run_id)["attempts"]) == 1


def test_timeout_kills_the_worker_and_the_pool_recovers(daemon: Daemon, project: str) -> None:
    with daemon.client() as c:
        killed_before = c.get("/health").json()["pool"]["killed"]
    body = {"api": "slow", "parameters": {"seconds": 60}, "requestTimeout": 1, "retry": {"maximumAttempts": 1}}
    run_id = daemon.start_run(project, body)
    result = daemon.wait_for(project, run_id)
    assert result["status"] == "failed"
    assert result["error"]["code"] == "script-timeout"
    with daemon.client() as c:
        assert c.get("/health").json()["pool"]["killed"] > killed_before
    after = daemon.start_run(project, {"api": "nested/echo", "parameters": {"ok": True}})
    assert daemon.wait_for(project, after)["status"] == "completed"


def test_crash_is_recorded_and_does_not_take_the_daemon_down(daemon: Daemon, project: str) -> None:
    run_id = daemon.start_run(project, {"api": "crash", "parameters": {}, "retry": {"maximumAttempts": 2}})
    result = daemon.wait_for(project, run_id)
    assert result["status"] == "failed"
    assert result["error"]["code"] == "script-process-crashed"
    assert "code 3" in result["error"]["message"]
    assert [a["status"] for a in daemon.detail(project, run_id)["attempts"]] == ["failed", "failed"]
    after = daemon.start_run(project, {"api": "nested/echo", "parameters": {}})
    assert daemon.wait_for(project, after)["status"] == "completed"


def test_result_too_big(daemon: Daemon, project: str) -> None:
    run_id = daemon.start_run(project, {"api": "big", "parameters": {}, "retry": {"maximumAttempts": 1}})
    result = daemon.wait_for(project, run_id)
    assert result["error"]["code"] == "result-too-big-error"
    assert result["error"]["details"]["maxSizeInBytes"] == 2 * 1024 * 1024


def test_cancel_started_run(daemon: Daemon, project: str) -> None:
    run_id = daemon.start_run(project, {"api": "slow", "parameters": {"seconds": 60}})
    daemon.wait_for(project, run_id, {"started"})
    with daemon.client() as c:
        r = c.post(daemon.path(project, f"/run/{run_id}/cancel"))
    assert r.status_code == 200
    assert r.json() == {"runId": run_id, "status": "canceled"}
    result = daemon.result(project, run_id)
    assert result["reason"]["type"] == "cancelled-user-action"
    assert daemon.detail(project, run_id)["attempts"][-1]["status"] == "canceled"


def test_sync_run(daemon: Daemon, project: str, site: str) -> None:
    with daemon.client() as c:
        r = c.post(daemon.path(project, "/run"), json={"api": "title", "parameters": {"url": f"{site}/sync"}})
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "completed"
    assert body["result"] == {"title": "page sync"}
    assert body["statusCode"] == 200


def test_persistent_store_survives_runs(daemon: Daemon, project: str) -> None:
    first = daemon.wait_for(project, daemon.start_run(project, {"api": "store", "parameters": {}}))
    second = daemon.wait_for(project, daemon.start_run(project, {"api": "store", "parameters": {}}))
    assert second["result"] == (first["result"] or 0) + 1


def test_list_runs_filters_and_paginates(daemon: Daemon, project: str) -> None:
    ids = [daemon.start_run(project, {"api": "nested/echo", "parameters": {"i": i}}) for i in range(3)]
    for run_id in ids:
        daemon.wait_for(project, run_id)
    with daemon.client() as c:
        page = c.get(daemon.path(project, "/runs"), params={"limit": 2, "filter": "api_name=nested/echo"}).json()
        assert len(page["items"]) == 2
        assert page["total"] >= 3
        assert all(item["apiName"] == "nested/echo" for item in page["items"])
        params = {"limit": 2, "filter": "api_name=nested/echo", "cursor": page["nextCursor"]}
        after = c.get(daemon.path(project, "/runs"), params=params).json()
        assert after["items"] and {i["id"] for i in after["items"]}.isdisjoint(i["id"] for i in page["items"])
        assert after["items"][0]["createdAt"] <= page["items"][-1]["createdAt"]
        failed = c.get(daemon.path(project, "/runs"), params={"filter": ["status=FAILED"], "limit": 500}).json()
        assert all(item["status"] == "failed" for item in failed["items"])
        bad = c.get(daemon.path(project, "/runs"), params={"filter": "colour=red"})
        assert bad.status_code == 400
        assert bad.json()["details"]["field"] == "filter"


def test_intuned_client_start_and_result(daemon: Daemon, project: str) -> None:
    with IntunedClient(
        api_key=daemon.key, workspace_id=daemon.workspace, base_url=f"{daemon.url}/api/v1/workspace"
    ) as client:
        started = client.projects.runs.start(project_name=project, body={"api": "nested/echo", "parameters": {"x": 1}})
        assert started.status == "pending"
        daemon.wait_for(project, started.run_id)
        result = client.projects.runs.result(project_name=project, run_id=started.run_id)
    assert result.status == "completed"
    assert result.result == {"x": 1}


def test_signed_artifact_urls_and_trace_viewer(daemon: Daemon, project: str, site: str) -> None:
    run_id = daemon.start_run(project, {"api": "title", "parameters": {"url": f"{site}/signed"}})
    daemon.wait_for(project, run_id)
    attempt = daemon.detail(project, run_id)["attempts"][0]
    trace = httpx.get(attempt["traceUrl"])  # no API key: the signature is the credential
    assert trace.status_code == 200
    assert zipfile.ZipFile(BytesIO(trace.content)).namelist()
    assert "visited" in httpx.get(attempt["logUrl"]).text
    tampered = attempt["logUrl"].replace(run_id, "A" * 21)
    assert httpx.get(tampered).status_code == 403
    viewer = httpx.get(attempt["traceViewerUrl"])
    assert viewer.status_code == 200
    assert "<html" in viewer.text.lower()
