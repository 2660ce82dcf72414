"""Which attempts record a trace and which traces stay, under each ``runs.trace_policy``."""

from __future__ import annotations

from typing import get_args

from hypothesis import given
from hypothesis import strategies as st

from intunedd.policy.traces import TracePolicy, keeps, records

POLICIES = st.sampled_from(get_args(TracePolicy))
NUMBERS = st.integers(1, 50)
STATUSES = st.sampled_from(["completed", "failed", "canceled", "interrupted"])


@given(POLICIES, NUMBERS)
def test_save_trace_false_never_records(policy: TracePolicy, number: int) -> None:
    assert not records(policy, False, number)


@given(NUMBERS)
def test_on_and_retain_on_failure_record_every_attempt(number: int) -> None:
    assert records("on", True, number)
    assert records("retain-on-failure", True, number)


@given(NUMBERS)
def test_retry_policies_leave_the_first_attempt_untraced(number: int) -> None:
    assert records("on-first-retry", True, number) == (number == 2)
    assert records("on-all-retries", True, number) == (number >= 2)


@given(POLICIES, STATUSES)
def test_only_retain_on_failure_drops_a_trace_and_only_a_completed_attempts(policy: TracePolicy, status: str) -> None:
    assert keeps(policy, status) == (policy != "retain-on-failure" or status != "completed")
