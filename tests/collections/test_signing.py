from __future__ import annotations

import hashlib
import hmac
import json
import os
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from intunedd.collections import signing, wire
from intunedd.config import CollectionSettings, Settings
from intunedd.secrets import SecretError

RUN = wire.RunPublic(
    run_id="r1", status="completed", total_requests=3, success_requests=2, failed_requests=1, collection_id="c1",
    job_ids=["j1", "j2", "j3"],
)  # fmt: skip


def test_body_is_the_documented_run_completed_event() -> None:
    body = signing.run_completed(RUN, "http://127.0.0.1:8420/", datetime(2026, 4, 6, 20, 30, 0, 999, tzinfo=UTC))
    assert json.loads(msgspec.json.encode(body)) == {
        "event": "run.completed",
        "run_id": "r1",
        "collection_id": "c1",
        "status": "completed",
        "total_requests": 3,
        "success_requests": 2,
        "failed_requests": 1,
        "job_ids": ["j1", "j2", "j3"],
        "results_url": "http://127.0.0.1:8420/v1/async/collections/c1/runs/r1",
        "timestamp": "2026-04-06T20:30:00Z",
    }


def test_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    body = b'{"event":"run.completed"}'
    signed = signing.headers("s3cret", 1764640000, body)
    expected = hmac.new(b"s3cret", b"1764640000." + body, hashlib.sha256).hexdigest()
    assert signed == {"X-SP-Timestamp": "1764640000", "X-SP-Signature": expected}


@given(body=st.binary(max_size=200), secret=st.text(min_size=1, max_size=40), age=st.integers(-1000, 1000))
def test_verify_accepts_exactly_fresh_untampered_deliveries(body: bytes, secret: str, age: int) -> None:
    now = 1764640000
    signed = signing.headers(secret, now - age, body)
    timestamp, signature = signed["X-SP-Timestamp"], signed["X-SP-Signature"]
    fresh = abs(age) <= 300
    assert signing.verify(secret, timestamp, signature, body, now) is fresh
    assert not signing.verify(secret + "x", timestamp, signature, body, now)
    assert not signing.verify(secret, timestamp, signature, body + b"x", now)
    assert not signing.verify(secret, str(now - age + 1), signature, body, now)


def settings(tmp_path: Path, secret: str = "") -> Settings:
    return Settings(state_dir=str(tmp_path), collections=CollectionSettings(callback_secret=secret))


def test_a_configured_secret_wins(tmp_path: Path) -> None:
    assert signing.callback_secret(settings(tmp_path, "mine")) == "mine"
    assert not (tmp_path / signing.SECRET_FILE).exists()


def test_the_generated_secret_is_private_and_kept(tmp_path: Path) -> None:
    first = signing.callback_secret(settings(tmp_path))
    path = tmp_path / signing.SECRET_FILE
    assert len(first) == 32 and path.read_text() == first
    assert path.stat().st_mode & 0o777 == 0o600
    assert signing.callback_secret(settings(tmp_path)) == first


def test_a_readable_secret_file_is_refused(tmp_path: Path) -> None:
    signing.callback_secret(settings(tmp_path))
    os.chmod(tmp_path / signing.SECRET_FILE, 0o644)
    with pytest.raises(SecretError, match="chmod 600"):
        signing.callback_secret(settings(tmp_path))
