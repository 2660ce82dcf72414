"""Capping an event's size: small events untouched, big ones cut with markers, never over."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from intunedd.messages import Event
from intunedd.policy.event_size import capped, size_of

_data = st.dictionaries(
    st.text(max_size=8),
    st.recursive(
        st.none() | st.integers() | st.text(max_size=3000),
        lambda inner: st.lists(inner, max_size=80) | st.dictionaries(st.text(max_size=5), inner, max_size=5),
        max_leaves=60,
    ),
    max_size=6,
)


def _event(data: dict[str, Any]) -> Event:
    return Event(type="run.failed", at="2026-01-01T00:00:00.000Z", project="p", run_id="r", data=data)


@given(_data, st.integers(min_value=500, max_value=50_000))
def test_capped_events_fit_and_small_ones_are_untouched(data: dict[str, Any], limit: int) -> None:
    event = _event(data)
    result, size = capped(event, limit)
    assert size == size_of(result) <= limit
    if size_of(event) <= limit:
        assert result is event


def test_a_huge_error_keeps_its_code_and_the_start_of_its_message() -> None:
    event = _event({"api": "a", "error": {"code": "script-execution-exception", "message": "boom " * 2_000_000}})
    result, size = capped(event, 64 * 1024)
    assert size <= 64 * 1024
    assert result.data["error"]["code"] == "script-execution-exception"
    assert result.data["error"]["message"].startswith("boom boom")
    assert "truncated" in result.data["error"]["message"]
    assert result.data["api"] == "a"
