"""SQL for AuthSessions and their operations (create, update, validate).

Parameters, storage state, proxies and operation requests are sealed with the daemon's
SecretBox, bound to their row and column (``_context``), so they never reach the database file,
an event or a log in plaintext; ``proxy_masked`` is what may be shown back. Reads of records
that no longer decode or unseal raise ``RecordUnreadable`` (one record) or come back as
(id, why) from the ``*_checked`` readers, for the caller to quarantine, never stopping a list.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any, Literal

import msgspec
import sqlite_utils

from ..ids import new_uuid
from ..proxies import mask_proxy
from ..secrets import SecretBox, SecretError, blob_key_id, rotate
from .errors import RecordExists, RecordMissing, RecordUnreadable
from .queries import Tx, _dumps, _loads, decode_rows, release

SessionType = Literal["CREDENTIALS", "RUNTIME", "RECORDER"]
SessionStatus = Literal["PENDING", "READY", "EXPIRED"]
SessionSource = Literal["API", "CODE"]
OperationKind = Literal["create", "update", "validate"]
OperationStatus = Literal["pending", "in_progress", "done", "failed", "canceled"]
UNFINISHED: tuple[OperationStatus, ...] = ("pending", "in_progress")
# Why an operation ends canceled: its session was deleted (a type Intuned's clients accept).
DELETED = {"type": "cancelled-user-action", "message": "The AuthSession was deleted"}
_json = msgspec.json.Encoder()


class AuthSessionRecord(msgspec.Struct, frozen=True):
    """A session as it may be shown: no parameters, state or proxy password."""

    id: str
    project: str
    type: SessionType
    status: SessionStatus
    source: SessionSource
    proxy_masked: str | None
    options: dict[str, Any]
    created_at: str
    updated_at: str
    last_checked_at: str | None
    has_state: bool


class AuthSecrets(msgspec.Struct, frozen=True):
    parameters: Any
    state: Any
    proxy: str | None


class AuthOperation(msgspec.Struct, frozen=True):
    id: str
    project: str
    session_id: str
    kind: OperationKind
    status: OperationStatus
    run_id: str | None
    error: dict[str, Any] | None
    reason: dict[str, Any] | None
    created_at: str
    updated_at: str


def _session_context(project: str, session_id: str, column: str) -> bytes:
    # JSON, not "project/id:column": no choice of names can make two rows' contexts equal.
    return _json.encode(["auth_session", project, session_id, column])


def _operation_context(op_id: str) -> bytes:
    return _json.encode(["auth_operation", op_id, "request"])


def _session_key(project: str, session_id: str) -> str:
    return f"{project}/{session_id}"


def _missing(project: str, session_id: str) -> RecordMissing:
    return RecordMissing(
        f"auth session '{session_id}' not found in project '{project}'", details={"field": "authSessionId"}
    )


def _unreadable(what: str, why: str) -> RecordUnreadable:
    return RecordUnreadable(f"{what} cannot be read: {why}", details={"reason": "unreadable-record"})


# -- sessions -----------------------------------------------------------------------------

_SESSION_COLUMNS = (
    "project, id, type, status, source, proxy_masked, options, created_at, updated_at, last_checked_at, "
    "state IS NOT NULL"
)


def _session(row: tuple[Any, ...]) -> AuthSessionRecord:
    project, id_, type_, status, source, proxy_masked, options, created_at, updated_at, checked_at, has_state = row
    fields = {
        "id": id_,
        "project": project,
        "type": type_,
        "status": status,
        "source": source,
        "proxy_masked": proxy_masked,
        "options": _loads(options),
        "created_at": created_at,
        "updated_at": updated_at,
        "last_checked_at": checked_at,
        "has_state": bool(has_state),
    }
    return msgspec.convert(fields, AuthSessionRecord)


def _exists(db: sqlite_utils.Database, project: str, session_id: str) -> bool:
    return (
        db.conn.execute("SELECT 1 FROM auth_sessions WHERE project=? AND id=?", (project, session_id)).fetchone()
        is not None
    )


def _require(db: sqlite_utils.Database, project: str, session_id: str) -> None:
    if not _exists(db, project, session_id):
        raise _missing(project, session_id)


def _seal_optional(box: SecretBox, value: Any, context: bytes) -> bytes | None:
    return None if value is None else box.seal(value, context)


def create_session(
    tx: Tx,
    box: SecretBox,
    project: str,
    session_id: str,
    type: SessionType,
    parameters: Any,
    proxy: str | None,
    options: dict[str, Any],
    source: SessionSource = "API",
) -> AuthSessionRecord:
    """A new session, PENDING until its create operation saves a state."""
    sealed_parameters = box.seal(parameters, _session_context(project, session_id, "parameters"))
    sealed_proxy = _seal_optional(box, proxy, _session_context(project, session_id, "proxy"))
    try:
        tx.execute(
            "INSERT INTO auth_sessions (project, id, type, status, source, parameters, proxy, proxy_masked, options, "
            "created_at, updated_at) VALUES (?, ?, ?, 'PENDING', ?, ?, ?, ?, ?, ?, ?)",
            (project, session_id, type, source, sealed_parameters, sealed_proxy, mask_proxy(proxy), _dumps(options),
             tx.now, tx.now),
        )  # fmt: skip
    except sqlite3.IntegrityError as e:
        raise RecordExists(
            f"auth session '{session_id}' already exists in project '{project}'", details={"field": "id"}
        ) from e
    tx.emit(
        "authsession.created",
        project=project,
        session_id=session_id,
        session_type=type,
        status="PENDING",
        source=source,
    )
    return AuthSessionRecord(
        id=session_id,
        project=project,
        type=type,
        status="PENDING",
        source=source,
        proxy_masked=mask_proxy(proxy),
        options=options,
        created_at=tx.now,
        updated_at=tx.now,
        last_checked_at=None,
        has_state=False,
    )


def upsert_code_session(tx: Tx, box: SecretBox, project: str, session_id: str, parameters: Any) -> None:
    """A session from ``intuned-resources/auth-sessions/<id>.auth-session.json(c)``: created
    (CREDENTIALS, PENDING) on the deploy that adds the file; on later deploys the file's
    parameters replace the stored ones when they differ (state and status are kept)."""
    if not _exists(tx.db, project, session_id):
        create_session(tx, box, project, session_id, "CREDENTIALS", parameters, None, {}, source="CODE")
        return
    try:
        current = session_secrets(tx.db, box, project, session_id).parameters
        source = tx.execute("SELECT source FROM auth_sessions WHERE project=? AND id=?", (project, session_id))
        unchanged = current == parameters and source.fetchone()[0] == "CODE"
    except RecordUnreadable:
        unchanged = False  # the file's parameters replace what no longer unseals
    if unchanged:
        return
    context = _session_context(project, session_id, "parameters")
    tx.execute(
        "UPDATE auth_sessions SET parameters=?, source='CODE', updated_at=? WHERE project=? AND id=?",
        (box.seal(parameters, context), tx.now, project, session_id),
    )
    release(tx, "auth_session", _session_key(project, session_id))
    tx.emit("authsession.updated", project=project, session_id=session_id, source="CODE")


def get_session(db: sqlite_utils.Database, project: str, session_id: str) -> AuthSessionRecord | None:
    row = db.conn.execute(
        f"SELECT {_SESSION_COLUMNS} FROM auth_sessions WHERE project=? AND id=?", (project, session_id)
    ).fetchone()
    if row is None:
        return None
    try:
        return _session(row)
    except (msgspec.MsgspecError, TypeError, ValueError) as e:
        raise _unreadable(f"auth session '{session_id}'", f"{type(e).__name__}: {e}") from None


def list_sessions(db: sqlite_utils.Database, project: str) -> list[AuthSessionRecord]:
    """The project's sessions by id; ones that no longer decode are left out (see ``list_sessions_checked``)."""
    return list_sessions_checked(db, project)[0]


