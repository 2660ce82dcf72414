"""Jobs end to end, through Intuned's official client where it has the call."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from intuned_client import IntunedClient
from intuned_client.exceptions import ValidationError

from .conftest import Daemon

pytestmark = pytest.mark.e2e

APIS = {
    "api/echo.py": """
        async def automation(page, params, **kwargs):
            return params
    """,
    "api/slow.py": """
        import asyncio

        async def automation(page, params, **kwargs):
            await asyncio.sleep(params.get("seconds", 1))
            return params
    """,
    "api/fanout.py": """
        from intuned_runtime import extend_payload

        async def automation(page, params, **kwargs):
            for i in range(params["children"]):
                extend_payload({"api": "echo", "parameters": {"child": i}})
            return "parent"
    """,
    "api/fails.py": """
        async def automation(page, params, **kwargs):
            raise RuntimeError("always")
    """,
}
TERMINAL = {"COMPLETED", "TERMINATED", "CANCELED", "FAILURE", "SUCCESS"}


@pytest.fixture(scope="module")
def project(daemon: Daemon) -> str:
    daemon.deploy("jobs", APIS, {"replication": {"maxConcurrentRequests": 2}})
    return "jobs"


@pytest.fixture
def client(daemon: Daemon) -> Iterator[IntunedClient]:
    with IntunedClient(
        api_key=daemon.key, workspace_id=daemon.workspace, base_url=f"{daemon.url}/api/v1/workspace"
    ) as c:
        yield c


def _job_run(client: IntunedClient, project: str, job_id: str, job_run_id: str) -> Any:
    return client.projects.jobs.runs.get(project_name=project, job_id=job_id, job_run_id=job_run_id).job_run


def _wait_job_run(
    client: IntunedClient,
    project: str,
    job_id: str,
    job_run_id: str,
    statuses: set[str] = TERMINAL,
    timeout: float = 60,
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        job_run = _job_run(client, project, job_id, job_run_id)
        if job_run.status in statuses:
            return job_run
        assert time.monotonic() < deadline, f"JobRun still {job_run.status}"
        time.sleep(0.05)


def test_create_get_list_trigger_and_results(client: IntunedClient, daemon: Daemon, project: str) -> None:
    body = {
        "id": "batch",
        "payload": [{"apiName": "echo", "parameters": {"i": i}} for i in range(5)],
        "configuration": {"retry": {"maximumAttempts": 2}, "maxConcurrentRequests": 2},
    }
    created = client.projects.jobs.create(project_name=project, body=body)
    assert (created.id, created.message) == ("batch", "created")
    job = client.projects.jobs.get(project_name=project, job_id="batch")
    assert job.state == "ACTIVE"
    assert job.next_run_time is None
    assert [item.api_name for item in job.payload] == ["echo"] * 5
    assert [j.id for j in client.projects.jobs.list(project_name=project)] == ["batch"]
    triggered = client.projects.jobs.trigger(project_name=project, job_id="batch")
    job_run = _wait_job_run(client, project, "batch", triggered.job_run_id)
    assert (job_run.status, job_run.type) == ("COMPLETED", "MANUAL")
    assert (job_run.payloads, job_run.successful_runs, job_run.failed_runs) == (5, 5, 0)
    assert job_run.job_configuration_snapshot.configuration.max_concurrent_requests == 2
    got = client.projects.jobs.runs.get(project_name=project, job_id="batch", job_run_id=triggered.job_run_id)
    assert got.results is not None
    lines = [json.loads(line) for line in httpx.get(got.results.signed_url).text.splitlines()]
    assert sorted(line["apiInfo"]["result"]["output"]["i"] for line in lines) == [0, 1, 2, 3, 4]
    assert {line["projectJobRun"]["id"] for line in lines} == {triggered.job_run_id}
    listed = client.projects.jobs.runs.list(project_name=project, job_id="batch")
    assert listed.total_count == 1


def test_item_retries_and_failures_are_counted(client: IntunedClient, project: str) -> None:
    body = {
        "id": "mixed",
        "payload": [
            {"apiName": "echo", "parameters": {}},
            {"apiName": "fails", "parameters": {}, "retry": {"maximumAttempts": 1}},
        ],
        "configuration": {"retry": {"maximumAttempts": 3}},
    }
    client.projects.jobs.create(project_name=project, body=body)
    job_run_id = client.projects.jobs.trigger(project_name=project, job_id="mixed").job_run_id
    job_run = _wait_job_run(client, project, "mixed", job_run_id)
    assert (job_run.payloads, job_run.successful_runs, job_run.failed_runs) == (2, 1, 1)


def test_extend_payload_adds_items_to_the_job_run(client: IntunedClient, daemon: Daemon, project: str) -> None:
    body = {"id": "fan", "payload": [{"apiName": "fanout", "parameters": {"children": 3}}], "configuration": {}}
    client.projects.jobs.create(project_name=project, body=body)
    job_run_id = client.projects.jobs.trigger(project_name=project, job_id="fan").job_run_id
    job_run = _wait_job_run(client, project, "fan", job_run_id)
    assert (job_run.status, job_run.payloads, job_run.successful_runs) == ("COMPLETED", 4, 4)
    with daemon.client() as c:
        runs = c.get(daemon.path(project, "/runs"), params={"filter": f"job_run_id={job_run_id}"}).json()["items"]
    parent = next(r for r in runs if r["apiName"] == "fanout")
    extended = daemon.result(project, parent["id"])["extendedPayloads"]
    assert sorted(e["parameters"]["child"] for e in extended) == [0, 1, 2]
    assert {e["runId"] for e in extended} == {r["id"] for r in runs if r["apiName"] == "echo"}


def test_one_active_job_run_at_a_time(client: IntunedClient, project: str) -> None:
    body = {"id": "single", "payload": [{"apiName": "slow", "parameters": {"seconds": 2}}], "configuration": {}}
    client.projects.jobs.create(project_name=project, body=body)
    first = client.projects.jobs.trigger(project_name=project, job_id="single").job_run_id
    second = client.projects.jobs.trigger(project_name=project, job_id="single").job_run_id
    skipped = _job_run(client, project, "single", second)
    assert skipped.status == "CANCELED"
    assert skipped.reason.type == "another-job-run-active"
    assert _wait_job_run(client, project, "single", first).status == "COMPLETED"
    listed = client.projects.jobs.runs.list(project_name=project, job_id="single")
    counts = {jr.id: (jr.payloads, jr.successful_runs, jr.status) for jr in listed.job_runs}
    assert counts == {first: (1, 1, "COMPLETED"), second: (0, 0, "CANCELED")}


def test_pause_cancels_running_items_and_resume_continues(client: IntunedClient, daemon: Daemon, project: str) -> None:
    body = {
        "id": "pausable",
        "payload": [{"apiName": "slow", "parameters": {"seconds": 1.5, "i": i}} for i in range(3)],
        "configuration": {"maxConcurrentRequests": 1},
    }
    client.projects.jobs.create(project_name=project, body=body)
    job_run_id = client.projects.jobs.trigger(project_name=project, job_id="pausable").job_run_id
    with daemon.client() as c:
        filter_ = {"filter": [f"job_run_id={job_run_id}", "status=started"]}
        deadline = time.monotonic() + 30
        while not c.get(daemon.path(project, "/runs"), params=filter_).json()["items"]:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    assert client.projects.jobs.pause(project_name=project, job_id="pausable").message == "Paused"
    assert _wait_job_run(client, project, "pausable", job_run_id, {"PAUSED"}).status == "PAUSED"
    assert client.projects.jobs.get(project_name=project, job_id="pausable").state == "PAUSED"
    with pytest.raises(ValidationError):  # a paused job cannot be triggered (409)
        client.projects.jobs.trigger(project_name=project, job_id="pausable")
    # The running item is requeued once its worker has stopped it, which may follow the pause.
    with daemon.client() as c:
        deadline = time.monotonic() + 30
        while True:
            params = {"filter": f"job_run_id={job_run_id}"}
            runs = c.get(daemon.path(project, "/runs"), params=params).json()["items"]
            if all(r["status"] == "pending" for r in runs):
                break
            assert time.monotonic() < deadline, runs
            time.sleep(0.05)
    client.projects.jobs.resume(project_name=project, job_id="pausable")
    job_run = _wait_job_run(client, project, "pausable", job_run_id)
    assert (job_run.status, job_run.successful_runs) == ("COMPLETED", 3)
    details = [daemon.detail(project, r["id"]) for r in runs]
    canceled = [a for d in details for a in d["attempts"] if a["status"] == "canceled"]
    assert canceled and all(a["error"]["reason"]["type"] == "job-run-paused" for a in canceled)


def test_terminate_cancels_everything(client: IntunedClient, daemon: Daemon, project: str) -> None:
    body = {
        "id": "doomed",
        "payload": [{"apiName": "slow", "parameters": {"seconds": 30}} for _ in range(4)],
        "configuration": {"maxConcurrentRequests": 1},
    }
    client.projects.jobs.create(project_name=project, body=body)
    job_run_id = client.projects.jobs.trigger(project_name=project, job_id="doomed").job_run_id
    client.projects.jobs.runs.terminate(project_name=project, job_id="doomed", job_run_id=job_run_id)
    job_run = _wait_job_run(client, project, "doomed", job_run_id)
    assert job_run.status == "TERMINATED"
    with daemon.client() as c:
        deadline = time.monotonic() + 30
        while True:
            runs = c.get(daemon.path(project, "/runs"), params={"filter": f"job_run_id={job_run_id}"}).json()["items"]
            if all(r["status"] == "canceled" for r in runs) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    assert [r["status"] for r in runs] == ["canceled"] * 4
    assert {r["reason"]["type"] for r in runs} == {"job-run-terminated"}


def test_update_applies_to_future_job_runs_and_delete(client: IntunedClient, project: str) -> None:
    client.projects.jobs.create(
        project_name=project,
        body={"id": "evolving", "payload": [{"apiName": "echo", "parameters": {"v": 1}}], "configuration": {}},
    )
    first = client.projects.jobs.trigger(project_name=project, job_id="evolving").job_run_id
    _wait_job_run(client, project, "evolving", first)
    updated = client.projects.jobs.update(
        project_name=project,
        job_id="evolving",
        body={"payload": [{"apiName": "echo", "parameters": {"v": 2}}] * 2, "configuration": {}},
    )
    assert updated.message == "updated job successfully"
    second = client.projects.jobs.trigger(project_name=project, job_id="evolving").job_run_id
    assert _wait_job_run(client, project, "evolving", second).payloads == 2
    assert _job_run(client, project, "evolving", first).payloads == 1
    client.projects.jobs.delete(project_name=project, job_id="evolving")
    assert "evolving" not in [j.id for j in client.projects.jobs.list(project_name=project)]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"payload": [], "configuration": {}}, "id"),
        ({"id": "bad id!", "payload": [], "configuration": {}}, "id"),
        ({"id": "x", "configuration": {}}, "payload"),
        ({"id": "x", "payload": [{"apiName": "nope", "parameters": {}}], "configuration": {}}, "payload[0].apiName"),
        ({"id": "x", "payload": [], "configuration": {"maxConcurrentRequests": 0}},
         "configuration.maxConcurrentRequests"),
        ({"id": "x", "payload": [], "configuration": {}, "schedule": {"intervals": [{"every": "soon"}]}},
         "schedule.intervals[0].every"),
        ({"id": "x", "payload": [], "configuration": {}, "schedule": {"calendars": [{"hour": 25}]}},
         "schedule.calendars[0].hour"),
        ({"id": "x", "payload": [], "configuration": {}, "proxy": "nonsense"}, "proxy"),
        ({"id": "x", "payload": [], "configuration": {}, "schedule": {"intervals": [{"every": "10000y"}]}},
         "schedule.intervals[0].every"),
        ({"id": "x", "payload": [], "configuration": {}, "schedule": {"calendars": [{"minute": "1" * 4400}]}},
         "schedule.calendars[0].minute"),
        ({"id": "x", "payload": [], "configuration": {}, "schedule": {"intervals": [{"every": "1h"}], "jitter": "2d"}},
         "schedule.jitter"),
        ({"id": "x", "payload": [], "configuration": {}, "sink": {"type": "webhook"}}, "sink.url"),
        ({"id": "x", "payload": [], "configuration": {},
          "sink": {"type": "webhook", "url": "http://169.254.169.254/latest/meta-data"}}, "sink.url"),
        ({"id": "x", "payload": [], "configuration": {},
          "sink": {"type": "s3", "bucket": "b", "accessKeyId": "a", "secretAccessKey": "s", "region": "us-east-1",
                   "endpoint": "http://[::ffff:10.0.0.1]:9000"}}, "sink.endpoint"),
    ],
)  # fmt: skip
def test_bad_job_bodies_name_the_field(daemon: Daemon, project: str, body: dict[str, Any], field: str) -> None:
    with daemon.client() as c:
        response = c.post(daemon.path(project, "/jobs"), json=body)
    assert response.status_code == 400, response.text
    assert response.json()["details"]["field"] == field


def test_duplicate_and_missing_jobs(daemon: Daemon, project: str) -> None:
    body = {"id": "dup", "payload": [], "configuration": {}}
    with daemon.client() as c:
        assert c.post(daemon.path(project, "/jobs"), json=body).status_code == 201
        assert c.post(daemon.path(project, "/jobs"), json=body).status_code == 409
        assert c.get(daemon.path(project, "/jobs/ghost")).status_code == 404
        assert c.post(daemon.path(project, "/jobs/ghost/trigger")).status_code == 404


def test_max_runs_caps_extended_items(client: IntunedClient, daemon: Daemon, project: str) -> None:
    body = {
        "id": "capped-fan",
        "payload": [{"apiName": "fanout", "parameters": {"children": 5}}],
        "configuration": {"maxRuns": 3},
    }
    client.projects.jobs.create(project_name=project, body=body)
    job_run_id = client.projects.jobs.trigger(project_name=project, job_id="capped-fan").job_run_id
    job_run = _wait_job_run(client, project, "capped-fan", job_run_id)
    assert (job_run.status, job_run.payloads, job_run.successful_runs) == ("COMPLETED", 6, 3)
    with daemon.client() as c:
        filters = {"filter": [f"job_run_id={job_run_id}", "status=canceled"]}
        canceled = c.get(daemon.path(project, "/runs"), params=filters).json()["items"]
    assert len(canceled) == 3
    assert all(r["reason"]["message"].startswith("Max runs exceeded") for r in canceled)


def test_deleting_a_job_terminates_its_active_job_run(client: IntunedClient, project: str) -> None:
    body = {"id": "short-lived", "payload": [{"apiName": "slow", "parameters": {"seconds": 30}}], "configuration": {}}
    client.projects.jobs.create(project_name=project, body=body)
    job_run_id = client.projects.jobs.trigger(project_name=project, job_id="short-lived").job_run_id
    client.projects.jobs.delete(project_name=project, job_id="short-lived")
    with pytest.raises(Exception) as gone:  # noqa: B017 - the job, and so its JobRun path, is gone
        client.projects.jobs.get(project_name=project, job_id="short-lived")
    assert getattr(gone.value, "status_code", None) == 404
    assert job_run_id


def test_items_skip_traces_when_the_job_says_so(client: IntunedClient, daemon: Daemon, project: str) -> None:
    body = {"id": "untraced", "payload": [{"apiName": "echo", "parameters": {}}], "configuration": {"saveTrace": False}}
    client.projects.jobs.create(project_name=project, body=body)
    job_run_id = client.projects.jobs.trigger(project_name=project, job_id="untraced").job_run_id
    assert _wait_job_run(client, project, "untraced", job_run_id).status == "COMPLETED"
    with daemon.client() as c:
        (run,) = c.get(daemon.path(project, "/runs"), params={"filter": f"job_run_id={job_run_id}"}).json()["items"]
    attempt = daemon.detail(project, run["id"])["attempts"][0]
    assert attempt["hasTrace"] is False
    assert attempt["hasLog"] is True
