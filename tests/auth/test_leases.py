"""Who may use one AuthSession at a time: shared uses never refused, an exclusive use alone."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from intunedd.auth.leases import SessionUse

# A step: an attempt asks (True: exclusive), or the holder number ``n`` (mod the holders) gives back.
Step = tuple[str, bool] | tuple[str, int]
steps = st.lists(
    st.one_of(st.tuples(st.just("ask"), st.booleans()), st.tuples(st.just("end"), st.integers(0, 50))), max_size=60
)


@given(steps)
def test_an_exclusive_use_is_alone_and_shared_uses_are_never_refused(script: list[Step]) -> None:
    use = SessionUse()
    holders: list[bool] = []  # True: exclusive
    for kind, value in script:
        if kind == "ask":
            exclusive = bool(value)
            decision = use.decide(exclusive)
            if exclusive:
                assert (decision == "refused") == bool(holders)
            else:
                assert decision != "refused"
                assert (decision == "wait") == any(holders)
            if decision == "granted":
                use.take(exclusive)
                holders.append(exclusive)
        elif holders:
            use.give_back(holders.pop(int(value) % len(holders)))
        assert use.exclusive == any(holders) and use.shared == holders.count(False)
        assert not (use.exclusive and use.shared)
        assert use.idle == (not holders)


def test_a_use_is_given_back_only_once_and_taken_only_when_free() -> None:
    use = SessionUse()
    use.take(False)
    with pytest.raises(ValueError):
        use.take(True)
    with pytest.raises(ValueError):
        use.give_back(True)
    use.give_back(False)
    with pytest.raises(ValueError):
        use.give_back(False)
    use.take(True)
    assert use.decide(True) == "refused" and use.decide(False) == "wait"