def list_sessions_checked(
    db: sqlite_utils.Database, project: str
) -> tuple[list[AuthSessionRecord], list[tuple[str, str]]]:
    """The project's sessions, and (``project/id``, why) for each that no longer decodes."""
    rows = db.conn.execute(
        f"SELECT {_SESSION_COLUMNS} FROM auth_sessions WHERE project=? ORDER BY id", (project,)
    ).fetchall()
    return decode_rows(rows, _session, lambda row: _session_key(row[0], row[1]))


def delete_session(tx: Tx, project: str, session_id: str) -> bool:
    """Delete the session; its operations stay, as history, those unfinished canceled. False when
    there was none."""
    deleted = tx.execute("DELETE FROM auth_sessions WHERE project=? AND id=?", (project, session_id)).rowcount
    if deleted:
        release(tx, "auth_session", _session_key(project, session_id))
        tx.emit("authsession.deleted", project=project, session_id=session_id)
        placeholders = ", ".join("?" * len(UNFINISHED))
        unfinished = tx.execute(
            f"SELECT id FROM auth_operations WHERE project=? AND session_id=? AND status IN ({placeholders})",
            (project, session_id, *UNFINISHED),
        ).fetchall()
        for (op_id,) in unfinished:
            try:
                update_operation(tx, op_id, "canceled", reason=DELETED)
            except RecordUnreadable:
                pass  # canceled all the same: only its event, which needs the decoded row, is left out
    return bool(deleted)


