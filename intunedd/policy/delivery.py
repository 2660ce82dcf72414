"""Sink delivery policy: what an answer means, and when to try again.

Intuned's schedule (sink-retry-behavior): first retry 10 s after the first attempt, doubling,
capped at 2 min, for a window of 1 h for webhooks and 10 min for S3 (both configurable here).
A 2xx is delivered; any other 4xx but 408 and 429 means the receiver refuses the body, so
trying again cannot help; 5xx, 408, 429 and network errors are worth retrying.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

import msgspec

FIRST_DELAY_S = 10.0
MAX_DELAY_S = 120.0
Verdict = Literal["delivered", "retry", "give-up"]


class Next(msgspec.Struct, frozen=True):
    verdict: Verdict
    at: datetime | None = None  # when to try again, for "retry"


def classify(status: int | None) -> Verdict:
    """``status`` None is a network error or a timeout."""
    if status is None:
        return "retry"
    if 200 <= status < 300:
        return "delivered"
    if 400 <= status < 500 and status not in (408, 429):
        return "give-up"
    return "retry"


def delay_s(attempts_made: int, first_s: float = FIRST_DELAY_S, max_s: float = MAX_DELAY_S) -> float:
    """The wait after the ``attempts_made``-th attempt failed: 10, 20, 40, 80, 120, 120, … s."""
    return float(min(first_s * 2 ** min(attempts_made - 1, 32), max_s))


def after_attempt(
    status: int | None,
    attempts_made: int,
    first_attempt: datetime,
    now: datetime,
    window_s: float,
    *,
    first_delay_s: float = FIRST_DELAY_S,
    max_delay_s: float = MAX_DELAY_S,
) -> Next:
    verdict = classify(status)
    if verdict != "retry":
        return Next(verdict)
    at = now + timedelta(seconds=delay_s(attempts_made, first_delay_s, max_delay_s))
    if at > first_attempt + timedelta(seconds=window_s):
        return Next("give-up")
    return Next("retry", at)
