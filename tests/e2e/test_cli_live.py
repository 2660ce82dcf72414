"""The CLI's live views as a subprocess against the real daemon: ``events``, ``jobs trigger --wait``,
``jobruns watch`` and ``runs start --wait``."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import pytest

from intunedd.harness import INTUNEDD

from .conftest import Daemon

pytestmark = pytest.mark.e2e

PROJECT = "cli-live"
APIS = {
    "api/echo.py": "async def automation(page, params, **kwargs):\n    return params\n",
    "api/boom.py": "async def automation(page, params, **kwargs):\n    raise ValueError('no')\n",
    "api/slow.py": (
        "import asyncio\n\nasync def automation(page, params, **kwargs):\n"
        "    await asyncio.sleep(params.get('s', 1))\n    return params\n"
    ),
}
LINE_TIMEOUT_S = 60.0


@pytest.fixture(scope="module")
def live(daemon: Daemon) -> Daemon:
    daemon.deploy(PROJECT, APIS)
    return daemon


class Lines:
    """A pipe read by a thread, so a test can wait for its next line with a timeout."""

    def __init__(self, pipe: IO[str]) -> None:
        self._lines: queue.Queue[str] = queue.Queue()
        self._reader = threading.Thread(target=self._pump, args=(pipe,), daemon=True)
        self._reader.start()

    def _pump(self, pipe: IO[str]) -> None:
        for line in pipe:
            self._lines.put(line.rstrip("\n"))

    def next(self) -> str:
        return self._lines.get(timeout=LINE_TIMEOUT_S)

    def rest(self) -> list[str]:
        """Every line not read yet, once the pipe has closed."""
        self._reader.join(LINE_TIMEOUT_S)
        assert not self._reader.is_alive(), "the pipe stayed open"
        return [self._lines.get_nowait() for _ in range(self._lines.qsize())]


@contextmanager
def _cli(daemon: Daemon, *args: str) -> Iterator[tuple[subprocess.Popen[str], Lines, Lines]]:
    env = {**os.environ, "INTUNEDD_URL": daemon.url, "INTUNEDD_API_KEY": daemon.key}
    env.pop("INTUNEDD_PROJECT", None)
    process = subprocess.Popen(
        [*INTUNEDD, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=daemon.state_dir
    )
    assert process.stdout is not None and process.stderr is not None
    try:
        yield process, Lines(process.stdout), Lines(process.stderr)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)
        process.stdout.close()
        process.stderr.close()


def _create_job(daemon: Daemon, job_id: str, payload: list[dict[str, object]], concurrency: int = 2) -> None:
    job = {
        "id": job_id,
        "payload": payload,
        "configuration": {"retry": {"maximumAttempts": 1}, "maxConcurrentRequests": concurrency},
    }
    with daemon.client() as c:
        r = c.post(daemon.path(PROJECT, "/jobs"), json=job)
    assert r.status_code in (200, 201), r.text


def _trigger(daemon: Daemon, job_id: str) -> str:
    with daemon.client() as c:
        r = c.post(daemon.path(PROJECT, f"/jobs/{job_id}/trigger"))
    assert r.status_code in (200, 201), r.text
    return str(r.json()["jobRunId"])


@pytest.mark.parametrize("as_json", [False, True], ids=["human", "json"])
def test_events_tails_the_stream_and_stops_cleanly_on_ctrl_c(live: Daemon, as_json: bool) -> None:
    args = ["events", "-p", PROJECT, "--type", "run.completed", "--type", "run.failed", *(["--json"] * as_json)]
    with _cli(live, *args) as (process, out, err):
        assert err.next() == "following events; Ctrl-C to stop"
        ok = live.start_run(PROJECT, {"api": "echo", "parameters": {"n": 1}})
        bad = live.start_run(PROJECT, {"api": "boom", "parameters": {}, "retry": {"maximumAttempts": 1}})
        lines = sorted([out.next(), out.next()], key=lambda line: ok not in line)
        if as_json:
            events = [json.loads(line) for line in lines]
            assert [(e["type"], e["run_id"], e["project"]) for e in events] == [
                ("run.completed", ok, PROJECT),
                ("run.failed", bad, PROJECT),
            ]
        else:
            assert lines[0].split()[1:5] == ["run.completed", PROJECT, ok, "api=echo"]
            assert lines[1].split()[1:5] == ["run.failed", PROJECT, bad, "api=boom"]
            assert "error=" in lines[1]
        process.send_signal(signal.SIGINT)
        assert process.wait(10) == 0
        assert err.rest() == []  # no traceback, no "Aborted!"


def test_jobs_trigger_wait_shows_progress_and_a_summary(live: Daemon, tmp_path: Path) -> None:
    _create_job(
        live,
        "live-batch",
        [{"apiName": "echo", "parameters": {"i": 1}}, {"apiName": "echo", "parameters": {"i": 2}},
         {"apiName": "boom", "parameters": {}}],
    )  # fmt: skip
    result = live.cli("jobs", "trigger", "live-batch", "--wait", "-p", PROJECT, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert any(line.startswith("[") and "3/3 done, 1 failed, 0 running" in line for line in lines), lines
    summary = lines[-1]
    assert summary.startswith("JobRun ") and " COMPLETED in " in summary, lines
    assert summary.endswith(": 2 completed, 1 failed, 0 canceled")
    assert "COMPLETED" in result.stdout and "completed 2" in result.stdout


def test_jobruns_watch_follows_progress_and_exits_1_when_terminated(live: Daemon) -> None:
    _create_job(live, "live-slow", [{"apiName": "slow", "parameters": {"s": 1}} for _ in range(3)], concurrency=1)
    job_run_id = _trigger(live, "live-slow")
    result = live.cli("jobruns", "watch", job_run_id, "--job", "live-slow", "-p", PROJECT, "--json")
    assert result.returncode == 0, result.stderr
    bars = [line for line in result.stderr.splitlines() if line.startswith("[")]
    done = [int(line.split("] ")[1].split("/")[0]) for line in bars]
    assert done == sorted(done) and done[-1] == 3 and len(set(done)) >= 2, bars  # it moved as runs finished
    assert json.loads(result.stdout)["jobRun"]["status"] == "COMPLETED"

    # Without --job it finds the job; terminated, the watch ends with exit status 1.
    job_run_id = _trigger(live, "live-slow")
    with _cli(live, "jobruns", "watch", job_run_id, "-p", PROJECT) as (process, _out, err):
        assert err.next().startswith("[")  # watching
        with live.client() as c:
            r = c.post(live.path(PROJECT, f"/jobs/live-slow/runs/{job_run_id}/terminate"))
        assert r.status_code == 200, r.text
        assert process.wait(LINE_TIMEOUT_S) == 1
        rest = err.rest()
    assert rest[-1].startswith(f"JobRun {job_run_id} TERMINATED in "), rest


def test_runs_start_wait_shows_the_state_as_it_changes(live: Daemon, tmp_path: Path) -> None:
    body = json.dumps({"api": "slow", "parameters": {"s": 1}})
    result = live.cli("runs", "start", body, "--wait", "-p", PROJECT, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    states = [line.split(": ")[1].split(" ")[0] for line in result.stderr.splitlines() if line.startswith("run ")]
    assert states[-2:] == ["started", "completed"], result.stderr
    assert set(states) <= {"pending", "started", "completed"}
    assert "status:" in result.stdout and "completed" in result.stdout
