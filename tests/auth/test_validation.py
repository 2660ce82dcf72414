"""The §5.4 algorithm and its sharing between concurrent runs, with scripted attempts under trio's
autojump clock (each try takes a second of fake time, so concurrent callers really overlap)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from intunedd.auth.validation import Limits, SessionGate, ValidationFailed

TRY_S = 1.0


@dataclass
class Site:
    """The login site as the attempts see it: which states it accepts, and what it counted."""

    valid: set[str] = field(default_factory=set)
    logins_to_refuse: int = 0
    checks: int = 0
    creations: int = 0
    refuse_post_create_check: bool = False

    async def check(self, state: Any) -> bool:
        await trio.sleep(TRY_S)
        self.checks += 1
        return state in self.valid and not self.refuse_post_create_check

    async def create(self) -> Any | None:
        await trio.sleep(TRY_S)
        self.creations += 1
        if self.creations <= self.logins_to_refuse:
            return None
        state = f"state-{self.creations}"
        self.valid.add(state)
        return state


def _gate(state: Any, window_s: float = 0.0) -> tuple[SessionGate, list[Any]]:
    saved: list[Any] = []

    async def save(fresh: Any) -> None:
        saved.append(fresh)

    return SessionGate(state, save, trio.current_time, check_window_s=window_s), saved


async def test_a_valid_session_is_checked_and_used(autojump_clock: trio.testing.MockClock) -> None:
    site = Site(valid={"s"})
    gate, saved = _gate("s")
    assert await gate.valid_state(site, Limits()) == "s"
    assert (site.checks, site.creations, saved) == (1, 0, [])


async def test_an_expired_session_is_recreated_then_checked(autojump_clock: trio.testing.MockClock) -> None:
    site = Site()
    gate, saved = _gate("old")
    fresh = await gate.valid_state(site, Limits(check_attempts=2))
    assert fresh == "state-1" and saved == ["state-1"] and gate.state == "state-1"
    assert (site.checks, site.creations) == (2 + 1, 1)  # two failed checks, one after the creation


async def test_twenty_runs_on_one_expired_session_cause_exactly_one_creation(
    autojump_clock: trio.testing.MockClock,
) -> None:
    site = Site()
    gate, saved = _gate("old")
    results: list[Any] = []

    async def run() -> None:
        results.append(await gate.valid_state(site, Limits()))

    async with trio.open_nursery() as nursery:
        for _ in range(20):
            nursery.start_soon(run)
    assert site.creations == 1 and saved == ["state-1"]
    assert results == ["state-1"] * 20


async def test_wrong_credentials_fail_every_waiting_run_after_one_round_of_tries(
    autojump_clock: trio.testing.MockClock,
) -> None:
    site = Site(logins_to_refuse=1000)
    gate, saved = _gate(None)
    failures: list[str] = []

    async def run() -> None:
        with pytest.raises(ValidationFailed) as failed:
            await gate.valid_state(site, Limits(create_attempts=3))
        failures.append(failed.value.code)

    async with trio.open_nursery() as nursery:
        for _ in range(20):
            nursery.start_soon(run)
    assert failures == ["create-attempts-failed"] * 20
    assert site.creations == 3 and saved == []


async def test_a_creation_whose_check_fails_is_a_post_create_check_failure(
    autojump_clock: trio.testing.MockClock,
) -> None:
    site = Site(refuse_post_create_check=True)
    gate, saved = _gate(None)
    with pytest.raises(ValidationFailed) as failed:
        await gate.valid_state(site, Limits(check_attempts=2))
    assert failed.value.code == "post-create-check-attempts-failed"
    assert (site.creations, saved) == (1, [])


async def test_a_session_that_may_not_be_recreated_fails_its_checks(autojump_clock: trio.testing.MockClock) -> None:
    site = Site()
    gate, _ = _gate("old")
    with pytest.raises(ValidationFailed) as failed:
        await gate.valid_state(site, Limits(check_attempts=3, recreate=False))
    assert (failed.value.code, site.checks, site.creations) == ("check-attempts-failed", 3, 0)


async def test_a_passed_check_is_not_repeated_within_the_window(autojump_clock: trio.testing.MockClock) -> None:
    site = Site(valid={"s"})
    gate, _ = _gate("s", window_s=60)
    for _ in range(5):
        await gate.valid_state(site, Limits())
        await trio.sleep(10)
    assert site.checks == 1
    await trio.sleep(60)
    await gate.valid_state(site, Limits())
    assert site.checks == 2


async def test_with_no_window_every_attempt_checks(autojump_clock: trio.testing.MockClock) -> None:
    site = Site(valid={"s"})
    gate, _ = _gate("s")
    for _ in range(3):
        await gate.valid_state(site, Limits())
    assert site.checks == 3


@settings(deadline=None, max_examples=40)
@given(
    callers=st.integers(1, 12),
    refused=st.integers(0, 5),
    # All arrive while the first caller still checks, so all meet the same round of creation.
    starts=st.lists(st.floats(0, 0.5), min_size=12, max_size=12),
    create_attempts=st.integers(1, 3),
)
def test_concurrent_callers_never_create_more_than_one_round_and_agree(
    callers: int, refused: int, starts: list[float], create_attempts: int
) -> None:
    site = Site(logins_to_refuse=refused)
    outcomes: list[Any] = []

    async def main() -> None:
        gate, _ = _gate("expired")

        async def run(delay: float) -> None:
            await trio.sleep(delay)
            try:
                outcomes.append(await gate.valid_state(site, Limits(create_attempts=create_attempts)))
            except ValidationFailed as e:
                outcomes.append(e.code)

        async with trio.open_nursery() as nursery:
            for delay in starts[:callers]:
                nursery.start_soon(run, delay)

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert site.creations <= create_attempts
    assert len(set(outcomes)) == 1 and len(outcomes) == callers
    succeeded = refused < create_attempts
    assert outcomes[0] == (f"state-{refused + 1}" if succeeded else "create-attempts-failed")


async def test_a_run_arriving_after_a_failed_recreation_tries_again(autojump_clock: trio.testing.MockClock) -> None:
    site = Site(logins_to_refuse=1)
    gate, saved = _gate(None)
    with pytest.raises(ValidationFailed):
        await gate.valid_state(site, Limits(create_attempts=1))
    assert await gate.valid_state(site, Limits(create_attempts=1)) == "state-2"
    assert saved == ["state-2"]
