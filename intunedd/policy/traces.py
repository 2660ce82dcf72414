"""Which attempts record a Playwright trace, and which traces are kept: the daemon-wide
``runs.trace_policy`` applied to a run's ``saveTrace``. Pure decisions.

``saveTrace: false`` never traces. With ``saveTrace: true`` (Intuned's default):

- ``on``: every attempt records and keeps its trace, as on Intuned.
- ``retain-on-failure``: every attempt records; a completed attempt's trace is deleted. Recording
  is what costs CPU, so this saves disk, not time.
- ``on-first-retry``: only an attempt that retries a failed one, the second, records. A run that
  succeeds at once costs nothing extra and has no trace; one that fails once shows its retry.
- ``on-all-retries``: every attempt after the first records.

The names and meanings are Playwright Test's ``trace`` option's.
"""

from __future__ import annotations

from typing import Literal

TracePolicy = Literal["on", "retain-on-failure", "on-first-retry", "on-all-retries"]


def records(policy: TracePolicy, save_trace: bool, attempt_number: int) -> bool:
    """Whether attempt ``attempt_number`` (from 1) of a run asking for ``save_trace`` is traced."""
    if not save_trace:
        return False
    match policy:
        case "on-first-retry":
            return attempt_number == 2
        case "on-all-retries":
            return attempt_number >= 2
        case _:
            return True


def keeps(policy: TracePolicy, attempt_status: str) -> bool:
    """Whether a recorded trace stays once its attempt ended with ``attempt_status``."""
    return policy != "retain-on-failure" or attempt_status != "completed"
