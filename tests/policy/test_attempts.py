from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from intunedd.policy.attempts import after_attempt, error_object


def test_success_completes() -> None:
    assert after_attempt(succeeded=True, error=None, attempts_made=1, max_attempts=3).action == "complete"


@pytest.mark.parametrize(
    ("made", "maximum", "retryable", "action"),
    [
        (1, 3, True, "retry"),
        (2, 3, True, "retry"),
        (3, 3, True, "fail"),
        (1, 1, True, "fail"),
        (1, 3, False, "fail"),
    ],
)
def test_failure_decisions(made: int, maximum: int, retryable: bool, action: str) -> None:
    error = error_object("script-execution-exception", "boom", retryable=retryable)
    decision = after_attempt(succeeded=False, error=error, attempts_made=made, max_attempts=maximum)
    assert decision.action == action
    if action == "fail":
        assert decision.error is not None
        assert decision.error["details"]["attempts_count"] == made


def test_final_error_keeps_worker_details() -> None:
    error = error_object("script-execution-exception", "boom", retryable=True, details={"stack": "tb"})
    decision = after_attempt(succeeded=False, error=error, attempts_made=1, max_attempts=1)
    assert decision.error is not None
    assert decision.error["details"] == {"stack": "tb", "attempts_count": 1}
    assert decision.error["category"] == "execution"


def test_crash_is_infrastructure() -> None:
    assert error_object("script-process-crashed", "x", retryable=True)["category"] == "infrastructure"


@given(maximum=st.integers(1, 20), retryable=st.lists(st.booleans(), min_size=1, max_size=25))
def test_never_more_attempts_than_allowed(maximum: int, retryable: list[bool]) -> None:
    made = 0
    for flag in retryable:
        made += 1
        decision = after_attempt(
            succeeded=False,
            error=error_object("script-execution-exception", "x", retryable=flag),
            attempts_made=made,
            max_attempts=maximum,
        )
        if decision.action == "fail":
            break
    assert made <= maximum
    assert decision.action == "fail" or made < maximum
