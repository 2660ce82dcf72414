from __future__ import annotations

from typing import Any

import msgspec
from hypothesis import given
from hypothesis import strategies as st
from scrapingpros import models as sp

from intunedd.collections import wire
from intunedd.collections.dedup import decode_all, dedup, screen, settle
from intunedd.collections.url_guard import Refusal
from intunedd.sinks.destinations import parse_networks

LOOPBACK = parse_networks(["127.0.0.1/32"])


@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 3))))
def test_dedup_keeps_the_first_of_each_key_in_order(items: list[tuple[int, int]]) -> None:
    kept, repeats = dedup(items, key=lambda item: item[0])
    assert [k for k, _ in kept] == list(dict.fromkeys(k for k, _ in items))
    assert sorted(kept + repeats) == sorted(items)
    assert all(item == next(i for i in items if i[0] == item[0]) for item in kept)


def test_decoding_sorts_items_and_names_each_failing_field() -> None:
    screened = decode_all(
        [
            {"url": "www.example.com", "custom_id": "a"},
            "https://not-an-object.example",
            {"browser": True},
            {"url": "https://e.example/x", "custom_id": "x" * 256},
            {"url": "https://e.example/y", "screenshot": True},
            {"url": "https://e.example/z", "browser": True, "actions": [{"type": "wait-for-timeout"}]},
        ]
    )
    assert [(i, r.url, r.custom_id) for i, r in screened.accepted] == [(0, "https://www.example.com", "a")]
    invalid = [(i.index, i.url, [(e.field, e.error_type) for e in i.errors]) for i in screened.invalid_items]
    assert invalid == [
        (1, None, [("<root>", "not_a_dict")]),
        (2, None, [("url", "missing")]),
        (3, "https://e.example/x", [("custom_id", "string_too_long")]),
        (4, "https://e.example/y", [("screenshot", "param_invalid")]),
        (5, "https://e.example/z", [("actions.0.time", "missing")]),
    ]


def test_blocked_items_are_not_counted_as_duplicates() -> None:
    decoded = decode_all([{"url": "https://a.example"}, {"url": "https://a.example"}, {"url": "http://10.0.0.1"}])
    refusal = Refusal("private_ip", "private")
    screened = settle(decoded, [None, None, refusal])
    assert [i for i, _ in screened.accepted] == [0]
    assert screened.duplicate_urls == ["https://a.example"]
    blocked = wire.BlockedUrl(index=2, url="http://10.0.0.1", reason="private_ip", message="private")
    assert screened.blocked_urls == [blocked]
    assert decoded.blocked_urls == []  # settling leaves its input as it was


def sdk_queued(answer: wire.NewCollectionResponse, submitted: int) -> int:
    """What the SDK's submit_batch counts as queued from our answer (scrapingpros.client)."""
    col = sp.NewCollectionResponse.model_validate_json(msgspec.json.encode(answer))
    dup_count = len(col.duplicate_urls) if col.duplicate_urls else col.duplicates_skipped
    return max(0, submitted - len(col.blocked_urls) - len(col.invalid_items) - dup_count)


async def test_screening_a_create_as_the_sdk_counts_it() -> None:
    items: list[Any] = [
        {"url": "http://127.0.0.1:8000/a", "custom_id": "1"},
        {"url": "http://127.0.0.1:8000/a", "custom_id": "1"},  # duplicate of 0
        {"url": "http://127.0.0.1:8000/a", "custom_id": "2"},  # same URL, another id: kept
        {"url": "http://127.0.0.1:8000/a"},
        {"url": "http://10.0.0.1/"},
        {"url": "ftp://127.0.0.1/"},
        {"url": "http://metadata.google.internal/"},
        {"url": "http://127.0.0.1:8000/b", "actions": []},
        {"url": "http://127.0.0.1:8000/c", "format": "pdf"},
        {"url": "http://127.0.0.1:8000/a", "custom_id": "1"},  # duplicate of 0 again
    ]
    screened = await screen(items, LOOPBACK)
    assert [i for i, _ in screened.accepted] == [0, 2, 3, 7]
    assert [(b.index, b.reason) for b in screened.blocked_urls] == [
        (4, "private_ip"), (5, "invalid_protocol"), (6, "blocked_hostname")
    ]  # fmt: skip
    assert [(i.index, i.errors[0].field, i.errors[0].error_type) for i in screened.invalid_items] == [
        (8, "format", "literal_error")
    ]
    answer = screened.answer("c1", "batch")
    assert answer.duplicates_skipped == 2 and answer.duplicate_urls == ["http://127.0.0.1:8000/a"] * 2
    assert sdk_queued(answer, len(items)) == len(screened.accepted)


@given(
    st.lists(
        st.one_of(
            st.fixed_dictionaries({"url": st.sampled_from(["a.example", "b.example"]),
                                   "custom_id": st.sampled_from([None, "1", "2"])}),
            st.fixed_dictionaries({"url": st.integers()}),
            st.integers(),
        ),
        max_size=20,
    ),
    st.data(),
)  # fmt: skip
def test_every_item_lands_in_exactly_one_bucket(items: list[Any], data: st.DataObject) -> None:
    decoded = decode_all(items)
    refusals = [data.draw(st.sampled_from([None, Refusal("dns_failed", "x")])) for _ in decoded.accepted]
    screened = settle(decoded, refusals)
    assert sdk_queued(screened.answer("c", "n"), len(items)) == len(screened.accepted)
    indexes = [i for i, _ in screened.accepted] + [b.index for b in screened.blocked_urls]
    indexes += [i.index for i in screened.invalid_items]
    assert len(set(indexes)) == len(indexes) == len(items) - len(screened.duplicate_urls)
    assert len({(r.url, r.custom_id) for _, r in screened.accepted}) == len(screened.accepted)
