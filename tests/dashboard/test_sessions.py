"""Dashboard sessions and CSRF: the table's lifetimes and bound, the token check, sign-in targets."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from intunedd.dashboard.render import safe_next
from intunedd.dashboard.sessions import SessionTable, csrf_ok, tokens_match


def counting_tokens() -> SessionTable:
    counter = itertools.count()
    return SessionTable(max_sessions=3, token=lambda n: f"t{next(counter)}")


def test_a_session_lives_until_it_expires() -> None:
    table = SessionTable()
    session = table.open("digest", now=100.0, lifetime_s=60.0)
    assert table.get(session.id, 159.9) == session
    assert table.get(session.id, 160.0) is None
    assert len(table) == 0  # an expired session is forgotten, not kept


def test_ids_and_tokens_are_random_and_distinct() -> None:
    table = SessionTable()
    a, b = table.open("k", 0, 60), table.open("k", 0, 60)
    assert len({a.id, a.csrf, b.id, b.csrf}) == 4
    assert all(len(value) >= 40 for value in (a.id, a.csrf))


def test_unknown_empty_and_closed_ids_name_no_session() -> None:
    table = SessionTable()
    session = table.open("k", 0, 60)
    assert table.get(None, 1) is None
    assert table.get("", 1) is None
    assert table.get(session.csrf, 1) is None  # the CSRF token is no session id
    table.close(session.id)
    assert table.get(session.id, 1) is None
    table.close(session.id)  # closing twice is harmless


def test_the_table_forgets_the_session_nearest_expiry_when_full() -> None:
    table = counting_tokens()
    soon = table.open("k", 0, 10)
    later = [table.open("k", 0, 100 + i) for i in range(2)]
    newest = table.open("k", 0, 50)
    assert len(table) == 3
    assert table.get(soon.id, 1) is None
    assert all(table.get(s.id, 1) == s for s in [*later, newest])


def test_csrf_needs_the_session_token_exactly() -> None:
    session = SessionTable().open("k", 0, 60)
    assert csrf_ok(session, session.csrf)
    assert not csrf_ok(session, None)
    assert not csrf_ok(session, "")
    assert not csrf_ok(session, session.csrf[:-1])
    assert not csrf_ok(session, session.csrf + "x")
    assert not csrf_ok(session, session.id)


@given(st.text())
def test_csrf_refuses_any_other_text_without_raising(given_token: str) -> None:
    """compare_digest raises on non-ASCII str; a forged token may be any text."""
    session = SessionTable().open("k", 0, 60)
    assert csrf_ok(session, given_token) == (given_token == session.csrf)


@given(st.text())
def test_sign_in_only_returns_to_a_path_of_this_daemon(target: str) -> None:
    chosen = safe_next(target)
    assert chosen.startswith("/") and not chosen.startswith("//") and "\\" not in chosen


def test_sign_in_targets() -> None:
    assert safe_next("/runs?project=a") == "/runs?project=a"
    for hostile in ("https://evil.example/", "//evil.example/x", "/\\evil.example", "", None, "runs"):
        assert safe_next(hostile) == "/"


def test_absent_tokens_never_match() -> None:
    assert not tokens_match(None, None)
    assert not tokens_match("", "")
    assert not tokens_match(None, "x")
    assert not tokens_match("x", None)
    assert tokens_match("ñ-token", "ñ-token")
