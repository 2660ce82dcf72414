from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from intunedd.policy.admission import next_project


@pytest.mark.parametrize(
    ("heads", "running", "caps", "total", "capacity", "expected"),
    [
        ({}, {}, {}, 0, 2, None),
        ({"a": 5}, {}, {"a": 1}, 0, 2, "a"),
        ({"a": 5, "b": 3}, {}, {"a": 1, "b": 1}, 0, 2, "b"),
        ({"a": 5, "b": 3}, {"b": 1}, {"a": 1, "b": 1}, 1, 2, "a"),
        ({"a": 5, "b": 3}, {"b": 1}, {"a": 1, "b": 2}, 1, 2, "b"),
        ({"a": 5}, {"a": 1}, {"a": 1}, 1, 4, None),
        ({"a": 5}, {}, {"a": 3}, 2, 2, None),
    ],
)
def test_next_project(heads, running, caps, total, capacity, expected) -> None:  # type: ignore[no-untyped-def]
    assert next_project(heads, running, caps, total_running=total, capacity=capacity) == expected


names = st.sampled_from(["a", "b", "c", "d"])


@given(
    heads=st.dictionaries(names, st.integers(0, 1000)),
    running=st.dictionaries(names, st.integers(0, 4)),
    caps=st.dictionaries(names, st.integers(1, 4)),
    capacity=st.integers(1, 8),
)
def test_choice_is_the_oldest_head_under_its_cap(heads, running, caps, capacity) -> None:  # type: ignore[no-untyped-def]
    total = sum(running.values())
    chosen = next_project(heads, running, caps, total_running=total, capacity=capacity)
    eligible = {n: s for n, s in heads.items() if running.get(n, 0) < caps.get(n, 1)}
    if total >= capacity or not eligible:
        assert chosen is None
    else:
        assert chosen in eligible
        assert heads[chosen] == min(eligible.values())
