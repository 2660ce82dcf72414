from __future__ import annotations

import json
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from intunedd.jsonc import JsoncError, JsoncTooDeep, loads_jsonc

HOSTILE = ['"/*a"' * 40_000, "/*a" * 40_000, "//" * 60_000, '{"a":"' + "\\" * 120_000, "[" * 120_000, ",}" * 60_000]


def test_loads_jsonc_keeps_strings_intact() -> None:
    text = '{\n "a": "http://x//y", // comment\n "b": "not,}a comma", /* block\n */ "c": [1, 2,],\n}'
    assert loads_jsonc(text) == {"a": "http://x//y", "b": "not,}a comma", "c": [1, 2]}


@pytest.mark.parametrize("text", HOSTILE, ids=lambda t: t[:8])
def test_hostile_120kb_inputs_are_refused_in_linear_time(text: str) -> None:
    started = time.perf_counter()
    with pytest.raises(JsoncError):
        loads_jsonc(text)
    assert time.perf_counter() - started < 0.5


def test_nesting_is_limited_while_parsing() -> None:
    assert loads_jsonc("[" * 64 + "]" * 64, max_depth=64) is not None
    with pytest.raises(JsoncTooDeep, match="deeper than 64"):
        loads_jsonc("[" * 65 + "]" * 65, max_depth=64)
    with pytest.raises(JsoncTooDeep):
        loads_jsonc('{"a":' * 100_000 + "1" + "}" * 100_000)


def test_errors_are_json_decode_errors_with_a_position() -> None:
    with pytest.raises(json.JSONDecodeError) as caught:
        loads_jsonc('{\n  "a": 1,,\n}')
    assert caught.value.lineno == 2


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=30,
)


@given(JSON)
def test_plain_json_reads_as_the_stdlib_reads_it(value: object) -> None:
    text = json.dumps(value)
    assert loads_jsonc(text) == json.loads(text)


@given(st.text(max_size=300))
def test_any_text_is_a_value_or_a_jsonc_error(text: str) -> None:
    try:
        loads_jsonc(text)
    except JsoncError:
        pass
