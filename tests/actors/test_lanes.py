"""Lanes: acceptance order within and across lanes, caps, pause, requeue in place."""

from __future__ import annotations

from intunedd.actors.lanes import Lanes
from intunedd.job_spec import JobRunRecord
from intunedd.messages import RunOptions, RunRecord

OPTIONS = RunOptions(max_attempts=1, request_timeout_s=60, save_trace=False)


def _run(seq: int, project: str = "p", job_run_id: str | None = None) -> RunRecord:
    return RunRecord(
        id=f"r{seq}", seq=seq, project=project, version=1, api="a", parameters={}, options=OPTIONS,
        status="pending", run_type="JOB" if job_run_id else "STANDALONE", created_at="", job_run_id=job_run_id,
    )  # fmt: skip


def _job_run(job_run_id: str, cap: int, status: str = "PENDING") -> JobRunRecord:
    return JobRunRecord(
        id=job_run_id, project="p", job_id="j", type="MANUAL", status=status, snapshot={"x": 1}, max_concurrent=cap,
        created_at="", updated_at="", start_time="",
    )  # fmt: skip


def _drain(lanes: Lanes, capacity: int = 10) -> list[str]:
    started = []
    while (run := lanes.next_run(total_running=len(started), capacity=capacity)) is not None:
        started.append(run.id)
    return started


def test_runs_start_in_acceptance_order_within_the_project_cap() -> None:
    lanes = Lanes(lambda project: {"p": 2, "q": 1}[project])
    for run in (_run(3), _run(1, "q"), _run(2), _run(4, "q")):
        lanes.enqueue(run)
    assert _drain(lanes) == ["r1", "r2", "r3"]
    assert lanes.waiting_count == 1 and lanes.is_waiting("r4")
    lanes.finished(_run(1, "q"))
    assert _drain(lanes) == ["r4"]


def test_a_job_run_lane_has_its_own_cap_pauses_and_closes() -> None:
    lanes = Lanes(lambda project: 5)
    lanes.open_job_run(_job_run("jr", cap=1))
    for seq in (1, 2, 3):
        lanes.enqueue(_run(seq, job_run_id="jr"))
    assert _drain(lanes) == ["r1"]
    lanes.finished(_run(1, job_run_id="jr"))
    lanes.set_paused("jr", True)
    assert _drain(lanes) == []
    lanes.set_paused("jr", False)
    assert _drain(lanes) == ["r2"]
    assert lanes.snapshot("jr") == {"x": 1}
    lanes.close_job_run("jr")
    assert not lanes.has_job_run("jr") and not lanes.is_waiting("r3") and lanes.waiting_count == 0


def test_a_requeued_run_goes_back_in_place_and_removed_runs_never_start() -> None:
    lanes = Lanes(lambda project: 1)
    for seq in (2, 3, 4):
        lanes.enqueue(_run(seq))
    lanes.enqueue(_run(1))
    lanes.remove({"r3"})
    assert not lanes.is_waiting("r3")
    order = []
    for _ in range(3):
        run = lanes.next_run(total_running=0, capacity=1)
        assert run is not None
        order.append(run.id)
        lanes.finished(run)
    assert order == ["r1", "r2", "r4"]


def test_nothing_starts_beyond_the_pool_capacity() -> None:
    lanes = Lanes(lambda project: 10)
    for seq in range(5):
        lanes.enqueue(_run(seq))
    assert _drain(lanes, capacity=3) == ["r0", "r1", "r2"]
