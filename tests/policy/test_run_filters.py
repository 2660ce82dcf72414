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


@pytest.mark.parametrize(
    "text",
    [
        "run_duration>" + "9" * 30,
        "run_duration<-" + "9" * 30,
        "created_at>0001-01-01T00:00:00+01:00",
        "ended_at<9999-12-31T23:59:59-01:00",
        "started_at>0001-01-01T00:00:00.000+23:59",
    ],
)
def test_rejects_values_out_of_range(text: str) -> None:
    with pytest.raises(FilterError):
        parse_filter(text)


def test_times_at_the_calendar_ends_keep_four_digit_years() -> None:
    # Compared as text in SQLite: year 999 must read "0999" to sort before "2026".
    assert parse_filter("created_at>0999-01-01").value == "0999-01-01T00:00:00.000Z"
    assert parse_filter("created_at<9999-12-31T23:59:59.999Z").value == "9999-12-31T23:59:59.999Z"


def test_long_runs_of_spaces_parse_quickly() -> None:
    assert parse_filter("api_name=" + " " * 20_000 + "x" + " " * 20_000).value == "x"


_ops = st.sampled_from(["=", "!=", ">", "<", ">=", "<="])
_times = st.datetimes(timezones=st.timezones()).map(lambda moment: moment.isoformat())
_values = st.one_of(
    st.text(max_size=40),
    st.integers().map(str),
    st.from_regex(r"-?[0-9]{1,40}", fullmatch=True),
    _times,
    st.dates().map(str),
)


@given(st.sampled_from(FIELDS), _ops, _values, st.text(alphabet=" \t", max_size=3))
def test_any_field_op_value_is_a_condition_or_a_filter_error(field: str, op: str, value: str, pad: str) -> None:
    try:
        condition = parse_filter(f"{pad}{field}{pad}{op}{pad}{value}{pad}")
    except FilterError:
        return
    assert condition.field == field
    if field == "run_duration":
        assert -(2**63) < condition.value < 2**63
    if field in ("created_at", "started_at", "ended_at"):
        assert len(condition.value) == len("2026-01-01T00:00:00.000Z")
