from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from intunedd.policy.retention import (
    UNFINISHED_RUN,
    JobRunFacts,
    Limits,
    Plan,
    RunFacts,
    Stored,
    VersionFacts,
    pass_was_full,
    plan,
)

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)
DAY = timedelta(days=1)
LIMITS = Limits(artifacts_max_age=14 * DAY, runs_max_age=30 * DAY, keep_versions=2, max_per_pass=100)


def ago(days: float) -> datetime:
    return NOW - days * DAY


def run(id: str, status: str = "completed", ended: float | None = 40, **kw: object) -> RunFacts:
    ended_at = None if ended is None else ago(ended)
    return RunFacts(id=id, project="p", version=1, status=status, ended_at=ended_at, **kw)  # type: ignore[arg-type]


def versions(current: int, *numbers: int) -> list[VersionFacts]:
    return [VersionFacts("p", n, n == current) for n in numbers]


@pytest.mark.parametrize(
    ("stored_runs", "job_runs", "expected_runs", "expected_artifacts"),
    [
        # Age: 30 days for runs, 14 for artifacts; the boundary itself is old enough.
        ([run("old"), run("young", ended=20, has_artifacts=True), run("fresh", ended=1, has_artifacts=True)],
         [], ["old"], ["young"]),
        ([run("edge", ended=30)], [], ["edge"], []),
        # Unfinished runs are never touched, whatever their age.
        ([run("p", "pending", ended=None), run("s", "started", ended=None, has_artifacts=True)], [], [], []),
        # A pending delivery keeps its run (the dispatcher still needs it); artifacts may go.
        ([run("d", delivery_pending=True, has_artifacts=True)], [], [], ["d"]),
        # A run of an active JobRun stays; of a JobRun ended long ago it goes; of one ended
        # recently it stays (the JobRun's results are its runs).
        ([run("a", job_run_id="active")], [JobRunFacts("active", "PAUSED", None, 1)], [], []),
        ([run("o", job_run_id="old")], [JobRunFacts("old", "COMPLETED", ago(31), 1)], ["o"], []),
        ([run("r", job_run_id="recent")], [JobRunFacts("recent", "COMPLETED", ago(2), 1)], [], []),
        # A JobRun the pass does not know about might be active: keep its runs.
        ([run("u", job_run_id="unknown")], [], [], []),
        # Oldest first.
        ([run("b", ended=50), run("a", ended=60), run("c", ended=40)], [], ["a", "b", "c"], []),
    ],
)  # fmt: skip
def test_runs_and_artifacts(
    stored_runs: list[RunFacts], job_runs: list[JobRunFacts], expected_runs: list[str], expected_artifacts: list[str]
) -> None:
    chosen = plan(Stored(stored_runs, job_runs, []), NOW, LIMITS)
    assert (chosen.runs, chosen.artifacts) == (expected_runs, expected_artifacts)


def test_a_job_run_goes_with_its_last_run_and_never_before() -> None:
    job_run = JobRunFacts("j", "COMPLETED", ago(31), 2)
    both = [run("a", job_run_id="j"), run("b", job_run_id="j")]
    assert plan(Stored(both, [job_run], []), NOW, LIMITS).job_runs == ["j"]
    one_per_pass = Limits(LIMITS.artifacts_max_age, LIMITS.runs_max_age, 2, max_per_pass=1)
    first = plan(Stored(both, [job_run], []), NOW, one_per_pass)
    assert (first.runs, first.job_runs) == (["a"], [])
    # A JobRun with a run the pass did not load (e.g. still running) stays.
    assert plan(Stored(both, [JobRunFacts("j", "COMPLETED", ago(31), 3)], []), NOW, LIMITS).job_runs == []
    # A JobRun without runs (a skipped firing) goes once old.
    assert plan(Stored([], [JobRunFacts("s", "CANCELED", ago(31), 0)], []), NOW, LIMITS).job_runs == ["s"]


@pytest.mark.parametrize(
    ("stored_versions", "unfinished_on", "expected"),
    [
        (versions(5, 1, 2, 3, 4, 5), [], [("p", 1), ("p", 2), ("p", 3)]),
        (versions(5, 1, 2, 3, 4, 5), [2], [("p", 1), ("p", 3)]),  # a pending run was accepted on 2
        (versions(5, 4, 5), [], []),
        # The current version is kept even when it is not among the newest (it always is today).
        (versions(1, 1, 2, 3), [], []),
        (versions(5, 1, 2, 3, 4, 5) + [VersionFacts("q", 1, False), VersionFacts("q", 2, True)], [], [("p", 1),
         ("p", 2), ("p", 3)]),
    ],
)  # fmt: skip
def test_project_versions(
    stored_versions: list[VersionFacts], unfinished_on: list[int], expected: list[tuple[str, int]]
) -> None:
    unfinished = [RunFacts(f"r{v}", "p", v, "pending", None) for v in unfinished_on]
    assert plan(Stored(unfinished, [], stored_versions), NOW, LIMITS).versions == expected


def test_zero_limits_keep_everything() -> None:
    keep_all = Limits(artifacts_max_age=None, runs_max_age=None, keep_versions=0, max_per_pass=100)
    stored = Stored(
        [run("old", ended=1000, has_artifacts=True)],
        [JobRunFacts("j", "COMPLETED", ago(1000), 0)],
        versions(3, 1, 2, 3),
    )
    assert plan(stored, NOW, keep_all).empty


