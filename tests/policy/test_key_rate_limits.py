from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scrapingpros._base import map_error, parse_rate_limit_headers
from scrapingpros.exceptions import RateLimitError

from intunedd.policy import key_rate_limits
from intunedd.policy.key_rate_limits import KeyRateLimits

T0 = datetime(2026, 12, 2, 12, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_zero_is_unlimited() -> None:
    assert KeyRateLimits(0).take("k", T0) is None


def test_a_minute_s_burst_then_the_limit_s_pace() -> None:
    limits = KeyRateLimits(60)
    verdicts = [limits.take("k", T0) for _ in range(61)]
    assert all(v is not None and v.allowed for v in verdicts[:60])
    last_allowed, refused = verdicts[59], verdicts[60]
    assert last_allowed is not None and last_allowed.remaining == 0
    assert last_allowed.reset == int(T0.timestamp()) + 60
    assert refused is not None and not refused.allowed and refused.retry_after == 1
    again = limits.take("k", at(1))
    assert again is not None and again.allowed and again.remaining == 0
    assert limits.take("other", T0) == key_rate_limits.Verdict(True, 60, 59, int(T0.timestamp()) + 1)


def test_the_sdk_reads_our_headers_and_retries_after_what_we_say() -> None:
    limits = KeyRateLimits(2)
    assert limits.take("k", T0) is not None
    limits.take("k", T0)
    refused = limits.take("k", T0)
    assert refused is not None and not refused.allowed
    info = parse_rate_limit_headers(refused.headers())
    assert (info.rate_limit_limit, info.rate_limit_remaining, info.rate_limit_reset) == (
        2, 0, int(T0.timestamp()) + 60
    )  # fmt: skip
    error = map_error(429, '{"detail": "Rate limit exceeded"}', refused.headers())
    assert isinstance(error, RateLimitError) and error.retry_after == 30.0


@pytest.mark.parametrize("per_minute", [1, 7, 60, 600])
def test_reset_is_when_the_bucket_is_full_again(per_minute: int) -> None:
    limits = KeyRateLimits(per_minute)
    verdict = limits.take("k", T0)
    assert verdict is not None
    full = limits.take("k", datetime.fromtimestamp(verdict.reset, UTC))
    assert full is not None and full.remaining == per_minute - 1


@given(
    per_minute=st.integers(1, 120),
    gaps=st.lists(st.floats(0, 5, allow_nan=False), min_size=1, max_size=200),
)
def test_never_more_than_a_burst_plus_the_refill(per_minute: int, gaps: list[float]) -> None:
    limits = KeyRateLimits(per_minute)
    times, now = [], 0.0
    for gap in gaps:
        now += gap
        verdict = limits.take("k", at(now))
        assert verdict is not None and 0 <= verdict.remaining <= per_minute
        if verdict.allowed:
            times.append(now)
        else:
            assert verdict.retry_after is not None and verdict.retry_after >= 1
    # From any allowed request to any later one: at most a full bucket plus what refilled between.
    for i, start in enumerate(times):
        for j in range(i, len(times)):
            assert j - i + 1 <= per_minute + (times[j] - start) * per_minute / 60 + 1e-6


@given(per_minute=st.integers(1, 120), burst=st.integers(1, 300))
def test_retrying_after_retry_after_is_allowed(per_minute: int, burst: int) -> None:
    limits = KeyRateLimits(per_minute)
    refused = None
    for _ in range(burst):
        verdict = limits.take("k", T0)
        assert verdict is not None
        if not verdict.allowed:
            refused = verdict
            break
    if refused is not None:
        assert refused.retry_after is not None
        later = limits.take("k", at(refused.retry_after))
        assert later is not None and later.allowed


def test_a_clock_stepping_back_refills_nothing() -> None:
    limits = KeyRateLimits(1)
    first = limits.take("k", at(100))
    assert first is not None and first.allowed
    back = limits.take("k", at(0))
    assert back is not None and not back.allowed


def test_idle_keys_are_forgotten_when_there_are_many(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(key_rate_limits, "MAX_KEYS", 3)
    limits = KeyRateLimits(60)
    for key in ("a", "b", "c"):
        limits.take(key, T0)
    limits.take("d", at(61))  # a, b and c are full again by then
    assert set(limits._buckets) == {"d"}
