"""The live terminal rendering: given counts and times, the text."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from click.testing import Result
from hypothesis import given
from hypothesis import strategies as st

from intunedd.cli.live import apply_event
from intunedd.cli.progress import (
    event_line,
    format_seconds,
    job_run_summary,
    progress_bar,
    rate_per_s,
    run_state_line,
)

from .test_cli import BODY, RUNS, FakeDaemon, _start_then, clock, daemon, invoke, reply  # noqa: F401 - fixtures

COUNTS = {"pending": 5, "running": 2, "completed": 2, "failed": 1, "canceled": 0}


@pytest.mark.parametrize(
    ("seconds", "text"), [(0, "0s"), (-3, "0s"), (59.4, "59s"), (65, "1m05s"), (3599, "59m59s"), (3600 + 420, "1h07m")]
)
def test_format_seconds(seconds: float, text: str) -> None:
    assert format_seconds(seconds) == text


def test_bar_shows_done_failed_running_rate_and_time_left() -> None:
    # 3 of 10 finished; at 3 per minute the 7 left take 2m20s.
    assert (
        progress_bar(COUNTS, rate=0.05, width=10) == "[###-------] 3/10 done, 1 failed, 2 running, 3.0/min, 2m20s left"
    )


def test_bar_before_any_rate_is_known() -> None:
    assert progress_bar(COUNTS, rate=None, width=10).endswith("3/10 done, 1 failed, 2 running, -/min, ? left")


def test_bar_of_a_fast_finished_job_run() -> None:
    counts = {"pending": 0, "running": 0, "completed": 8, "failed": 0, "canceled": 2}
    assert progress_bar(counts, rate=2.5, width=4) == "[####] 10/10 done, 0 failed, 0 running, 2.5/s, 0s left"


def test_rate_counts_only_what_finished_while_watching() -> None:
    assert rate_per_s(done_then=4, done_now=10, elapsed_s=3.0) == 2.0
    assert rate_per_s(done_then=4, done_now=4, elapsed_s=3.0) is None
    assert rate_per_s(done_then=0, done_now=3, elapsed_s=0.0) is None


def test_summary_and_run_state_lines() -> None:
    assert (
        job_run_summary("jr1", "COMPLETED", COUNTS, 65)
        == "JobRun jr1 COMPLETED in 1m05s: 2 completed, 1 failed, 0 canceled"
    )
    assert run_state_line("r1", "started", 1.2) == "run r1: started (1s)"


def test_event_line_is_one_line_with_its_data() -> None:
    event = {
        "type": "run.failed",
        "at": "2026-01-01T00:00:00.000Z",
        "project": "shop",
        "run_id": "r1",
        "data": {"api": "list", "error": {"message": "line one\nline two" + "x" * 200}},
    }
    line = event_line(event)
    assert "\n" not in line
    assert line.startswith('2026-01-01T00:00:00.000Z run.failed shop r1 api=list error={"message":"line one\\nline two')
    assert line.endswith("…") and len(line) < 200
    assert event_line({"type": "job.created", "at": "t", "data": {"job_id": "j"}}) == "t job.created - - job_id=j"


@given(
    st.dictionaries(st.sampled_from(["pending", "running", "completed", "failed", "canceled"]), st.integers(0, 10**6)),
    st.one_of(st.none(), st.floats(min_value=1e-6, max_value=1e6)),
    st.integers(1, 60),
)
def test_bar_is_always_well_formed(counts: dict[str, int], rate: float | None, width: int) -> None:
    text = progress_bar(counts, rate, width)
    bar, rest = text[1 : width + 1], text[width + 1 :]
    assert set(bar) <= {"#", "-"} and bar == "".join(sorted(bar, reverse=False, key=lambda c: c != "#"))
    done, total = map(int, re.match(r"\] (\d+)/(\d+) done", rest).groups())  # type: ignore[union-attr]
    assert done <= total and done == sum(counts.get(k, 0) for k in ("completed", "failed", "canceled"))


def test_runs_start_wait_shows_each_state_as_it_changes(invoke: Callable[..., Result], daemon: FakeDaemon) -> None:  # noqa: F811
    _start_then(
        daemon,
        {"runId": "r1", "status": "pending"},
        {"runId": "r1", "status": "pending"},
        {"runId": "r1", "status": "started"},
        {"runId": "r1", "status": "completed", "result": {}},
    )
    result = invoke("runs", "start", json.dumps(BODY), "--wait", "-p", "quotes")
    assert result.exit_code == 0, result.output
    states = [line.split(": ")[1].split(" ")[0] for line in result.stderr.splitlines() if line.startswith("run r1:")]
    assert states == ["pending", "started", "completed"]


def _job_run(status: str, **counts: int) -> dict[str, Any]:
    full = {"pending": 0, "running": 0, "completed": 0, "failed": 0, "canceled": 0, **counts}
    return {"jobRun": {"id": "jr1", "status": status, "counts": full}}


def test_apply_takes_this_job_runs_events_only() -> None:
    counts = {"pending": 2}
    mine = {"type": "jobrun.progress", "data": {"job_run_id": "jr1", "counts": {"completed": 2}}}
    other = {"type": "jobrun.status", "data": {"job_run_id": "jr2", "status": "COMPLETED", "counts": {}}}
    ended = {"type": "jobrun.status", "data": {"job_run_id": "jr1", "status": "COMPLETED", "counts": {"completed": 2}}}
    assert apply_event(None, "jr1", "PENDING", counts) == ("PENDING", counts)
    assert apply_event(other, "jr1", "PENDING", counts) == ("PENDING", counts)
    assert apply_event(mine, "jr1", "PENDING", counts) == ("PENDING", {"completed": 2})
    assert apply_event(ended, "jr1", "PENDING", counts) == ("COMPLETED", {"completed": 2})


@pytest.mark.parametrize(("final", "code"), [("COMPLETED", 0), ("TERMINATED", 1)])
def test_watch_without_an_event_stream_polls_to_the_end(
    invoke: Callable[..., Result],  # noqa: F811
    daemon: FakeDaemon,  # noqa: F811
    final: str,
    code: int,
) -> None:
    path = f"{RUNS}/jobs/j1/runs/jr1"
    daemon.on(
        "GET",
        path,
        reply(200, _job_run("PENDING", pending=3)),
        reply(200, _job_run("PENDING", pending=1, running=1, completed=1)),
        reply(200, _job_run(final, completed=2, failed=1)),
    )
    # Port 1 refuses the websocket: the watch falls back to polling the JobRun.
    result = invoke("--url", "http://127.0.0.1:1", "jobruns", "watch", "jr1", "--job", "j1", "-p", "quotes")
    assert result.exit_code == code, result.output
    lines = result.stderr.splitlines()
    assert [line.split("] ")[1].split(",")[0] for line in lines[:-1]] == ["0/3 done", "1/3 done", "3/3 done"]
    assert lines[-1] == f"JobRun jr1 {final} in 4s: 2 completed, 1 failed, 0 canceled"
    assert final in result.stdout  # the JobRun itself, on stdout
