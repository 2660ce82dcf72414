"""Signed artifact URLs: built on the configured base, checked without ever raising."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

from hypothesis import given
from hypothesis import strategies as st

from intunedd.config import ServerSettings
from intunedd.http.signing import URL_LIFETIME_S, public_base_url, signed_url, verify

SECRET = b"s" * 32
NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
PATH = "/api/v1/workspace/w/projects/p/runs/r/attempts/1/log"


def _query(url: str) -> tuple[str, str]:
    query = parse_qs(urlsplit(url).query)
    return query["expires"][0], query["signature"][0]


def test_signed_url_verifies_until_it_expires() -> None:
    expires, signature = _query(signed_url(SECRET, ServerSettings(), PATH, NOW))
    assert verify(SECRET, PATH, expires, signature, NOW + timedelta(seconds=URL_LIFETIME_S))
    assert not verify(SECRET, PATH, expires, signature, NOW + timedelta(seconds=URL_LIFETIME_S + 1))
    assert not verify(SECRET, PATH + "x", expires, signature, NOW)


@given(st.text(), st.text())
def test_any_forged_query_is_refused_without_error(expires: str, signature: str) -> None:
    assert not verify(SECRET, PATH, expires, signature, NOW)


def test_non_ascii_signature_is_refused() -> None:
    expires, _ = _query(signed_url(SECRET, ServerSettings(), PATH, NOW))
    assert not verify(SECRET, PATH, expires, "é" * 64, NOW)


def test_base_url_comes_from_settings() -> None:
    assert public_base_url(ServerSettings(host="127.0.0.1", port=8420)) == "http://127.0.0.1:8420"
    assert public_base_url(ServerSettings(host="::1", port=1)) == "http://[::1]:1"
    configured = ServerSettings(public_base_url="https://intunedd.example.com/")
    assert signed_url(SECRET, configured, PATH, NOW).startswith(f"https://intunedd.example.com{PATH}?expires=")