def unreadable_sessions(db: sqlite_utils.Database, box: SecretBox) -> list[tuple[str, str]]:
    """(``project/id``, why) for every stored session whose record or sealed values no longer read,
    for quarantine at start; quarantined ones are left out."""
    keys = db.conn.execute(
        "SELECT project, id FROM auth_sessions WHERE project || '/' || id NOT IN "
        "(SELECT record_id FROM quarantine WHERE kind='auth_session') ORDER BY project, id"
    ).fetchall()
    bad: list[tuple[str, str]] = []
    for project, session_id in keys:
        try:
            get_session(db, project, session_id)
            session_secrets(db, box, project, session_id)
        except RecordUnreadable as e:
            bad.append((_session_key(project, session_id), e.message))
    return bad


def session_secrets(db: sqlite_utils.Database, box: SecretBox, project: str, session_id: str) -> AuthSecrets:
    """What a create, check or run needs: the session's parameters, state and proxy, unsealed."""
    row = db.conn.execute(
        "SELECT parameters, state, proxy FROM auth_sessions WHERE project=? AND id=?", (project, session_id)
    ).fetchone()
    if row is None:
        raise _missing(project, session_id)
    values = []
    for column, blob in zip(("parameters", "state", "proxy"), row, strict=True):
        try:
            values.append(None if blob is None else box.unseal(blob, _session_context(project, session_id, column)))
        except SecretError as e:
            raise _unreadable(f"auth session '{session_id}'", f"its {column}: {e}") from None
    parameters, state, proxy = values
    if proxy is not None and not isinstance(proxy, str):
        raise _unreadable(f"auth session '{session_id}'", "its proxy is not a string")
    return AuthSecrets(parameters=parameters, state=state, proxy=proxy)


def set_parameters(tx: Tx, box: SecretBox, project: str, session_id: str, parameters: Any, proxy: str | None) -> None:
    """Replace the parameters and the proxy (None: no proxy) an update will create the session with."""
    _require(tx.db, project, session_id)
    tx.execute(
        "UPDATE auth_sessions SET parameters=?, proxy=?, proxy_masked=?, updated_at=? WHERE project=? AND id=?",
        (box.seal(parameters, _session_context(project, session_id, "parameters")),
         _seal_optional(box, proxy, _session_context(project, session_id, "proxy")), mask_proxy(proxy), tx.now,
         project, session_id),
    )  # fmt: skip
    release(tx, "auth_session", _session_key(project, session_id))
    tx.emit("authsession.updated", project=project, session_id=session_id)


def save_state(
    tx: Tx, box: SecretBox, project: str, session_id: str, state: Any, status: SessionStatus = "READY"
) -> None:
    """Keep the storage state a create captured; the session is ``status`` (READY) from now."""
    _require(tx.db, project, session_id)
    tx.execute(
        "UPDATE auth_sessions SET state=?, status=?, updated_at=?, last_checked_at=? WHERE project=? AND id=?",
        (box.seal(state, _session_context(project, session_id, "state")), status, tx.now, tx.now, project,
         session_id),
    )  # fmt: skip
    tx.emit("authsession.updated", project=project, session_id=session_id, status=status, has_state=True)


