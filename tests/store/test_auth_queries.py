"""AuthSessions and their operations in a real SQLite file: secrets sealed on disk and out of
events, hostile or damaged rows reported instead of raised through a list."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import pytest

from intunedd.messages import Event, ProjectVersion
from intunedd.projects import DEFAULT_LIMITS, ProjectError, read_code_auth_sessions
from intunedd.secrets import SecretBox
from intunedd.store import auth_queries as aq
from intunedd.store import deploys, queries
from intunedd.store.db import open_db
from intunedd.store.errors import RecordExists, RecordMissing, RecordUnreadable
from intunedd.store.queries import Tx

T = TypeVar("T")
NOW = "2026-01-01T00:00:00.000Z"
PASSWORD = "pw-Zq81-never-on-disk"
COOKIE = "cookie-Vx93-never-on-disk"
LOCAL_VALUE = "local-Kp27-never-on-disk"
PROXY_PASSWORD = "proxy-Hb55-never-on-disk"
SECRETS = (PASSWORD, COOKIE, LOCAL_VALUE, PROXY_PASSWORD)
PARAMETERS = {"username": "alice", "password": PASSWORD}
PROXY = f"http://bob:{PROXY_PASSWORD}@proxy.example:3128"
STATE = {
    "cookies": [{"name": "sid", "value": COOKIE, "domain": "shop.example", "path": "/", "expires": -1,
                 "httpOnly": True, "secure": True, "sameSite": "Lax"}],
    "origins": [{"origin": "https://shop.example", "localStorage": [{"name": "token", "value": LOCAL_VALUE}]}],
    "sessionStorage": None,
}  # fmt: skip


class Store:
    """The store actor's contract without the actor: one transaction per write, events kept."""

    def __init__(self, path: Path) -> None:
        self.db = open_db(path)
        self.events: list[Event] = []

    def write(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        tx = Tx(self.db, NOW)
        with self.db.atomic():
            value = fn(tx, *args, **kwargs)
        self.events.extend(tx.events)
        return value

    def read(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return fn(self.db, *args, **kwargs)

    def sql(self, statement: str, params: tuple[Any, ...] = ()) -> None:
        self.db.conn.execute(statement, params)


@pytest.fixture
def box(tmp_path: Path) -> SecretBox:
    return SecretBox.open(tmp_path / "secrets.key")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = Store(tmp_path / "db" / "intunedd.db")
    yield store
    store.db.conn.close()


def _create(store: Store, box: SecretBox, session_id: str = "login", **kwargs: Any) -> aq.AuthSessionRecord:
    values: dict[str, Any] = {"type": "CREDENTIALS", "parameters": PARAMETERS, "proxy": PROXY, "options": {}}
    values |= kwargs
    return store.write(aq.create_session, box, "shop", session_id, **values)


def _types(store: Store) -> list[str]:
    return [event.type for event in store.events]


def test_a_session_is_created_read_listed_and_deleted(store: Store, box: SecretBox) -> None:
    created = _create(store, box, options={"createAttempts": 3})
    assert created == aq.AuthSessionRecord(
        id="login", project="shop", type="CREDENTIALS", status="PENDING", source="API",
        proxy_masked="http://bob:****@proxy.example:3128", options={"createAttempts": 3}, created_at=NOW,
        updated_at=NOW, last_checked_at=None, has_state=False,
    )  # fmt: skip
    assert store.read(aq.get_session, "shop", "login") == created
    assert store.read(aq.get_session, "other", "login") is None
    assert store.read(aq.list_sessions, "shop") == [created]
    assert store.read(aq.list_sessions, "other") == []
    assert store.read(aq.session_secrets, box, "shop", "login") == aq.AuthSecrets(PARAMETERS, None, PROXY)
    with pytest.raises(RecordExists):
        _create(store, box)

    assert store.write(aq.delete_session, "shop", "login") is True
    assert store.write(aq.delete_session, "shop", "login") is False
    assert store.read(aq.get_session, "shop", "login") is None
    assert _types(store) == ["authsession.created", "authsession.deleted"]


def test_state_status_parameters_and_checks(store: Store, box: SecretBox) -> None:
    _create(store, box)
    store.write(aq.save_state, box, "shop", "login", STATE)
    session = store.read(aq.get_session, "shop", "login")
    assert session is not None and (session.status, session.has_state) == ("READY", True)
    assert store.read(aq.session_secrets, box, "shop", "login").state == STATE

    store.write(aq.set_status, "shop", "login", "EXPIRED")
    store.write(aq.set_status, "shop", "login", "EXPIRED")  # no change, no event
    store.write(aq.mark_checked, "shop", "login", "2026-01-02T00:00:00.000Z")
    store.write(aq.set_parameters, box, "shop", "login", {"username": "carol"}, None)
    session = store.read(aq.get_session, "shop", "login")
    assert session is not None
    assert (session.status, session.last_checked_at, session.proxy_masked) == (
        "EXPIRED", "2026-01-02T00:00:00.000Z", None
    )  # fmt: skip
    assert store.read(aq.session_secrets, box, "shop", "login") == aq.AuthSecrets({"username": "carol"}, STATE, None)
    assert _types(store) == ["authsession.created", "authsession.updated", "authsession.status", "authsession.updated"]
    assert store.events[2].data == {"session_id": "login", "status": "EXPIRED"}


def test_a_recorded_state_is_imported(store: Store, box: SecretBox) -> None:
    store.write(aq.import_state, box, "shop", "recorded", STATE)
    session = store.read(aq.get_session, "shop", "recorded")
    assert session is not None
    assert (session.type, session.status, session.has_state) == ("RECORDER", "READY", True)
    replaced = {**STATE, "cookies": []}
    store.write(aq.import_state, box, "shop", "recorded", replaced)
    assert store.read(aq.session_secrets, box, "shop", "recorded") == aq.AuthSecrets(None, replaced, None)


@pytest.mark.parametrize(
    "call",
    [
        lambda tx, box: aq.set_parameters(tx, box, "shop", "nope", {}, None),
        lambda tx, box: aq.save_state(tx, box, "shop", "nope", STATE),
        lambda tx, box: aq.set_status(tx, "shop", "nope", "READY"),
        lambda tx, box: aq.mark_checked(tx, "shop", "nope", NOW),
    ],
)
def test_writes_to_a_missing_session_are_refused(store: Store, box: SecretBox, call: Callable[..., None]) -> None:
    with pytest.raises(RecordMissing):
        store.write(call, box)
    with pytest.raises(RecordMissing):
        store.read(aq.session_secrets, box, "shop", "nope")
    assert store.events == []


def test_no_secret_reaches_the_database_file_or_an_event(store: Store, box: SecretBox, tmp_path: Path) -> None:
    _create(store, box)
    store.write(aq.save_state, box, "shop", "login", STATE)
    store.write(aq.import_state, box, "shop", "recorded", STATE)
    store.write(aq.set_parameters, box, "shop", "login", PARAMETERS, PROXY)
    op = store.write(aq.new_operation, box, "shop", "login", "update", {"parameters": PARAMETERS, "proxy": PROXY})
    store.write(aq.update_operation, op.id, "failed", error={"code": "create-attempts-failed", "message": "x"})
    store.write(aq.upsert_code_session, box, "shop", "from-code", PARAMETERS)
    # Every file SQLite wrote (the database and its write-ahead log), before and after a checkpoint.
    for checkpoint in (False, True):
        if checkpoint:
            store.sql("PRAGMA wal_checkpoint(TRUNCATE)")
        files = list((tmp_path / "db").iterdir())
        assert any(f.name == "intunedd.db" for f in files)
        for file in files:
            data = file.read_bytes()
            for secret in SECRETS:
                assert secret.encode() not in data, (secret, file.name)
    published = msgspec.json.encode(store.events)
    assert len(store.events) >= 6
    for secret in SECRETS:
        assert secret.encode() not in published
    assert b'"message"' not in published  # an error's message may quote the login script: only its code


def test_a_blob_moved_to_another_row_or_column_does_not_unseal(store: Store, box: SecretBox) -> None:
    _create(store, box, "a")
    _create(store, box, "b", parameters={"password": "b's own"})
    store.sql("UPDATE auth_sessions SET parameters=(SELECT parameters FROM auth_sessions WHERE id='a') WHERE id='b'")
    with pytest.raises(RecordUnreadable, match="parameters") as e:
        store.read(aq.session_secrets, box, "shop", "b")
    assert PASSWORD not in str(e.value)
    store.sql("UPDATE auth_sessions SET state=proxy WHERE id='a'")
    with pytest.raises(RecordUnreadable, match="state"):
        store.read(aq.session_secrets, box, "shop", "a")


def test_another_key_cannot_read_the_secrets(store: Store, box: SecretBox, tmp_path: Path) -> None:
    _create(store, box)
    other = SecretBox.open(tmp_path / "other.key")
    with pytest.raises(RecordUnreadable, match="another key"):
        store.read(aq.session_secrets, other, "shop", "login")


@pytest.mark.parametrize(
    ("column", "value"),
    [("type", "BOGUS"), ("status", None), ("options", "{not json"), ("options", "[1]"), ("created_at", b"\x00")],
)
def test_a_damaged_session_row_does_not_stop_a_list(store: Store, box: SecretBox, column: str, value: Any) -> None:
    good = _create(store, box, "good")
    _create(store, box, "bad")
    store.sql("CREATE TABLE t AS SELECT * FROM auth_sessions")  # NOT NULL would refuse a NULL status here
    store.sql("DROP TABLE auth_sessions")
    store.sql("ALTER TABLE t RENAME TO auth_sessions")
    store.sql(f"UPDATE auth_sessions SET {column}=? WHERE id='bad'", (value,))
    assert store.read(aq.list_sessions, "shop") == [good]
    listed, bad = store.read(aq.list_sessions_checked, "shop")
    assert listed == [good]
    assert [record_id for record_id, _ in bad] == ["shop/bad"]
    with pytest.raises(RecordUnreadable):
        store.read(aq.get_session, "shop", "bad")
    # What can still be done with it: its secrets read, its state replaced, it deleted.
    assert store.read(aq.session_secrets, box, "shop", "bad").parameters == PARAMETERS
    store.write(aq.save_state, box, "shop", "bad", STATE)
    assert store.write(aq.delete_session, "shop", "bad") is True


def test_garbage_in_a_sealed_column_is_unreadable_not_a_crash(store: Store, box: SecretBox) -> None:
    _create(store, box)
    for garbage in (b"", b"\x01" * 40, "text, not a blob", 42):
        store.sql("UPDATE auth_sessions SET proxy=? WHERE id='login'", (garbage,))
        with pytest.raises(RecordUnreadable):
            store.read(aq.session_secrets, box, "shop", "login")
        assert [s.id for s in store.read(aq.list_sessions, "shop")] == ["login"]


def test_operations_move_on_and_finished_ones_stay_finished(store: Store, box: SecretBox) -> None:
    _create(store, box)
    request = {"parameters": PARAMETERS, "createAttempts": 3}
    first = store.write(aq.new_operation, box, "shop", "login", "create", request)
    second = store.write(aq.new_operation, box, "shop", "login", "validate", {"autoRecreate": True})
    assert (first.status, first.run_id, first.kind) == ("pending", None, "create")
    assert store.read(aq.operation_request, box, first.id) == request
    assert [op.id for op in store.read(aq.unfinished_operations)] == [first.id, second.id]

    started = store.write(aq.update_operation, first.id, "in_progress", run_id="run-1")
    assert (started.status, started.run_id) == ("in_progress", "run-1")
    done = store.write(aq.update_operation, first.id, "done")
    assert (done.status, done.run_id) == ("done", "run-1")  # the run id is kept
    late = store.write(aq.update_operation, first.id, "failed", error={"code": "auth-check-failed"})
    assert late == done
    assert store.read(aq.get_operation, "shop", "create", first.id) == done
    assert store.read(aq.get_operation, "shop", "update", first.id) is None
    assert store.read(aq.get_operation, "other", "create", first.id) is None
    canceled = store.write(aq.update_operation, second.id, "canceled", reason={"code": "x", "message": "y"})
    assert canceled.reason == {"code": "x", "message": "y"}
    assert store.read(aq.unfinished_operations) == []

    operation_events = [e.data for e in store.events if e.type == "authsession.operation"]
    assert [(d["kind"], d["status"]) for d in operation_events] == [
        ("create", "pending"), ("validate", "pending"), ("create", "in_progress"), ("create", "done"),
        ("validate", "canceled"),
    ]  # fmt: skip
    assert operation_events[-1]["reason_code"] == "x"
    with pytest.raises(RecordMissing):
        store.write(aq.update_operation, "nope", "done")
    with pytest.raises(RecordMissing):
        store.read(aq.operation_request, box, "nope")


def test_a_damaged_operation_is_reported_at_recovery_not_raised(store: Store, box: SecretBox) -> None:
    _create(store, box)
    good = store.write(aq.new_operation, box, "shop", "login", "create", {})
    bad = store.write(aq.new_operation, box, "shop", "login", "update", {})
    store.sql("UPDATE auth_operations SET error='{oops' WHERE id=?", (bad.id,))
    operations, unreadable = store.read(aq.unfinished_operations_checked)
    assert [op.id for op in operations] == [good.id]
    assert [op_id for op_id, _ in unreadable] == [bad.id]
    with pytest.raises(RecordUnreadable):
        store.read(aq.get_operation, "shop", "update", bad.id)
    store.write(queries.quarantine, "auth_operation", bad.id, unreadable[0][1])
    assert store.read(aq.unfinished_operations_checked) == (
        [store.read(aq.get_operation, "shop", "create", good.id)],
        [],
    )
    store.sql("UPDATE auth_operations SET request=x'00' WHERE id=?", (good.id,))
    with pytest.raises(RecordUnreadable):
        store.read(aq.operation_request, box, good.id)


def test_sessions_as_code(store: Store, box: SecretBox) -> None:
    store.write(aq.upsert_code_session, box, "shop", "from-code", PARAMETERS)
    session = store.read(aq.get_session, "shop", "from-code")
    assert session is not None
    assert (session.type, session.status, session.source) == ("CREDENTIALS", "PENDING", "CODE")
    store.write(aq.upsert_code_session, box, "shop", "from-code", PARAMETERS)  # unchanged: nothing happens
    assert _types(store) == ["authsession.created"]
    store.write(aq.upsert_code_session, box, "shop", "from-code", {"username": "new"})
    assert store.read(aq.session_secrets, box, "shop", "from-code").parameters == {"username": "new"}
    # An API session of the same id is taken over by the file; one whose parameters no longer
    # unseal gets the file's.
    _create(store, box, "taken")
    store.sql("UPDATE auth_sessions SET parameters=x'0102' WHERE id='taken'")
    store.write(aq.upsert_code_session, box, "shop", "taken", PARAMETERS)
    taken = store.read(aq.get_session, "shop", "taken")
    assert taken is not None and taken.source == "CODE"
    assert store.read(aq.session_secrets, box, "shop", "taken").parameters == PARAMETERS


def test_a_deploy_records_sessions_as_code(store: Store, box: SecretBox, tmp_path: Path) -> None:
    folder = tmp_path / "project" / "intuned-resources" / "auth-sessions"
    folder.mkdir(parents=True)
    (folder / "main-login.auth-session.jsonc").write_text('{\n  // comment\n  "parameters": {"user": "u"},\n}')
    (folder / "ignored.txt").write_text("not a session")
    code_sessions = read_code_auth_sessions(tmp_path / "project", DEFAULT_LIMITS)
    assert code_sessions == {"main-login": {"user": "u"}}
    version = ProjectVersion(name="shop", version=1, path=str(tmp_path / "project"), apis=["a"], api_access=False,
                             max_concurrent=1, deployed_at=NOW)  # fmt: skip
    store.write(deploys.record, version, {}, {}, box, code_sessions)
    assert [s.id for s in store.read(aq.list_sessions, "shop")] == ["main-login"]
    assert store.read(aq.session_secrets, box, "shop", "main-login").parameters == {"user": "u"}


@pytest.mark.parametrize(
    ("name", "text", "error"),
    [
        ("bad_id.auth-session.json", '{"parameters": {}}', "not a valid auth-session id"),
        ("x.auth-session.json", '{"params": {}}', "parameters"),
        ("x.auth-session.json", '{"parameters": [1]}', "Expected `object`"),
        ("x.auth-session.json", "{", "x.auth-session.json"),
    ],
)
def test_a_bad_session_file_fails_the_deploy(tmp_path: Path, name: str, text: str, error: str) -> None:
    folder = tmp_path / "intuned-resources" / "auth-sessions"
    folder.mkdir(parents=True)
    (folder / name).write_text(text)
    with pytest.raises(ProjectError, match=error):
        read_code_auth_sessions(tmp_path, DEFAULT_LIMITS)
