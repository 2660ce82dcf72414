from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from intunedd.policy.delivery import after_attempt, classify, delay_s

T0 = datetime(2026, 11, 23, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("status", "verdict"),
    [(200, "delivered"), (204, "delivered"), (299, "delivered"), (400, "give-up"), (401, "give-up"),
     (404, "give-up"), (408, "retry"), (429, "retry"), (500, "retry"), (503, "retry"), (None, "retry"),
     (301, "retry")],
)  # fmt: skip
def test_classify(status: int | None, verdict: str) -> None:
    assert classify(status) == verdict


@pytest.mark.parametrize(("attempts", "delay"), [(1, 10), (2, 20), (3, 40), (4, 80), (5, 120), (6, 120), (50, 120)])
def test_backoff(attempts: int, delay: float) -> None:
    assert delay_s(attempts) == delay


def test_intuned_timeline_for_webhooks_and_s3() -> None:
    """attempt 1 at t=0, then +10, +20, +40, +80 s, then every 2 min until the window ends."""
    for window, last_attempt_before in ((3600, 3600), (600, 600)):
        times, now, made = [0.0], T0, 1
        while (decision := after_attempt(500, made, T0, now, window)).verdict == "retry":
            assert decision.at is not None
            now, made = decision.at, made + 1
            times.append((now - T0).total_seconds())
        assert times[:6] == [0, 10, 30, 70, 150, 270]
        assert all(b - a == 120 for a, b in zip(times[4:], times[5:], strict=False))
        assert times[-1] <= last_attempt_before < times[-1] + 120


@given(
    statuses=st.lists(st.one_of(st.none(), st.integers(100, 599)), min_size=1, max_size=60),
    window=st.integers(0, 7200),
)
def test_retries_stay_inside_the_window(statuses: list[int | None], window: int) -> None:
    now = T0
    for made, status in enumerate(statuses, start=1):
        decision = after_attempt(status, made, T0, now, window)
        if decision.verdict != "retry":
            assert decision.verdict == classify(status) or classify(status) == "retry"
            return
        assert decision.at is not None
        assert decision.at <= T0 + timedelta(seconds=window)
        assert decision.at > now
        now = decision.at
