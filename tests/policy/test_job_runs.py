from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from intunedd.policy.job_runs import completes, lane_cap, on_trigger, runs_allowed


@pytest.mark.parametrize(
    ("fired", "active", "decision"),
    [
        (True, True, "slot-already-fired"),
        (True, False, "slot-already-fired"),
        (False, True, "skip-another-active"),
        (False, False, "start"),
    ],
)
def test_a_slot_fires_once_and_a_job_has_one_active_job_run(fired: bool, active: bool, decision: str) -> None:
    assert on_trigger(slot_already_fired=fired, another_active=active) == decision


@pytest.mark.parametrize(
    ("existing", "new", "max_runs", "allowed"),
    [(0, 5, None, 5), (0, 5, 3, 3), (2, 5, 3, 1), (3, 5, 3, 0), (7, 2, 3, 0), (0, 0, 1, 0)],
)
def test_max_runs_counts_every_run_of_the_job_run(existing: int, new: int, max_runs: int | None, allowed: int) -> None:
    assert runs_allowed(existing, new, max_runs) == allowed


@given(st.integers(0, 10_000), st.integers(0, 10_000), st.none() | st.integers(1, 10_000))
def test_runs_allowed_never_exceeds_the_cap_or_the_request(existing: int, new: int, max_runs: int | None) -> None:
    allowed = runs_allowed(existing, new, max_runs)
    assert 0 <= allowed <= new
    if max_runs is not None:
        assert existing + allowed <= max(existing, max_runs)


@pytest.mark.parametrize(
    ("status", "pending", "running", "done"),
    [
        ("PENDING", 0, 0, True),
        ("RESUMING", 0, 0, True),
        ("PENDING", 1, 0, False),
        ("PENDING", 0, 1, False),
        ("PAUSED", 0, 0, False),
        ("TERMINATED", 0, 0, False),
        ("COMPLETED", 0, 0, False),
    ],
)
def test_a_job_run_completes_when_nothing_waits_or_runs(status: str, pending: int, running: int, done: bool) -> None:
    assert completes(status, {"pending": pending, "running": running, "completed": 3}) is done


@pytest.mark.parametrize(("wanted", "project", "cap"), [(None, 4, 4), (2.0, 4, 2), (0.5, 4, 1), (7.9, 1, 7)])
def test_a_job_run_lane_takes_the_job_cap_else_the_project_cap(wanted: float | None, project: int, cap: int) -> None:
    assert lane_cap(wanted, project) == cap
