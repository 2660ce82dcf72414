"""Functions tokens: valid until they expire, for what they were minted for; any change refuses them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from intunedd.functions_token import MAX_TOKEN_CHARS, Claims, expiring, mint, verify

SECRET = b"s" * 32
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
CLAIMS = expiring("shop", "run-1", NOW, 3600)
TOKEN = mint(SECRET, CLAIMS)


def test_verifies_until_it_expires() -> None:
    assert verify(SECRET, TOKEN, NOW) == Claims(project="shop", run_id="run-1", expires=int(NOW.timestamp()) + 3600)
    assert verify(SECRET, TOKEN, NOW + timedelta(seconds=3600)) == CLAIMS
    assert verify(SECRET, TOKEN, NOW + timedelta(seconds=3601)) is None


def test_another_secret_refuses_it() -> None:
    assert verify(b"t" * 32, TOKEN, NOW) is None


@given(st.integers(0, len(TOKEN) - 1), st.characters(codec="ascii"))
def test_any_changed_character_is_refused(position: int, character: str) -> None:
    tampered = TOKEN[:position] + character + TOKEN[position + 1 :]
    if tampered != TOKEN:
        assert verify(SECRET, tampered, NOW) is None


@given(st.text(max_size=200), st.text(max_size=200))
def test_any_appended_or_prepended_text_is_refused(before: str, after: str) -> None:
    tampered = before + TOKEN + after
    if tampered != TOKEN:
        assert verify(SECRET, tampered, NOW) is None


@given(st.text(max_size=MAX_TOKEN_CHARS + 10))
def test_anything_else_is_refused_without_error(token: str) -> None:
    assert verify(SECRET, token, NOW) is None


@given(st.text(min_size=1, max_size=100), st.text(min_size=1, max_size=100), st.integers(0, 2**40))
def test_round_trip(project: str, run_id: str, expires: int) -> None:
    claims = Claims(project=project, run_id=run_id, expires=expires)
    assert verify(SECRET, mint(SECRET, claims), datetime.fromtimestamp(0, UTC)) == claims


def test_a_token_for_other_claims_under_this_payload_is_refused() -> None:
    """Swapping the payload of one valid token onto the mac of another fails."""
    other = mint(SECRET, expiring("other", "run-2", NOW, 3600))
    assert verify(SECRET, TOKEN.split(".")[0] + "." + other.split(".")[1], NOW) is None
