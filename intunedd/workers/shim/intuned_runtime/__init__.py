"""intunedd's own ``intuned_runtime``: the helpers that Intuned projects import.

The browser worker (``intunedd.workers.child``) registers this module as ``intuned_runtime``
before any project code is imported, so ``from intuned_runtime import extend_payload, ...`` in a
project resolves here whether or not Intuned's package is installed.

For each attempt the worker makes one ``IntunedContext`` and activates it around the automation;
every helper below acts on the active context. ``WorkerChannel`` is the small surface the worker
gives the context for the things that leave the process (Extend frames, persistent store calls).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from intunedd.workers.protocol import MAX_NAME_CHARS, RunContext

__all__ = [
    "IntunedContext",
    "NonRetryableError",
    "attempt_store",
    "delete_attribute",
    "extend_payload",
    "extend_timeout",
    "get_auth_session_parameters",
    "persistent_store",
    "run_info",
    "set_attribute",
]

# Intuned throttles Extend to one per 60 s; the daemon resets its attempt deadline on every Extend
# and a frame costs microseconds, so a 100 ms interval keeps even second-long timeouts extendable
# while a tight loop of extend_timeout() calls still cannot flood the socket.
EXTEND_INTERVAL_S = 0.1

_ATTRIBUTE_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")


class WorkerChannel(Protocol):
    """What the worker provides to the runtime helpers for one attempt."""

    def send_extend(self) -> None: ...

    async def store_get(self, key: str) -> Any: ...

    async def store_set(self, key: str, value: Any) -> None: ...


class NonRetryableError(Exception):
    """Raise from an automation to fail the run without further attempts."""


@dataclass
class IntunedContext:
    """The state of the attempt that is running now."""

    run_context: RunContext
    channel: WorkerChannel
    store: dict[str, Any] = field(default_factory=dict)
    attributes: dict[str, Any] = field(default_factory=dict)
    extended_payloads: list[dict[str, Any]] = field(default_factory=list)
    last_extend: float = -math.inf
    auth_parameters: Any = None  # of the run's AuthSession, when it has one

    _active: ClassVar[IntunedContext | None] = None

    @classmethod
    def current(cls) -> IntunedContext:
        if cls._active is None:
            raise RuntimeError("intuned_runtime helpers can only be used while an automation runs")
        return cls._active

    @contextmanager
    def activate(self) -> Iterator[IntunedContext]:
        IntunedContext._active = self
        try:
            yield self
        finally:
            IntunedContext._active = None


def run_info() -> RunContext:
    return IntunedContext.current().run_context


def extend_timeout() -> None:
    """Ask the daemon to restart the attempt's timeout. Never blocks; throttled."""
    context = IntunedContext.current()
    now = time.monotonic()
    if now - context.last_extend >= EXTEND_INTERVAL_S:
        context.last_extend = now
        context.channel.send_extend()


def extend_payload(*payloads: Mapping[str, Any]) -> None:
    """Queue more job payloads (``{"api": ..., "parameters": ...}``); they are reported with the result."""
    context = IntunedContext.current()
    for payload in payloads:
        api = payload.get("api")
        if not isinstance(api, str) or not 0 < len(api) <= MAX_NAME_CHARS:
            raise ValueError(f"payload needs an 'api' string of 1 to {MAX_NAME_CHARS} characters: {payload!r}")
        context.extended_payloads.append({"api": payload["api"], "parameters": payload.get("parameters")})
    extend_timeout()


def set_attribute(key: str, value: Any) -> None:
    if not _ATTRIBUTE_KEY.fullmatch(key):
        raise ValueError(f"invalid attribute key {key!r}: use a letter then up to 63 letters, digits or _")
    IntunedContext.current().attributes[key] = value


def delete_attribute(key: str) -> None:
    IntunedContext.current().attributes.pop(key, None)


async def get_auth_session_parameters() -> Any:
    """The parameters the run's AuthSession was created with (Intuned fetches them; the worker is given them)."""
    parameters = IntunedContext.current().auth_parameters
    if parameters is None:
        raise RuntimeError("get_auth_session_parameters: this run has no AuthSession with parameters")
    return parameters


class _AttemptStore(MutableMapping[str, Any]):
    """A dict that lives for one attempt. A proxy, because projects import it once at import time."""

    def set(self, key: str, value: Any) -> None:
        self[key] = value

    def __getitem__(self, key: str) -> Any:
        return IntunedContext.current().store[key]

    def __setitem__(self, key: str, value: Any) -> None:
        IntunedContext.current().store[key] = value

    def __delitem__(self, key: str) -> None:
        del IntunedContext.current().store[key]

    def __iter__(self) -> Iterator[str]:
        return iter(IntunedContext.current().store)

    def __len__(self) -> int:
        return len(IntunedContext.current().store)


class _PersistentStore:
    """Key-value store that outlives the attempt; kept by the daemon."""

    async def get(self, key: str) -> Any:
        _check_key(key)
        return await IntunedContext.current().channel.store_get(key)

    async def set(self, key: str, value: Any) -> None:
        _check_key(key)
        await IntunedContext.current().channel.store_set(key, value)


def _check_key(key: str) -> None:
    if not 0 < len(key) <= MAX_NAME_CHARS or ":" in key or "#" in key:
        raise ValueError(
            f"invalid persistent store key {key[:100]!r}: needs 1 to {MAX_NAME_CHARS} characters and no ':' or '#'"
        )


attempt_store = _AttemptStore()
persistent_store = _PersistentStore()
