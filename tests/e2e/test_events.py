"""The websocket event stream, seen by a real websocket client."""

from __future__ import annotations

import json

import httpx
import pytest
import trio
from trio_websocket import open_websocket_url

from .conftest import Daemon

pytestmark = pytest.mark.e2e

APIS = {
    "api/echo.py": "async def automation(page, params, **kwargs):\n    return params\n",
    "api/boom.py": "async def automation(page, params, **kwargs):\n    raise ValueError('no')\n",
}


async def _collect_until(ws, final: str) -> list[dict]:  # type: ignore[no-untyped-def]
    events = []
    while True:
        event = json.loads(await ws.get_message())
        events.append(event)
        if event["type"] == final:
            return events


async def test_run_events_in_order_and_filtered(daemon: Daemon) -> None:
    await trio.to_thread.run_sync(daemon.deploy, "events", APIS)
    url = daemon.url.replace("http", "ws") + f"/api/v1/workspace/{daemon.workspace}/events?project=events"
    with trio.fail_after(30):
        async with open_websocket_url(url, extra_headers=[("x-api-key", daemon.key)]) as ws:
            ok = await trio.to_thread.run_sync(daemon.start_run, "events", {"api": "echo", "parameters": {}})
            events = await _collect_until(ws, "run.completed")
            assert [e["type"] for e in events if e["run_id"] == ok] == [
                "run.created",
                "run.started",
                "attempt.started",
                "attempt.finished",
                "run.completed",
            ]
            assert all(e["project"] == "events" for e in events)
            bad = await trio.to_thread.run_sync(
                daemon.start_run, "events", {"api": "boom", "parameters": {}, "retry": {"maximumAttempts": 1}}
            )
            failed = (await _collect_until(ws, "run.failed"))[-1]
            assert failed["run_id"] == bad
            assert failed["data"]["error"]["code"] == "script-execution-exception"


def test_events_need_a_key(daemon: Daemon) -> None:
    handshake = {
        "Connection": "Upgrade",
        "Upgrade": "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    }
    response = httpx.get(f"{daemon.url}/api/v1/workspace/{daemon.workspace}/events", headers=handshake, timeout=10)
    assert response.status_code == 401
    assert response.json()["code"] == "unauthorized"


async def test_events_accept_key_in_query(daemon: Daemon) -> None:
    await trio.to_thread.run_sync(daemon.deploy, "events2", APIS)
    url = (
        daemon.url.replace("http", "ws")
        + f"/api/v1/workspace/{daemon.workspace}/events?project=events2&type=run.completed&apiKey={daemon.key}"
    )
    with trio.fail_after(30):
        async with open_websocket_url(url) as ws:
            run_id = await trio.to_thread.run_sync(daemon.start_run, "events2", {"api": "echo", "parameters": {}})
            event = json.loads(await ws.get_message())
    assert (event["type"], event["run_id"]) == ("run.completed", run_id)


async def test_job_run_progress_and_completion_are_streamed(daemon: Daemon) -> None:
    await trio.to_thread.run_sync(daemon.deploy, "events-jobs", APIS)
    job = {"id": "streamed", "payload": [{"apiName": "echo", "parameters": {"i": i}} for i in range(3)],
           "configuration": {}}  # fmt: skip

    def create_and_trigger() -> str:
        with daemon.client() as c:
            assert c.post(daemon.path("events-jobs", "/jobs"), json=job).status_code == 201
            return str(c.post(daemon.path("events-jobs", "/jobs/streamed/trigger")).json()["jobRunId"])

    url = daemon.url.replace("http", "ws") + f"/api/v1/workspace/{daemon.workspace}/events?project=events-jobs"
    with trio.fail_after(30):
        async with open_websocket_url(url, extra_headers=[("x-api-key", daemon.key)]) as ws:
            job_run_id = await trio.to_thread.run_sync(create_and_trigger)
            events = []
            while not (events and events[-1]["type"] == "jobrun.status"):
                events.append(json.loads(await ws.get_message()))
    kinds = [e["type"] for e in events]
    assert kinds[0] == "job.created"
    assert "jobrun.created" in kinds
    progress = [e["data"]["counts"] for e in events if e["type"] == "jobrun.progress"]
    assert [p["completed"] for p in progress] == [1, 2, 3]
    assert events[-1]["data"] == {**events[-1]["data"], "job_run_id": job_run_id, "status": "COMPLETED"}


async def test_queue_events_follow_an_item(daemon: Daemon) -> None:
    await trio.to_thread.run_sync(daemon.deploy, "qevents", APIS)
    url = daemon.url.replace("http", "ws") + f"/api/v1/workspace/{daemon.workspace}/events?project=qevents"

    def post(path: str, body: dict) -> dict:  # type: ignore[type-arg]
        with daemon.client() as c:
            response = c.post(daemon.path("qevents", path), json=body)
            assert response.status_code == 201, response.text
            return response.json()  # type: ignore[no-any-return]

    with trio.fail_after(30):
        async with open_websocket_url(url, extra_headers=[("x-api-key", daemon.key)]) as ws:
            queue = await trio.to_thread.run_sync(post, "/queues", {"id": "evq", "configuration": {}})
            item = await trio.to_thread.run_sync(post, f"/queues/{queue['id']}/items", {"apiName": "echo"})
            events = await _collect_until(ws, "queueitem.completed")
            assert events[0]["type"] == "queue.created"
            assert events[0]["data"]["queue_id"] == "evq"
            mine = [e["type"] for e in events if e["run_id"] == item["runId"] and e["type"].startswith("queueitem.")]
            assert mine == ["queueitem.queued", "queueitem.started", "queueitem.completed"]
