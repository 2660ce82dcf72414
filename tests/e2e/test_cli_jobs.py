"""``intunedd jobs …`` and ``intunedd jobruns …`` as a subprocess against the real daemon."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .conftest import Daemon

pytestmark = pytest.mark.e2e

PROJECT = "cli-jobs"
APIS = {"api/echo.py": "async def automation(page, params, **kwargs):\n    return params\n"}
JOB_RUN_TIMEOUT_S = 60.0

Cli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def cli(daemon: Daemon, tmp_path: Path) -> Cli:
    daemon.deploy(PROJECT, APIS)

    def run(*args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return daemon.cli(*args, "-p", PROJECT, cwd=tmp_path, input=input)

    return run


def _json(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _wait_completed(cli: Cli, job_run_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + JOB_RUN_TIMEOUT_S
    while True:
        body: dict[str, Any] = _json(cli("jobruns", "get", job_run_id, "--job", "cli-batch", "--json"))
        status = body["jobRun"]["status"]
        if status != "RUNNING" and status != "PENDING":
            assert status == "COMPLETED", body
            return body
        assert time.monotonic() < deadline, f"JobRun {job_run_id} still {status} after {JOB_RUN_TIMEOUT_S}s"
        time.sleep(0.2)


def test_cli_drives_a_job_from_creation_to_deletion(cli: Cli, tmp_path: Path) -> None:
    job = {
        "id": "cli-batch",
        "payload": [{"apiName": "echo", "parameters": {"i": i}} for i in range(3)],
        "configuration": {"retry": {"maximumAttempts": 2}, "maxConcurrentRequests": 2},
    }
    (tmp_path / "job.json").write_text(json.dumps(job))

    assert _json(cli("jobs", "create", "@job.json", "--json")) == {"id": "cli-batch", "message": "created"}

    listed = cli("jobs", "list")
    assert listed.returncode == 0, listed.stderr
    row = next(line for line in listed.stdout.splitlines() if line.startswith("cli-batch "))
    assert row.split()[:5] == ["cli-batch", "ACTIVE", "API", "3", "-"]

    got = _json(cli("jobs", "get", "cli-batch", "--json"))
    assert (got["id"], got["state"], got["source"]) == ("cli-batch", "ACTIVE", "API")
    assert [item["parameters"] for item in got["payload"]] == [{"i": 0}, {"i": 1}, {"i": 2}]
    human = cli("jobs", "get", "cli-batch")
    assert "state:" in human.stdout and "ACTIVE" in human.stdout

    triggered = _json(cli("jobs", "trigger", "cli-batch", "--json"))
    job_run_id = triggered["jobRunId"]
    done = _wait_completed(cli, job_run_id)
    assert (done["jobRun"]["type"], done["jobRun"]["payloads"], done["jobRun"]["successful_runs"]) == ("MANUAL", 3, 3)
    assert done["results"]["format"] == "jsonl"

    # Without --job the CLI finds the owning job itself.
    found = cli("jobruns", "get", job_run_id)
    assert found.returncode == 0, found.stderr
    assert "COMPLETED" in found.stdout
    assert "completed 3" in found.stdout

    runs = cli("jobruns", "list", "cli-batch")
    assert runs.returncode == 0, runs.stderr
    row = next(line for line in runs.stdout.splitlines() if line.startswith(job_run_id))
    assert row.split()[1:7] == ["MANUAL", "COMPLETED", "0", "0", "3", "0"]
    assert runs.stdout.splitlines()[-1] == "1-1 of 1"

    saved = cli("jobruns", "results", job_run_id)
    assert saved.returncode == 0, saved.stderr
    lines = (tmp_path / f"jobrun_{job_run_id}.jsonl").read_text().splitlines()
    assert len(lines) == 3
    items = [json.loads(line) for line in lines]
    assert sorted(item["apiInfo"]["result"]["output"]["i"] for item in items) == [0, 1, 2]
    assert {item["projectJobRun"]["id"] for item in items} == {job_run_id}

    assert _json(cli("jobs", "pause", "cli-batch", "--json")) == {"message": "Paused"}
    assert _json(cli("jobs", "get", "cli-batch", "--json"))["state"] == "PAUSED"
    paused_trigger = cli("jobs", "trigger", "cli-batch")
    assert paused_trigger.returncode == 1
    assert paused_trigger.stderr.startswith("error: ")
    assert _json(cli("jobs", "resume", "cli-batch", "--json")) == {"message": "Resumed"}
    assert _json(cli("jobs", "get", "cli-batch", "--json"))["state"] == "ACTIVE"

    job["payload"] = [{"apiName": "echo", "parameters": {"i": 9}}]
    (tmp_path / "job.json").write_text(json.dumps(job))
    updated = _json(cli("jobs", "update", "cli-batch", "@job.json", "--json"))
    assert updated == {"id": "cli-batch", "message": "updated job successfully"}
    assert [item["parameters"] for item in _json(cli("jobs", "get", "cli-batch", "--json"))["payload"]] == [{"i": 9}]

    declined = cli("jobs", "delete", "cli-batch", input="n\n")
    assert declined.returncode == 1
    assert "Aborted!" in declined.stderr
    assert cli("jobs", "get", "cli-batch").returncode == 0

    deleted = cli("jobs", "delete", "cli-batch", "--yes")
    assert deleted.returncode == 0, deleted.stderr
    assert deleted.stdout == "deleted job cli-batch\n"
    missing = cli("jobs", "get", "cli-batch")
    assert missing.returncode == 1
    assert "(not-found)" in missing.stderr
