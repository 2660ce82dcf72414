"""The JSON depth pre-check and the body decoder that applies it."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from intunedd.errors import BadRequest
from intunedd.http.json_depth import within_depth
from intunedd.http.schemas import RunStartBody, decode_json


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\ ab\n', max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(alphabet='[]{}"\\a', max_size=3), inner),
    max_leaves=40,
)


@given(_json, st.integers(min_value=1, max_value=12))
def test_depth_of_any_json_is_judged_exactly(value: Any, limit: int) -> None:
    assert within_depth(json.dumps(value).encode(), limit) == (_depth(value) <= limit)


@given(st.binary(max_size=200), st.integers(min_value=1, max_value=8))
def test_any_bytes_are_judged_without_error(body: bytes, limit: int) -> None:
    assert within_depth(body, limit) in (True, False)


def test_deep_body_is_refused_naming_the_limit() -> None:
    body = b'{"api": "x", "parameters": {"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}"
    with pytest.raises(BadRequest, match="deeper than 64") as refused:
        decode_json(body, RunStartBody, 64)
    assert refused.value.details == {"field": "body"}


def test_unclosed_deep_body_is_refused() -> None:
    with pytest.raises(BadRequest) as refused:
        decode_json(b"[" * 100_000, RunStartBody, 64)
    assert refused.value.details == {"field": "body"}


def test_malformed_body_past_the_limit_is_called_malformed() -> None:
    with pytest.raises(BadRequest, match="Malformed JSON"):
        decode_json(b'{"api": "x", "parameters": {"a": ' + b"[" * 70 + b"}", RunStartBody, 64)


def test_body_at_the_limit_is_decoded() -> None:
    nested: Any = 1
    for _ in range(62):
        nested = [nested]
    body = msgspec.json.encode({"api": "x", "parameters": {"a": nested}})
    assert decode_json(body, RunStartBody, 64).parameters == {"a": nested}
    with pytest.raises(BadRequest, match="deeper than 63"):
        decode_json(body, RunStartBody, 63)


def test_brackets_inside_strings_do_not_count() -> None:
    body = msgspec.json.encode({"api": "x", "parameters": {"a": "[" * 1000 + '\\"{' * 100}})
    assert decode_json(body, RunStartBody, 3).parameters["a"].startswith("[[[")
