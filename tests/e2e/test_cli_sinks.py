"""``intunedd sinks deliveries …`` as a subprocess against the real daemon and a real webhook receiver."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .conftest import DaemonFactory, Receiver

pytestmark = pytest.mark.e2e

PROJECT = "cli-sinks"
APIS = {"api/echo.py": "async def automation(page, params, **kwargs):\n    return params\n"}
DELIVERY_TIMEOUT_S = 30.0

Cli = Callable[..., subprocess.CompletedProcess[str]]


def _json(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _wait_delivery(cli: Cli, run_id: str, status: str) -> dict[str, Any]:
    """The run's one delivery, polled through the CLI until it is ``status``."""
    deadline = time.monotonic() + DELIVERY_TIMEOUT_S
    while True:
        listed = _json(cli("sinks", "deliveries", "list", "--run", run_id, "--json"))
        items = listed["items"]
        if items and items[0]["status"] == status:
            assert listed["total"] == len(items) == 1, listed
            return dict(items[0])
        assert time.monotonic() < deadline, f"delivery of {run_id} not {status} after {DELIVERY_TIMEOUT_S}s: {items}"
        time.sleep(0.2)


def test_cli_lists_retries_and_shows_a_delivery(
    daemon_factory: DaemonFactory, receiver: Receiver, tmp_path: Path
) -> None:
    daemon = daemon_factory(sinks__first_retry_s=0.2, sinks__max_retry_s=0.4, sinks__webhook_window_s=2.0)
    hook = f"{receiver.url}/toggle"  # 503 until the receiver is opened, then 200

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return daemon.cli(*args, cwd=tmp_path)

    daemon.deploy(PROJECT, APIS)
    run_id = daemon.start_run(
        PROJECT, {"api": "echo", "parameters": {"n": 1}, "sink": {"type": "webhook", "url": hook}}
    )
    assert daemon.wait_for(PROJECT, run_id)["status"] == "completed"

    failed = _wait_delivery(cli, run_id, "failed")  # the 2 s window ran out on 503s
    assert (failed["runId"], failed["projectName"], failed["kind"]) == (run_id, PROJECT, "webhook")
    assert failed["lastStatus"] == 503
    assert failed["attempts"] >= 2
    assert failed["nextAttemptAt"] is None
    delivery_id = failed["id"]

    table = cli("sinks", "deliveries", "list", "--status", "failed")
    assert table.returncode == 0, table.stderr
    row = next(line for line in table.stdout.splitlines() if line.startswith(f"{delivery_id} "))
    assert row.split()[:6] == [delivery_id, run_id, "webhook", "failed", str(failed["attempts"]), "503"]

    receiver.open.set()
    retried = _json(cli("sinks", "deliveries", "retry", delivery_id, "--json"))
    assert retried["id"] == delivery_id
    assert retried["status"] in {"pending", "delivered"}  # the dispatcher may already have sent it

    delivered = _wait_delivery(cli, run_id, "delivered")
    assert (delivered["id"], delivered["lastStatus"]) == (delivery_id, 200)
    assert delivered["deliveredAt"]
    assert receiver.answer_log("/toggle")[-1] == 200

    shown = cli("sinks", "deliveries", "get", delivery_id)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert f"id:             {delivery_id}" in lines
    assert "status:         delivered" in lines
    assert "lastStatus:     200" in lines
    at = lines.index("sink:")
    assert lines[at + 1] == "  {"
    assert f'"url": "{hook}"' in (line.strip().rstrip(",") for line in lines[at + 1 :])
    assert _json(cli("sinks", "deliveries", "get", delivery_id, "--json"))["status"] == "delivered"

    again = cli("sinks", "deliveries", "retry", delivery_id)
    assert again.returncode == 1
    assert again.stderr == f"error: delivery '{delivery_id}' was already delivered (conflict)\n"
    missing = cli("sinks", "deliveries", "get", "no-such-delivery")
    assert missing.returncode == 1
    assert missing.stderr.endswith("(not-found)\n")

    assert daemon.stop() == 0