def set_status(tx: Tx, project: str, session_id: str, status: SessionStatus) -> None:
    _require(tx.db, project, session_id)
    changed = tx.execute(
        "UPDATE auth_sessions SET status=?, updated_at=? WHERE project=? AND id=? AND status IS NOT ?",
        (status, tx.now, project, session_id, status),
    ).rowcount
    if changed:
        tx.emit("authsession.status", project=project, session_id=session_id, status=status)


def mark_checked(tx: Tx, project: str, session_id: str, at: str) -> None:
    """A check found the session valid at ``at`` (no event: checks run before every attempt)."""
    _require(tx.db, project, session_id)
    tx.execute("UPDATE auth_sessions SET last_checked_at=? WHERE project=? AND id=?", (at, project, session_id))


def import_state(tx: Tx, box: SecretBox, project: str, session_id: str, state: Any) -> None:
    """A recorded login (RECORDER): creates the session, or replaces an existing one's state; READY."""
    if not _exists(tx.db, project, session_id):
        create_session(tx, box, project, session_id, "RECORDER", None, None, {})
    save_state(tx, box, project, session_id, state, "READY")
    release(tx, "auth_session", _session_key(project, session_id))


# -- operations ---------------------------------------------------------------------------

_OPERATION_COLUMNS = "id, project, session_id, kind, status, run_id, error, reason, created_at, updated_at"


def _operation(row: tuple[Any, ...]) -> AuthOperation:
    id_, project, session_id, kind, status, run_id, error, reason, created_at, updated_at = row
    fields = {
        "id": id_,
        "project": project,
        "session_id": session_id,
        "kind": kind,
        "status": status,
        "run_id": run_id,
        "error": _loads(error),
        "reason": _loads(reason),
        "created_at": created_at,
        "updated_at": updated_at,
    }
    return msgspec.convert(fields, AuthOperation)


def _decoded_operation(row: tuple[Any, ...]) -> AuthOperation:
    try:
        return _operation(row)
    except (msgspec.MsgspecError, TypeError, ValueError) as e:
        raise _unreadable(f"auth session operation '{row[0]}'", f"{type(e).__name__}: {e}") from None


def _emit_operation(tx: Tx, op: AuthOperation) -> None:
    # Only the codes of error and reason: their messages may quote what a login script printed.
    codes = {
        name: value.get("code")
        for name, value in (("error", op.error), ("reason", op.reason))
        if isinstance(value, dict) and value.get("code") is not None
    }
    tx.emit(
        "authsession.operation",
        project=op.project,
        run_id=op.run_id,
        session_id=op.session_id,
        operation_id=op.id,
        kind=op.kind,
        status=op.status,
        **{f"{name}_code": code for name, code in codes.items()},
    )


def new_operation(
    tx: Tx, box: SecretBox, project: str, session_id: str, kind: OperationKind, request: dict[str, Any]
) -> AuthOperation:
    """A pending operation; its request (which may hold parameters and a proxy) is sealed."""
    op = AuthOperation(
        id=new_uuid(),
        project=project,
        session_id=session_id,
        kind=kind,
        status="pending",
        run_id=None,
        error=None,
        reason=None,
        created_at=tx.now,
        updated_at=tx.now,
    )
    tx.execute(
        "INSERT INTO auth_operations (id, project, session_id, kind, status, request, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, 'pending', ?, ?, ?)",
        (op.id, project, session_id, kind, box.seal(request, _operation_context(op.id)), tx.now, tx.now),
    )
    _emit_operation(tx, op)
    return op


def operation_request(db: sqlite_utils.Database, box: SecretBox, op_id: str) -> dict[str, Any]:
    row = db.conn.execute("SELECT request FROM auth_operations WHERE id=?", (op_id,)).fetchone()
    if row is None:
        raise RecordMissing(f"operation '{op_id}' not found", details={"field": "operationId"})
    try:
        request = box.unseal(row[0], _operation_context(op_id))
    except SecretError as e:
        raise _unreadable(f"auth session operation '{op_id}'", f"its request: {e}") from None
    if not isinstance(request, dict):
        raise _unreadable(f"auth session operation '{op_id}'", "its request is not an object")
    return request


