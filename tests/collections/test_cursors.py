from __future__ import annotations

import base64
from datetime import UTC, datetime

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scrapingpros import models as sp

from intunedd.collections import wire
from intunedd.collections.cursors import (
    JobsQuery,
    Position,
    QueryInvalid,
    decode_cursor,
    encode_cursor,
    next_cursor,
    parse_jobs_query,
    parse_runs_query,
)

KEY = b"k" * 32
POSITION = Position("r1", "completed_at", "asc", "2026-12-02T01:02:03.456Z", "j9")


def errors_of(args: dict[str, str], run_id: str = "r1") -> list[tuple[str | int, str]]:
    with pytest.raises(QueryInvalid) as refused:
        parse_jobs_query(args, run_id, KEY)
    return [(e.loc[-1], e.type) for e in refused.value.errors]


def test_defaults() -> None:
    assert parse_jobs_query({}, "r1", KEY) == JobsQuery()


def test_what_the_sdk_sends_while_draining_a_batch() -> None:
    """Batch._collect_new_terminal_jobs, with a since taken from a job's completed_at."""
    since = datetime(2026, 12, 2, 1, 2, 3, 456000, tzinfo=UTC)
    args = {
        "limit": "100",
        "status_filter": "completed,failed,timeout",
        "order_by": "completed_at",
        "order_dir": "asc",
        "since_completed_at": since.isoformat(timespec="milliseconds"),
        "include_results": "true",
        "cursor": encode_cursor(POSITION, KEY),
    }
    assert parse_jobs_query(args, "r1", KEY) == JobsQuery(
        limit=100,
        after=POSITION,
        statuses=frozenset({"completed", "failed", "timeout"}),
        order_by="completed_at",
        order_dir="asc",
        since_completed_at=since,
        include_results=True,
    )


def test_include_results_lowers_the_limit_to_100() -> None:
    assert parse_jobs_query({"limit": "1000", "include_results": "1"}, "r1", KEY).limit == 100
    assert parse_jobs_query({"limit": "1000", "include_results": "false"}, "r1", KEY).limit == 1000


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({"limit": "1001"}, [("limit", "less_than_equal")]),
        ({"limit": "0"}, [("limit", "greater_than_equal")]),
        ({"limit": "ten"}, [("limit", "int_parsing")]),
        ({"order_by": "url"}, [("order_by", "literal_error")]),
        ({"order_dir": "up"}, [("order_dir", "literal_error")]),
        ({"include_results": "maybe"}, [("include_results", "bool_parsing")]),
        ({"status_filter": "completed,done"}, [("status_filter", "value_error")]),
        ({"since_completed_at": "yesterday"}, [("since_completed_at", "datetime_parsing")]),
        ({"cursor": "not-a-cursor"}, [("cursor", "value_error")]),
        ({"limit": "5000", "order_dir": "x", "cursor": ""},
         [("limit", "less_than_equal"), ("order_dir", "literal_error"), ("cursor", "value_error")]),
    ],
)  # fmt: skip
def test_bad_parameters_are_named(args: dict[str, str], expected: list[tuple[str, str]]) -> None:
    assert errors_of(args) == expected


def test_a_cursor_is_bound_to_its_run_and_ordering() -> None:
    cursor = encode_cursor(POSITION, KEY)
    assert errors_of({"cursor": cursor}) == [("cursor", "value_error")]  # issued for completed_at, asked for id
    assert errors_of({"cursor": cursor, "order_by": "completed_at"}, run_id="r2") == [("cursor", "value_error")]
    ok = parse_jobs_query({"cursor": cursor, "order_by": "completed_at"}, "r1", KEY)
    assert ok.after == POSITION


def test_next_cursor_continues_the_same_query() -> None:
    query = parse_jobs_query({"order_by": "id", "order_dir": "desc"}, "r1", KEY)
    cursor = next_cursor(query, "r1", "j5", None, KEY)
    assert parse_jobs_query({"order_dir": "desc", "cursor": cursor}, "r1", KEY).after == Position(
        "r1", "id", "desc", None, "j5"
    )


@given(st.text(max_size=200))
def test_no_string_is_taken_for_a_cursor(text: str) -> None:
    assert decode_cursor(text, KEY) is None


@given(position=st.builds(Position, st.text(max_size=40), st.sampled_from(["id", "completed_at"]),
                          st.sampled_from(["asc", "desc"]), st.one_of(st.none(), st.text(max_size=30)),
                          st.text(max_size=40)),
       flip=st.integers(0, 10_000))  # fmt: skip
def test_cursors_round_trip_and_any_altered_byte_is_refused(position: Position, flip: int) -> None:
    cursor = encode_cursor(position, KEY)
    assert decode_cursor(cursor, KEY) == position
    assert decode_cursor(cursor, b"another key") is None
    raw = bytearray(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    raw[flip % len(raw)] ^= 0x01
    assert decode_cursor(base64.urlsafe_b64encode(bytes(raw)).decode(), KEY) is None


def test_a_cursor_is_url_safe_and_passes_through_the_sdk_page() -> None:
    cursor = encode_cursor(POSITION, KEY)
    assert set(cursor) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    page = sp.JobExecutionListPublic.model_validate_json(
        msgspec.json.encode(wire.JobPage(items=[], cursor_next=cursor, has_more=True))
    )
    assert page.cursor_next == cursor


def test_an_unencoded_plus_in_since_is_read_as_meant() -> None:
    query = parse_jobs_query({"since_completed_at": "2026-12-02T01:02:03.456 00:00"}, "r1", KEY)
    assert query.since_completed_at == datetime(2026, 12, 2, 1, 2, 3, 456000, tzinfo=UTC)


def test_runs_status_filter() -> None:
    assert parse_runs_query({}) is None
    assert parse_runs_query({"status_filter": "in_progress"}) == "in_progress"
    with pytest.raises(QueryInvalid) as refused:
        parse_runs_query({"status_filter": "running"})
    body = msgspec.json.decode(msgspec.json.encode(refused.value.body()))
    assert body == {"detail": [{"type": "literal_error", "loc": ["query", "status_filter"],
                                "msg": "Input should be 'in_progress' or 'completed' or 'failed' or 'cancelled'",
                                "input": "running"}]}  # fmt: skip


PARAMETERS = ["limit", "cursor", "order_by", "order_dir", "status_filter", "since_completed_at", "include_results"]


@given(st.dictionaries(st.sampled_from(PARAMETERS), st.text(max_size=40)))
def test_any_query_string_is_parsed_or_refused_naming_its_parameters(args: dict[str, str]) -> None:
    try:
        query = parse_jobs_query(args, "r1", KEY)
    except QueryInvalid as refused:
        assert refused.errors and {e.loc[-1] for e in refused.errors} <= set(args)
    else:
        assert 1 <= query.limit <= (100 if query.include_results else 1000)
