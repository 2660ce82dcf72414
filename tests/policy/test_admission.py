from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from intunedd.policy.admission import Lane, next_lane

LANES = {
    "a": Lane("p", 1),
    "b": Lane("q", 2),
    "job": Lane("p", 5),
    "paused": Lane("q", 5, paused=True),
}


@pytest.mark.parametrize(
    ("heads", "lane_running", "project_running", "caps", "total", "capacity", "expected"),
    [
        ({}, {}, {}, {"p": 1, "q": 1}, 0, 2, None),
        ({"a": 5}, {}, {}, {"p": 1}, 0, 2, "a"),
        ({"a": 5, "b": 3}, {}, {}, {"p": 1, "q": 1}, 0, 2, "b"),
        ({"a": 5, "b": 3}, {"b": 1}, {"q": 1}, {"p": 1, "q": 1}, 1, 2, "a"),
        ({"a": 5, "b": 3}, {"b": 1}, {"q": 1}, {"p": 1, "q": 2}, 1, 2, "b"),
        ({"a": 5}, {"a": 1}, {"p": 1}, {"p": 1}, 1, 4, None),
        ({"a": 5}, {}, {}, {"p": 3}, 2, 2, None),
        # the job lane has room but its project is full
        ({"job": 1}, {"a": 1}, {"p": 1}, {"p": 1}, 1, 4, None),
        ({"job": 1}, {"a": 1}, {"p": 1}, {"p": 2}, 1, 4, "job"),
        ({"paused": 1, "b": 9}, {}, {}, {"q": 4}, 0, 4, "b"),
    ],
)
def test_next_lane(heads, lane_running, project_running, caps, total, capacity, expected) -> None:  # type: ignore[no-untyped-def]
    chosen = next_lane(heads, LANES, lane_running, project_running, caps, total_running=total, capacity=capacity)
    assert chosen == expected


keys = st.sampled_from(sorted(LANES))


@given(
    heads=st.dictionaries(keys, st.integers(0, 1000)),
    lane_running=st.dictionaries(keys, st.integers(0, 5)),
    caps=st.fixed_dictionaries({"p": st.integers(1, 6), "q": st.integers(1, 6)}),
    capacity=st.integers(1, 8),
)
def test_choice_is_the_oldest_admissible_head(heads, lane_running, caps, capacity) -> None:  # type: ignore[no-untyped-def]
    project_running = {p: sum(n for k, n in lane_running.items() if LANES[k].project == p) for p in ("p", "q")}
    total = sum(lane_running.values())
    chosen = next_lane(heads, LANES, lane_running, project_running, caps, total_running=total, capacity=capacity)
    admissible = {
        k: s
        for k, s in heads.items()
        if not LANES[k].paused
        and lane_running.get(k, 0) < LANES[k].cap
        and project_running[LANES[k].project] < caps[LANES[k].project]
    }
    if total >= capacity or not admissible:
        assert chosen is None
    else:
        assert chosen is not None
        assert heads[chosen] == min(admissible.values())
