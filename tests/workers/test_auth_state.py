"""The worker's reading of ``Start.auth_state`` (workers/storage_state.py) and of what a check returns
(workers/auth.py)."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from intunedd.workers import auth, storage_state

_text = st.text(max_size=8)
_items = st.lists(st.builds(storage_state.StorageItem, name=_text, value=_text), max_size=3)
_states = st.builds(
    storage_state.StorageState,
    cookies=st.lists(
        st.builds(
            storage_state.Cookie,
            name=_text,
            value=_text,
            domain=_text,
            path=_text,
            expires=st.floats(allow_nan=False, allow_infinity=False),
            http_only=st.booleans(),
            secure=st.booleans(),
            same_site=st.sampled_from(["Strict", "Lax", "None"]),
        ),
        max_size=3,
    ),
    origins=st.lists(st.builds(storage_state.Origin, origin=_text, local_storage=_items), max_size=3),
    session_storage=st.none()
    | st.lists(st.builds(storage_state.SessionStorageOrigin, origin=_text, session_storage=_items)),
)
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=10,
)


@given(_states)
def test_a_state_survives_the_wire(state: storage_state.StorageState) -> None:
    wire = msgspec.json.decode(msgspec.json.encode(state))
    assert "sessionStorage" in wire  # Intuned's runtime requires the key
    assert auth.storage_state(wire) == state


@given(_json | st.dictionaries(st.sampled_from(["cookies", "origins", "sessionStorage"]), _json))
def test_any_value_is_a_state_or_invalid(value: Any) -> None:
    try:
        state = auth.storage_state(value)
    except auth.InvalidState as e:
        assert str(e).startswith("auth_state is not a storage state")
    else:
        assert state is None if value is None else isinstance(state, storage_state.StorageState)


def test_playwright_shaped_cookies_get_intuned_defaults() -> None:
    state = auth.storage_state({"cookies": [{"name": "sid", "value": "1", "domain": "x"}], "origins": []})
    assert state is not None
    assert msgspec.to_builtins(state.cookies) == [
        {"name": "sid", "value": "1", "domain": "x", "path": "/", "expires": -1, "httpOnly": False,
         "secure": False, "sameSite": "Lax"},
    ]  # fmt: skip


@given(_json)
def test_a_check_succeeds_exactly_when_it_returns_a_bool(result: Any) -> None:
    done = auth.check_done(result)
    assert done.success is isinstance(result, bool)
    if done.success:
        assert done.result is result
    else:
        assert done.error is not None and (done.error.code, done.error.retryable) == (
            "script-execution-exception",
            False,
        )


@pytest.mark.parametrize("value", [[], "state", {"cookies": "none"}, {"cookies": [{"value": "no name"}]}])
def test_malformed_states_are_invalid(value: Any) -> None:
    with pytest.raises(auth.InvalidState):
        auth.storage_state(value)
