"""Which browser host a new worker uses, and how a host that stops answering is taken out: a pure
decision over the hosts' states.

A host takes at most ``capacity`` workers. A new worker goes to the host with the most free slots
(the first listed, on a tie), so work spreads evenly. A host on which a worker failed to start is
down: it takes no worker until its backoff ends (longer after each failure in a row, reset by a
start that succeeds), and the pool's capacity shrinks by its free slots meanwhile, so leases wait
for the hosts that answer instead of failing against one that does not.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

import msgspec

HOST_BACKOFF_S = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)


class HostState(msgspec.Struct, frozen=True):
    capacity: int
    live: int = 0  # workers on it: starting, idle or leased
    down_until: float = 0.0  # trio time; up from then on
    failures: int = 0  # failed starts in a row


def is_up(host: HostState, now: float) -> bool:
    return host.down_until <= now


def capacity_now(hosts: Sequence[HostState], now: float) -> int:
    """Workers the pool may have live: every slot of a host that is up; on a host that is down,
    only the workers still there (leased ones, on their way back)."""
    return sum(host.capacity if is_up(host, now) else host.live for host in hosts)


def pick(hosts: Sequence[HostState], now: float) -> int | None:
    """The index of the host a new worker should use, or None when no host that is up has a free slot."""
    free = [(host.capacity - host.live, -index) for index, host in enumerate(hosts) if is_up(host, now)]
    best = max((slot for slot in free if slot[0] > 0), default=None)
    return None if best is None else -best[1]


def after_start_failed(host: HostState, now: float) -> HostState:
    failures = host.failures + 1
    delay = HOST_BACKOFF_S[min(failures, len(HOST_BACKOFF_S)) - 1]
    return msgspec.structs.replace(host, failures=failures, down_until=now + delay)


def after_start(host: HostState) -> HostState:
    return msgspec.structs.replace(host, failures=0, down_until=0.0)


def wake_at(hosts: Sequence[HostState], now: float) -> float | None:
    """When a host that is down comes back, if any is down."""
    return min((host.down_until for host in hosts if not is_up(host, now)), default=None)


def label(url: str) -> str:
    """A host as logs and statistics name it: scheme, host and port; never a path, query or
    user info, which may carry a token."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    if ":" in host:
        host = f"[{host}]"
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # not a number: not worth showing
        port = ""
    return f"{parts.scheme}://{host}{port}"
