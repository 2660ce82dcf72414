"""Per-API-key request limits for the /v1 API (``collections.requests_per_minute``).

A token bucket per key: it holds up to ``per_minute`` requests and refills evenly, one every
``60 / per_minute`` seconds, so a client may burst a minute's worth and then goes at the
limit's pace, with no window edge at which twice the limit gets through.

Every answer carries the headers the ``scrapingpros`` SDK reads (``RateLimitInfo``; it parses
each as an integer): ``X-RateLimit-Limit`` (per minute), ``X-RateLimit-Remaining`` (whole
requests left now) and ``X-RateLimit-Reset``, the Unix time in seconds at which the bucket is
full again (the service does not say which meaning it uses; epoch seconds is the common one). A
refusal adds ``Retry-After`` in whole seconds until one request is allowed, which is what the
SDK waits before retrying a 429.

Buckets live in memory: a restart forgets them, which only ever lets a client through sooner.
"""

from __future__ import annotations

import math
from datetime import datetime

import msgspec

MAX_KEYS = 10_000  # at this many buckets, the full ones (idle keys) are dropped before adding one


class Verdict(msgspec.Struct, frozen=True):
    allowed: bool
    limit: int
    remaining: int
    reset: int  # Unix seconds
    retry_after: int | None = None  # whole seconds, when refused

    def headers(self) -> dict[str, str]:
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset),
        }
        if self.retry_after is not None:
            headers["Retry-After"] = str(self.retry_after)
        return headers


class _Bucket(msgspec.Struct):
    tokens: float
    at: float  # Unix seconds of the last refill


class KeyRateLimits:
    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._rate = per_minute / 60.0  # tokens a second
        self._buckets: dict[str, _Bucket] = {}

    def take(self, key: str, now: datetime) -> Verdict | None:
        """One request of ``key`` at ``now``, allowed or not; None when requests are unlimited."""
        if self.per_minute <= 0:
            return None
        t = now.timestamp()
        bucket = self._refilled(key, t)
        allowed = bucket.tokens >= 1.0
        if allowed:
            bucket.tokens -= 1.0
        return Verdict(
            allowed=allowed,
            limit=self.per_minute,
            remaining=math.floor(bucket.tokens),
            reset=math.ceil(t + (self.per_minute - bucket.tokens) / self._rate),
            retry_after=None if allowed else max(1, math.ceil((1.0 - bucket.tokens) / self._rate)),
        )

    def _refilled(self, key: str, t: float) -> _Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= MAX_KEYS:
                self._forget_full(t)
            bucket = self._buckets[key] = _Bucket(tokens=float(self.per_minute), at=t)
        # A wall clock stepped back refills nothing rather than draining the bucket.
        bucket.tokens = min(float(self.per_minute), bucket.tokens + max(0.0, t - bucket.at) * self._rate)
        bucket.at = max(bucket.at, t)
        return bucket

    def _forget_full(self, t: float) -> None:
        """Drop the buckets that would be full at ``t``: a new bucket starts full anyway."""
        full = [k for k, b in self._buckets.items() if b.tokens + (t - b.at) * self._rate >= self.per_minute]
        for key in full:
            del self._buckets[key]