def update_operation(
    tx: Tx,
    op_id: str,
    status: OperationStatus,
    *,
    run_id: str | None = None,
    error: dict[str, Any] | None = None,
    reason: dict[str, Any] | None = None,
) -> AuthOperation:
    """Move an unfinished operation on (``run_id`` None keeps the one recorded); a finished one
    is left as it is and returned unchanged, so a late report cannot overwrite a cancel."""
    placeholders = ", ".join("?" * len(UNFINISHED))
    changed = tx.execute(
        "UPDATE auth_operations SET status=?, run_id=COALESCE(?, run_id), error=?, reason=?, updated_at=? "
        f"WHERE id=? AND status IN ({placeholders})",
        (status, run_id, _dumps(error), _dumps(reason), tx.now, op_id, *UNFINISHED),
    ).rowcount
    row = tx.execute(f"SELECT {_OPERATION_COLUMNS} FROM auth_operations WHERE id=?", (op_id,)).fetchone()
    if row is None:
        raise RecordMissing(f"operation '{op_id}' not found", details={"field": "operationId"})
    op = _decoded_operation(row)
    if changed:
        _emit_operation(tx, op)
    return op


def get_operation(db: sqlite_utils.Database, project: str, kind: OperationKind, op_id: str) -> AuthOperation | None:
    row = db.conn.execute(
        f"SELECT {_OPERATION_COLUMNS} FROM auth_operations WHERE id=? AND project=? AND kind=?", (op_id, project, kind)
    ).fetchone()
    return None if row is None else _decoded_operation(row)


def unfinished_operations(db: sqlite_utils.Database) -> list[AuthOperation]:
    return unfinished_operations_checked(db)[0]


def unfinished_operations_checked(db: sqlite_utils.Database) -> tuple[list[AuthOperation], list[tuple[str, str]]]:
    """Operations an earlier process accepted and did not finish, oldest first, for recovery at
    start; quarantined ones are left out, and ones that no longer decode come back as (id, why)."""
    placeholders = ", ".join("?" * len(UNFINISHED))
    rows = db.conn.execute(
        f"SELECT {_OPERATION_COLUMNS} FROM auth_operations WHERE status IN ({placeholders}) "
        "AND id NOT IN (SELECT record_id FROM quarantine WHERE kind='auth_operation') ORDER BY created_at, rowid",
        UNFINISHED,
    ).fetchall()
    return decode_rows(rows, _operation, lambda row: row[0])


# -- key rotation -------------------------------------------------------------------------


class ResealCounts(msgspec.Struct, frozen=True):
    resealed: int  # now sealed with the new key
    already: int  # sealed with the new key before (an interrupted rotation run again)
    unreadable: int  # sealed with neither key, or damaged: left as they were


def _sealed_cells(db: sqlite_utils.Database) -> Iterator[tuple[str, str, tuple[Any, ...], bytes, bytes]]:
    """(table, column, row key, blob, context) of every sealed value."""
    for project, session_id, *blobs in db.conn.execute(
        "SELECT project, id, parameters, state, proxy FROM auth_sessions"
    ).fetchall():
        for column, blob in zip(("parameters", "state", "proxy"), blobs, strict=True):
            if blob is not None:
                yield (
                    "auth_sessions",
                    column,
                    (project, session_id),
                    blob,
                    _session_context(project, session_id, column),
                )
    for op_id, blob in db.conn.execute("SELECT id, request FROM auth_operations").fetchall():
        yield "auth_operations", "request", (op_id,), blob, _operation_context(op_id)


_WHERE = {"auth_sessions": "project=? AND id=?", "auth_operations": "id=?"}


def reseal_all(tx: Tx, old: SecretBox, new: SecretBox) -> ResealCounts:
    """Seal every sealed value with ``new`` instead of ``old``, in the caller's one transaction."""
    resealed = already = unreadable = 0
    for table, column, key, blob, context in list(_sealed_cells(tx.db)):
        found = blob_key_id(blob) if isinstance(blob, bytes) else None
        if found == new.key_id:
            already += 1
            continue
        try:
            sealed = rotate(old, new, blob, context)
        except SecretError:
            unreadable += 1
            continue
        tx.execute(f"UPDATE {table} SET {column}=? WHERE {_WHERE[table]}", (sealed, *key))
        resealed += 1
    return ResealCounts(resealed=resealed, already=already, unreadable=unreadable)
