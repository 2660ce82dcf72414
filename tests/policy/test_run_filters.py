from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from intunedd.policy.run_filters import FIELDS, Condition, FilterError, parse_filter


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("status=FAILED", Condition("status", "=", "failed")),
        ("status!=pending", Condition("status", "!=", "pending")),
        ("api_name=products/list", Condition("api_name", "=", "products/list")),
        ("run_duration>5000", Condition("run_duration", ">", 5000)),
        ("run_duration >= 10", Condition("run_duration", ">=", 10)),
        ("started_at>2026-01-01T00:00:00Z", Condition("started_at", ">", "2026-01-01T00:00:00.000Z")),
        ("created_at<=2026-01-01", Condition("created_at", "<=", "2026-01-01T00:00:00.000Z")),
        ("run_type=standalone", Condition("run_type", "=", "STANDALONE")),
    ],
)
def test_parse(text: str, expected: Condition) -> None:
    assert parse_filter(text) == expected


@pytest.mark.parametrize(
    "text",
    ["status", "colour=red", "status=bogus", "api_name>x", "run_duration>soon", "started_at>yesterday", ""],
)
def test_rejects(text: str) -> None:
    with pytest.raises(FilterError):
        parse_filter(text)


@given(st.text(max_size=40))
def test_never_crashes_and_only_whitelisted_fields(text: str) -> None:
    try:
        condition = parse_filter(text)
    except FilterError:
        return
    assert condition.field in FIELDS
    assert condition.op in ("=", "!=", ">", "<", ">=", "<=")
