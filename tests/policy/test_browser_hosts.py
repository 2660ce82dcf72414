"""Which browser host a new worker uses, and hosts taken out and brought back."""

from __future__ import annotations

import string

from hypothesis import given
from hypothesis import strategies as st

from intunedd.policy.browser_hosts import (
    HOST_BACKOFF_S,
    HostState,
    after_start,
    after_start_failed,
    capacity_now,
    is_up,
    label,
    pick,
    wake_at,
)

NOW = 100.0
UNRESERVED = string.ascii_letters + string.digits + "-._~"


@st.composite
def hosts(draw: st.DrawFn) -> list[HostState]:
    states = []
    for _ in range(draw(st.integers(0, 6))):
        capacity = draw(st.integers(1, 5))
        states.append(
            HostState(
                capacity=capacity,
                live=draw(st.integers(0, capacity)),
                down_until=draw(st.sampled_from([0.0, NOW - 1, NOW, NOW + 1, NOW + 30])),
                failures=draw(st.integers(0, 3)),
            )
        )
    return states


@given(hosts())
def test_a_new_worker_goes_where_most_slots_are_free_on_a_host_that_is_up(states: list[HostState]) -> None:
    chosen = pick(states, NOW)
    open_slots = [h.capacity - h.live if is_up(h, NOW) else 0 for h in states]
    if chosen is None:
        assert not any(n > 0 for n in open_slots)
    else:
        assert open_slots[chosen] == max(open_slots) > 0
        assert chosen == open_slots.index(max(open_slots))  # the first listed, on a tie


@given(hosts())
def test_below_the_capacity_there_is_always_a_host_to_start_on(states: list[HostState]) -> None:
    """The pool spawns only while its live workers are fewer than ``capacity_now``."""
    live = sum(h.live for h in states)
    assert capacity_now(states, NOW) >= live
    assert (pick(states, NOW) is not None) == (capacity_now(states, NOW) > live)


def test_a_host_is_out_longer_after_each_failure_in_a_row_and_back_after_a_start() -> None:
    host = HostState(capacity=2)
    delays = []
    for _ in range(len(HOST_BACKOFF_S) + 2):
        host = after_start_failed(host, NOW)
        delays.append(host.down_until - NOW)
        assert not is_up(host, NOW) and is_up(host, host.down_until)
    assert delays == sorted(delays) and delays[-1] == delays[-2] == HOST_BACKOFF_S[-1]
    assert wake_at([HostState(capacity=1), host], NOW) == host.down_until
    host = after_start(host)
    assert (host.failures, is_up(host, NOW), wake_at([host], NOW)) == (0, True, None)


def test_a_host_that_is_down_keeps_only_its_live_workers_in_the_capacity() -> None:
    up, down = HostState(capacity=3, live=1), HostState(capacity=4, live=2, down_until=NOW + 5)
    assert capacity_now([up, down], NOW) == 3 + 2
    assert capacity_now([up, down], NOW + 5) == 3 + 4


@given(st.text(alphabet=UNRESERVED, max_size=40), st.text(alphabet=UNRESERVED, max_size=40))
def test_a_label_never_shows_a_path_a_query_or_user_info(secret: str, query: str) -> None:
    shown = label(f"wss://user:{secret}@browsers.example:3000/{secret}?token={query}")
    assert shown == "wss://browsers.example:3000"


def test_labels() -> None:
    assert label("ws://127.0.0.1:3000/abc?token=x") == "ws://127.0.0.1:3000"
    assert label("http://[::1]:9222") == "http://[::1]:9222"
    assert label("wss://chrome.browserless.io?token=x") == "wss://chrome.browserless.io"
    assert label("ws://host:notaport/") == "ws://host"
