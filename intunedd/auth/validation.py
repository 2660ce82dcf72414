"""How a run's AuthSession is made valid before an attempt (spec §5.4), and how concurrent runs
that share one session share its checks and its recreation.

For one caller: check the stored state (up to ``check_attempts`` tries); if it is not valid and
recreation is allowed, create (up to ``create_attempts`` tries), then check what was created.
Each try is an attempt of its own, run by whatever ``SessionAttempts`` the caller gives (the
runner: attempts of a dependency run, on a worker).

``SessionGate`` is what many callers share for one session: checks run side by side, but only
one caller at a time may recreate; one that finds, once its turn comes, that another recreated
the session meanwhile checks the new state instead of creating again. So 20 runs meeting one
expired session cause exactly one creation, and all 20 go on with the new state.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import trio

FailureCode = Literal["check-attempts-failed", "create-attempts-failed", "post-create-check-attempts-failed"]


class ValidationFailed(Exception):
    """The session could not be made valid; ``code`` says in which phase."""

    def __init__(self, code: FailureCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.last_attempt_error: dict[str, Any] | None = None  # the caller's, of its last failed try


class SessionAttempts(Protocol):
    """One try each. A try that fails (an error, a check that raised) counts as a failed try."""

    async def check(self, state: Any) -> bool: ...

    async def create(self) -> Any | None:
        """The new storage state, or None when this try failed."""
        ...


@dataclass(frozen=True)
class Limits:
    check_attempts: int = 3
    create_attempts: int = 3
    recreate: bool = True  # autoRecreate, and the session's type allows it (not RECORDER)


async def _passes(state: Any, attempts: SessionAttempts, tries: int) -> bool:
    for _ in range(tries):
        if await attempts.check(state):
            return True
    return False


async def recreate(attempts: SessionAttempts, limits: Limits) -> Any:
    """Create, then check what was created; the new state, or ValidationFailed."""
    for _ in range(limits.create_attempts):
        state = await attempts.create()
        if state is None:
            continue
        if await _passes(state, attempts, limits.check_attempts):
            return state
        raise ValidationFailed(
            "post-create-check-attempts-failed",
            f"The session was created, but its check failed {limits.check_attempts} times after",
        )
    raise ValidationFailed("create-attempts-failed", f"Creating the session failed {limits.create_attempts} times")


def _check_failed(limits: Limits) -> ValidationFailed:
    return ValidationFailed("check-attempts-failed", f"The session's check failed {limits.check_attempts} times")


@dataclass
class SessionGate:
    """What the callers of one session share. ``state`` and ``version`` are the stored state as the
    gate last saw it; ``save`` stores a recreated one (and marks the session READY)."""

    state: Any
    save: Callable[[Any], Awaitable[None]]
    now: Callable[[], float]
    check_window_s: float = 0.0
    version: int = 0
    checked_at: float | None = None  # when a check of ``version`` last passed
    recreations: int = 0  # recreations finished, successful or not
    last_failure: ValidationFailed | None = None
    _recreating: trio.Lock = field(default_factory=trio.Lock)

    def _recently_checked(self) -> bool:
        return self.checked_at is not None and self.now() - self.checked_at < self.check_window_s

    async def valid_state(self, attempts: SessionAttempts, limits: Limits) -> Any:
        while True:
            if self.check_window_s > 0 and self._recently_checked():
                return self.state
            seen, state, recreations = self.version, self.state, self.recreations
            if state is not None and await _passes(state, attempts, limits.check_attempts):
                if self.version == seen:
                    self.checked_at = self.now()
                return state
            if not limits.recreate:
                raise _check_failed(limits)
            async with self._recreating:
                if self.version != seen:
                    continue  # another caller recreated it meanwhile: check the new state instead
                if self.recreations != recreations and self.last_failure is not None:
                    raise self.last_failure  # another caller's recreation, which this one waited for, failed
                return await self._recreated(lambda: recreate(attempts, limits))

    async def replace(self, make: Callable[[], Awaitable[Any]]) -> Any:
        """Recreate now, whatever the state (an update with new parameters): one at a time, as always."""
        async with self._recreating:
            return await self._recreated(make)

    async def _recreated(self, make: Callable[[], Awaitable[Any]]) -> Any:
        """With the lock held: the state ``make`` creates, saved, or its ValidationFailed remembered."""
        try:
            fresh = await make()
        except ValidationFailed as e:
            self.recreations, self.last_failure = self.recreations + 1, e
            raise
        await self.save(fresh)
        self.state, self.version, self.checked_at = fresh, self.version + 1, self.now()
        self.recreations, self.last_failure = self.recreations + 1, None
        return fresh
