"""API keys in a real database file: created with a prefix, listed without secrets, revoked."""

from __future__ import annotations

from pathlib import Path

import pytest

from intunedd.config import Settings
from intunedd.store.db import open_db
from intunedd.store.errors import RecordMissing
from intunedd.store.keys import AmbiguousKey, create_api_key, hash_key, key_is_valid, list_keys, revoke_key


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(state_dir=str(tmp_path))


def _valid(settings: Settings, key: str) -> bool:
    db = open_db(settings.db_path)
    try:
        return key_is_valid(db, hash_key(key))
    finally:
        db.conn.close()


def test_keys_are_listed_by_prefix_and_revoked(settings: Settings) -> None:
    first = create_api_key(settings, "ci")
    second = create_api_key(settings, "laptop")
    listed = list_keys(settings)
    assert [(k.name, k.prefix, k.revoked_at) for k in listed] == [("ci", first[:8], None), ("laptop", second[:8], None)]
    assert all(first not in repr(k) and hash_key(first) not in repr(k) for k in listed)

    revoked = revoke_key(settings, "ci")
    assert revoked.revoked_at is not None
    assert not _valid(settings, first)
    assert _valid(settings, second)
    assert revoke_key(settings, second[:8]).name == "laptop"
    assert not _valid(settings, second)


def test_revoke_needs_exactly_one_match(settings: Settings) -> None:
    create_api_key(settings, "same")
    create_api_key(settings, "same")
    with pytest.raises(AmbiguousKey):
        revoke_key(settings, "same")
    with pytest.raises(RecordMissing):
        revoke_key(settings, "nothing")
    by_id = list_keys(settings)[0].id
    assert revoke_key(settings, by_id).id == by_id
    assert revoke_key(settings, "same").name == "same"  # the other one: revoked keys no longer match


def test_keys_from_before_prefixes_have_none(settings: Settings) -> None:
    db = open_db(settings.db_path)
    with db.atomic():
        db.conn.execute("INSERT INTO api_keys (id, name, key_hash, created_at) VALUES ('old', 'old', 'h', '2020')")
    db.conn.close()
    assert [(k.id, k.prefix) for k in list_keys(settings)] == [("old", None)]