def test_a_full_pass_asks_for_another_soon() -> None:
    limits = Limits(LIMITS.artifacts_max_age, LIMITS.runs_max_age, 2, max_per_pass=2)
    assert pass_was_full(Plan(runs=["a", "b"], artifacts=[], job_runs=[], versions=[]), limits)
    assert not pass_was_full(Plan(runs=["a"], artifacts=["b"], job_runs=[], versions=[]), limits)


# -- properties -----------------------------------------------------------------------------

STATUSES = st.sampled_from([*UNFINISHED_RUN, "completed", "failed", "canceled"])
JOB_RUN_STATUSES = st.sampled_from(["PENDING", "PAUSING", "PAUSED", "RESUMING", "COMPLETED", "CANCELED", "TERMINATED"])
MOMENTS = st.one_of(st.none(), st.integers(0, 60).map(lambda days: ago(days)))


@st.composite
def stored(draw: st.DrawFn) -> Stored:
    job_run_ids = draw(st.lists(st.sampled_from("jkl"), unique=True))
    runs = draw(
        st.lists(
            st.builds(
                RunFacts,
                id=st.text("abcdef", min_size=1, max_size=4),
                project=st.sampled_from("pq"),
                version=st.integers(1, 6),
                status=STATUSES,
                ended_at=MOMENTS,
                job_run_id=st.one_of(st.none(), st.sampled_from("jklm")),
                has_artifacts=st.booleans(),
                delivery_pending=st.booleans(),
            ),
            max_size=25,
            unique_by=lambda r: r.id,
        )
    )
    job_runs = [JobRunFacts(i, draw(JOB_RUN_STATUSES), draw(MOMENTS), draw(st.integers(0, 6))) for i in job_run_ids]
    versions = [
        VersionFacts(p, v, v == current)
        for p in "pq"
        for current in [draw(st.integers(1, 6))]
        for v in sorted(draw(st.sets(st.integers(1, 6))) | {current})
    ]
    return Stored(runs, job_runs, versions)


LIMIT_STRATEGY = st.builds(
    Limits,
    artifacts_max_age=st.one_of(st.none(), st.integers(0, 40).map(lambda d: d * DAY)),
    runs_max_age=st.one_of(st.none(), st.integers(0, 40).map(lambda d: d * DAY)),
    keep_versions=st.integers(0, 4),
    max_per_pass=st.integers(1, 30),
)


@settings(max_examples=200)
@given(stored(), LIMIT_STRATEGY)
def test_nothing_an_unfinished_run_needs_is_ever_chosen(world: Stored, limits: Limits) -> None:
    chosen = plan(world, NOW, limits)
    unfinished = [r for r in world.runs if r.status in UNFINISHED_RUN]
    unfinished_ids = {r.id for r in unfinished}
    assert not unfinished_ids & (set(chosen.runs) | set(chosen.artifacts))
    # The versions unfinished runs were accepted on, and every current version, stay.
    needed = {(r.project, r.version) for r in unfinished} | {
        (v.project, v.version) for v in world.versions if v.current
    }
    assert not needed & set(chosen.versions)
    # Active JobRuns, JobRuns an unfinished run belongs to, and their runs stay.
    active = {j.id for j in world.job_runs if j.status in ("PENDING", "PAUSING", "PAUSED", "RESUMING")}
    active |= {r.job_run_id for r in unfinished if r.job_run_id}
    assert not active & set(chosen.job_runs)
    by_id = {r.id: r for r in world.runs}
    assert not any(by_id[i].job_run_id in active for i in chosen.runs)
    # A run whose delivery is pending stays.
    assert not any(by_id[i].delivery_pending for i in chosen.runs)


@settings(max_examples=200)
@given(stored(), LIMIT_STRATEGY)
def test_choices_respect_ages_counts_and_the_per_pass_bound(world: Stored, limits: Limits) -> None:
    chosen = plan(world, NOW, limits)
    by_id = {r.id: r for r in world.runs}
    for run_id in chosen.runs:
        ended = by_id[run_id].ended_at
        assert limits.runs_max_age is not None and ended is not None and ended <= NOW - limits.runs_max_age
    for run_id in chosen.artifacts:
        ended = by_id[run_id].ended_at
        assert limits.artifacts_max_age is not None and ended is not None and ended <= NOW - limits.artifacts_max_age
        assert by_id[run_id].has_artifacts and run_id not in chosen.runs
    for kind in (chosen.runs, chosen.artifacts, chosen.job_runs, chosen.versions):
        assert len(kind) <= limits.max_per_pass and len(set(kind)) == len(kind)
    for project in "pq":
        kept = [v for v in world.versions if v.project == project and (project, v.version) not in chosen.versions]
        total = sum(v.project == project for v in world.versions)
        assert limits.keep_versions == 0 and len(kept) == total or len(kept) >= min(limits.keep_versions, total)
    # A JobRun goes only with (or after) all of its runs.
    job_runs = {j.id: j for j in world.job_runs}
    for job_run_id in chosen.job_runs:
        assert sum(by_id[i].job_run_id == job_run_id for i in chosen.runs) >= job_runs[job_run_id].runs
