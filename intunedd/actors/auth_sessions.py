"""The AuthSessions actor: runs the create, update and validate operations of the API, and makes a
run's session valid before each of its attempts (spec §5.4).

Every session has one ``SessionGate`` here, shared by everything that uses the session: runs'
checks go side by side, a recreation happens once for all who need it, and the state the gate
holds is the one stored (every change of it goes through this actor). Operations run as tasks of
the actor's nursery; one the daemon did not finish (killed mid-creation) runs again at start.

Deleting a session goes through here too: its gate is forgotten, and whatever is validating it
(an operation, a run's check) is cancelled at once, so nothing waits on a session that is gone.
A run holds its session for the whole attempt (``using``): shared by default, or alone when it
asks for ``exclusive`` use (``auth/leases.py`` decides who may).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING, Any, Literal, NoReturn

import msgspec
import trio

from ..auth.leases import SessionUse
from ..auth.validation import Limits, SessionGate, ValidationFailed, recreate
from ..auth.worker_attempts import WorkerAttempts
from ..clock import Clock, iso
from ..config import Settings
from ..errors import BadRequest, NotFound
from ..functions_token import Backend
from ..ids import nanoid, new_uuid
from ..messages import ProjectVersion
from ..policy.attempts import error_object
from ..secrets import SecretBox
from ..store import auth_queries, queries
from ..store.auth_queries import AuthOperation, AuthSecrets, AuthSessionRecord
from ..store.errors import RecordMissing, RecordUnreadable
from .attempts import Attempts, ProjectKeyValue
from .browser_pool import PoolHandle
from .store import StoreHandle

if TYPE_CHECKING:  # the HTTP layer's bodies; importing it here would be circular (wire -> runner -> here)
    from ..http.auth_schemas import CreateSessionBody, UpdateSessionBody, ValidateSessionBody

log = logging.getLogger(__name__)
DEFAULT_TIMEOUT_S = 600.0
NOT_FOUND = "auth-session-not-found"
IN_USE = "auth-session-already-in-use"
UNREADABLE = "auth-session-unreadable"  # its stored record or sealed values no longer read
Key = tuple[str, str]  # (project, session id)


class SessionUnavailable(Exception):
    """A run's session cannot be used at all (it does not exist, or no longer reads); ``code`` names why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class SessionInUse(Exception):
    """A run asked for exclusive use of a session another attempt is using: it is refused, not queued."""

    def __init__(self, session_id: str) -> None:
        message = f"AuthSession '{session_id}' is in use by another run, and this run asked for exclusive use of it"
        super().__init__(message)
        self.reason = {"type": IN_USE, "message": message, "details": {"authSessionId": session_id}}


class ValidSession(msgspec.Struct, frozen=True):
    """What an attempt runs with."""

    session_id: str
    state: Any
    parameters: Any  # None for RUNTIME and RECORDER sessions (get_auth_session_parameters() raises)
    proxy: str | None


class _AuthSessions:
    def __init__(
        self, store: StoreHandle, box: SecretBox, attempts: Attempts, settings: Settings, clock: Clock
    ) -> None:
        self.store = store
        self.box = box
        self.attempts = attempts
        self.settings = settings
        self.clock = clock
        self.gates: dict[Key, SessionGate] = {}
        # Unsealed secrets by the session's updated_at: a run's attempt reads the small record, not
        # the sealed columns, while the session does not change (every change moves updated_at).
        self.secrets: dict[Key, tuple[str, AuthSecrets]] = {}
        self.uses: dict[Key, SessionUse] = {}
        self.released: dict[Key, trio.Event] = {}  # set when a use of the session ends
        self.validating: dict[Key, set[trio.CancelScope]] = {}  # what a delete of the session cancels
        self.nursery: trio.Nursery | None = None

    # -- gates ----------------------------------------------------------------------------

    async def _gate(self, key: Key, state: Any) -> SessionGate:
        # Called inside ``_until_deleted``: a session deleted while its record was read gets no gate,
        # which would outlive it and serve its state to a new session of the same id.
        await trio.lowlevel.checkpoint_if_cancelled()
        if key not in self.gates:
            project, session_id = key

            async def save(state: Any) -> None:
                await self.store.write(auth_queries.save_state, self.box, project, session_id, state, "READY")

            self.gates[key] = SessionGate(
                state,
                save,
                lambda: self.clock.now().timestamp(),
                check_window_s=self.settings.auth_sessions.check_window_s,
            )
        return self.gates[key]

    async def _secrets(self, record: AuthSessionRecord) -> AuthSecrets:
        key = (record.project, record.id)
        cached = self.secrets.get(key)
        if cached is not None and cached[0] == record.updated_at:
            return cached[1]
        secrets = await self.store.read(auth_queries.session_secrets, self.box, record.project, record.id)
        self.secrets[key] = (record.updated_at, secrets)
        return secrets

    def _forget(self, project: str, session_id: str) -> None:
        self.gates.pop((project, session_id), None)
        self.secrets.pop((project, session_id), None)

    @contextmanager
    def _until_deleted(self, key: Key) -> Iterator[trio.CancelScope]:
        """A scope that a delete of the session cancels; the caller sees ``cancelled_caught``."""
        scope = trio.CancelScope()
        self.validating.setdefault(key, set()).add(scope)
        try:
            with scope:
                yield scope
        finally:
            scopes = self.validating[key]
            scopes.discard(scope)
            if not scopes:
                del self.validating[key]

    async def delete(self, project: str, session_id: str) -> bool:
        """Delete the session now: its unfinished operations end canceled, and whatever is
        validating it stops at once (runs waiting on it then find it gone); False if there was none."""
        if not await self.store.write(auth_queries.delete_session, project, session_id):
            return False
        self._forget(project, session_id)
        for scope in self.validating.get((project, session_id), ()):
            scope.cancel()
        return True

    async def _project(self, name: str) -> ProjectVersion:
        found = next((p for p in await self.store.read(queries.current_projects) if p.name == name), None)
        if found is None:
            raise NotFound(f"project '{name}' is not deployed", details={"field": "projectName"})
        return found

    def _worker_attempts(
        self, project: ProjectVersion, session_id: str, parameters: Any, *, proxy: str | None, save_trace: bool,
        served_run_id: str | None = None, timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> WorkerAttempts:  # fmt: skip
        return WorkerAttempts(
            self.attempts, self.store, project, session_id, parameters,
            validation_id=nanoid(), served_run_id=served_run_id, proxy=proxy, timeout_s=timeout_s,
            save_trace=save_trace, kv=ProjectKeyValue(self.store, project.name),
        )  # fmt: skip

    # -- runs -----------------------------------------------------------------------------

    @asynccontextmanager
    async def using(self, project: ProjectVersion, ref: dict[str, Any], run_id: str) -> AsyncIterator[ValidSession]:
        """``valid_session``, held for as long as the caller's block (an attempt) runs: shared with
        other attempts, or alone when ``ref`` asks for ``exclusive`` use (SessionInUse when another
        attempt holds it). A shared use waits while an exclusive one holds the session."""
        key = (project.name, str(ref.get("id", "")))
        exclusive = ref.get("exclusive") is True
        with self._until_deleted(key) as waiting:
            await self._take(key, exclusive)
        if waiting.cancelled_caught:
            raise _gone(key[1])
        try:
            yield await self.valid_session(project, ref, run_id)
        finally:
            self._give_back(key, exclusive)

    async def _take(self, key: Key, exclusive: bool) -> None:
        while True:
            use = self.uses.setdefault(key, SessionUse())
            decision = use.decide(exclusive)
            if decision == "granted":
                use.take(exclusive)
                return
            if decision == "refused":
                raise SessionInUse(key[1])
            await self.released.setdefault(key, trio.Event()).wait()

    def _give_back(self, key: Key, exclusive: bool) -> None:
        use = self.uses[key]
        use.give_back(exclusive)
        if use.idle:
            del self.uses[key]
        released = self.released.pop(key, None)
        if released is not None:
            released.set()

    async def valid_session(self, project: ProjectVersion, ref: dict[str, Any], run_id: str) -> ValidSession:
        """The session ``ref`` (a run's ``authSession``) names, valid; ValidationFailed (the session is
        then EXPIRED) or SessionUnavailable (it does not exist, was deleted meanwhile, or no longer reads)
        otherwise."""
        key = (project.name, str(ref.get("id", "")))
        with self._until_deleted(key) as deleted:
            try:
                return await self._validated(project, ref, run_id, deleted)
            except RecordMissing:
                pass  # deleted between two reads; the delete cancels this scope too
            except RecordUnreadable as e:  # quarantined at start, or damaged since
                raise SessionUnavailable(UNREADABLE, f"AuthSession '{key[1]}' is set aside: {e.message}") from None
        raise _gone(key[1])

    async def _validated(
        self, project: ProjectVersion, ref: dict[str, Any], run_id: str, deleted: trio.CancelScope
    ) -> ValidSession:
        session_id = str(ref.get("id", ""))
        record = await self.store.read(auth_queries.get_session, project.name, session_id)
        if record is None:
            raise _gone(session_id)
        secrets = await self._secrets(record)
        proxy = ref.get("proxy") or secrets.proxy
        attempts = self._worker_attempts(
            project, session_id, secrets.parameters, proxy=proxy, save_trace=bool(ref.get("saveTrace", False)),
            served_run_id=run_id, timeout_s=float(ref.get("requestTimeout") or DEFAULT_TIMEOUT_S),
        )  # fmt: skip
        limits = Limits(
            check_attempts=int(ref.get("checkAttempts") or 3),
            create_attempts=int(ref.get("createAttempts") or 3),
            recreate=bool(ref.get("autoRecreate", True)) and record.type != "RECORDER",
        )
        gate = await self._gate((project.name, session_id), secrets.state)
        try:
            state = await gate.valid_state(attempts, limits)
        except ValidationFailed as e:
            e.last_attempt_error = attempts.last_error
            await self._failed(attempts, e, project.name, session_id)
            raise
        except trio.Cancelled:
            # Only a delete: when the daemon stops, the store stops too, and the next start ends the run.
            if deleted.cancel_called:
                await attempts.abandon(auth_queries.DELETED)
            raise
        if attempts.made:  # a check ran now; a check window's hit writes nothing
            await attempts.finish(None)
            await self.store.write(auth_queries.mark_checked, project.name, session_id, iso(self.clock.now()))
        parameters = secrets.parameters if record.type == "CREDENTIALS" else None
        return ValidSession(session_id, state, parameters, proxy)

    async def _failed(
        self, attempts: WorkerAttempts, failure: ValidationFailed, project: str, session_id: str
    ) -> dict[str, Any]:
        """Record a session that could not be made valid: EXPIRED, its validation run failed."""
        error = error_object(
            failure.code, failure.message, retryable=False, details={"lastAttemptError": failure.last_attempt_error}
        )
        await self.store.write(auth_queries.set_status, project, session_id, "EXPIRED")
        await attempts.finish(error)
        return error

    async def runtime_reference(self, project: ProjectVersion, ref: dict[str, Any]) -> dict[str, Any]:
        """A run's RUNTIME ``authSession`` with its ``runtimeInput`` moved into the (sealed) session."""
        session_id = await self._runtime_session(project, ref)
        return {**{k: v for k, v in ref.items() if k != "runtimeInput"}, "id": session_id}

    async def _runtime_session(self, project: ProjectVersion, ref: dict[str, Any]) -> str:
        """A RUNTIME session: its parameters come with the run; kept under its id (or one per input)."""
        session_id = str(ref.get("id") or "runtime-" + new_uuid())
        parameters = ref["runtimeInput"]
        record = await self.store.read(auth_queries.get_session, project.name, session_id)
        if record is None:
            await self.store.write(
                auth_queries.create_session, self.box, project.name, session_id, "RUNTIME", parameters, None, {}
            )
        else:
            secrets = await self.store.read(auth_queries.session_secrets, self.box, project.name, session_id)
            if secrets.parameters != parameters:
                await self.store.write(
                    auth_queries.set_parameters, self.box, project.name, session_id, parameters, secrets.proxy
                )
                self._forget(project.name, session_id)
        return session_id

    # -- operations -----------------------------------------------------------------------

    async def start_create(self, project_name: str, body: CreateSessionBody) -> AuthOperation:
        await self._project(project_name)
        session_id = body.id or new_uuid()
        options = {"createAttempts": body.create_attempts, "checkAttempts": body.check_attempts}
        await self.store.write(
            auth_queries.create_session, self.box, project_name, session_id, "CREDENTIALS", body.parameters,
            body.proxy, options,
        )  # fmt: skip
        return await self._operation(project_name, session_id, "create", msgspec.to_builtins(body))

    async def start_update(self, project_name: str, session_id: str, body: UpdateSessionBody) -> AuthOperation:
        await self._project(project_name)
        record = await self._record(project_name, session_id)
        if record.type == "RECORDER":
            raise BadRequest("a RECORDER session is updated by importing a new state", details={"field": "type"})
        secrets = await self.store.read(auth_queries.session_secrets, self.box, project_name, session_id)
        await self.store.write(
            auth_queries.set_parameters, self.box, project_name, session_id, body.parameters,
            body.proxy if body.proxy is not None else secrets.proxy,
        )  # fmt: skip
        return await self._operation(project_name, session_id, "update", msgspec.to_builtins(body))

    async def start_validate(self, project_name: str, session_id: str, body: ValidateSessionBody) -> AuthOperation:
        await self._project(project_name)
        await self._record(project_name, session_id)
        return await self._operation(project_name, session_id, "validate", msgspec.to_builtins(body))

    async def import_state(self, project_name: str, session_id: str, state: dict[str, Any]) -> AuthSessionRecord:
        await self._project(project_name)
        await self.store.write(auth_queries.import_state, self.box, project_name, session_id, state)
        gate = self.gates.get((project_name, session_id))
        if gate is not None:
            gate.state, gate.version, gate.checked_at = state, gate.version + 1, None
        return await self._record(project_name, session_id)

    async def _record(self, project: str, session_id: str) -> AuthSessionRecord:
        record = await self.store.read(auth_queries.get_session, project, session_id)
        if record is None:
            raise NotFound(f"AuthSession '{session_id}' not found", details={"field": "authSessionId"})
        return record

    async def _operation(
        self, project: str, session_id: str, kind: Literal["create", "update", "validate"], request: dict[str, Any]
    ) -> AuthOperation:
        op = await self.store.write(auth_queries.new_operation, self.box, project, session_id, kind, request)
        assert self.nursery is not None
        self.nursery.start_soon(self._perform, op)
        return op

    async def _perform(self, op: AuthOperation) -> None:
        """Run one operation to its end; whatever happens, it ends recorded: failed, at worst, or
        canceled when its session is deleted meanwhile (the delete records that)."""
        attempts: WorkerAttempts | None = None
        with self._until_deleted((op.project, op.session_id)) as deleted:
            try:
                request = await self.store.read(auth_queries.operation_request, self.box, op.id)
                project = await self._project(op.project)
                record = await self._record(op.project, op.session_id)
                secrets = await self._secrets(record)
                attempts = self._worker_attempts(
                    project, op.session_id, secrets.parameters, proxy=request.get("proxy") or secrets.proxy,
                    save_trace=bool(request.get("saveTrace")), timeout_s=float(request.get("requestTimeout") or 600),
                )  # fmt: skip
                await self.store.write(
                    auth_queries.update_operation, op.id, "in_progress", run_id=attempts.validation_id
                )
                await self._operate(op, request, record, secrets, attempts)
            except trio.Cancelled:
                if attempts is not None and deleted.cancel_called:
                    await attempts.abandon(auth_queries.DELETED)
                raise
            except (NotFound, RecordMissing):  # the session went before the operation could start
                await self.store.write(auth_queries.update_operation, op.id, "canceled", reason=auth_queries.DELETED)
            except Exception as e:  # noqa: BLE001 - one operation's failure must not end the actor
                log.exception("auth session operation %s failed", op.id)
                message = f"The operation failed inside the daemon: {type(e).__name__}"
                error = error_object("internal-server-error", message, retryable=True)
                with trio.CancelScope(shield=True):
                    try:
                        await self.store.write(auth_queries.update_operation, op.id, "failed", error=error)
                        if attempts is not None:
                            await attempts.finish(error)
                    except Exception:  # noqa: BLE001 - it stays unfinished, and runs again at the next start
                        log.exception("could not record the failure of auth session operation %s", op.id)

    async def _operate(
        self, op: AuthOperation, request: dict[str, Any], record: AuthSessionRecord, secrets: AuthSecrets,
        attempts: WorkerAttempts,
    ) -> None:  # fmt: skip
        limits = Limits(
            check_attempts=int(request.get("checkAttempts") or 3),
            create_attempts=int(request.get("createAttempts") or 3),
            recreate=bool(request.get("autoRecreate", True)) and record.type != "RECORDER",
        )
        gate = await self._gate((op.project, op.session_id), secrets.state)
        try:
            if op.kind == "validate":
                await gate.valid_state(attempts, limits)
            else:
                await gate.replace(lambda: recreate(attempts, limits))
        except ValidationFailed as e:
            e.last_attempt_error = attempts.last_error
            error = await self._failed(attempts, e, op.project, op.session_id)
            await self.store.write(auth_queries.update_operation, op.id, "failed", error=error)
            return
        await attempts.finish(None)
        await self.store.write(auth_queries.update_operation, op.id, "done")

    async def recover(self) -> None:
        """Set aside stored sessions and operations that no longer read (the rest keeps working),
        and run again the operations an earlier process did not finish."""
        bad_sessions = await self.store.read(auth_queries.unreadable_sessions, self.box)
        operations, bad_operations = await self.store.read(auth_queries.unfinished_operations_checked)
        for kind, bad in (("auth_session", bad_sessions), ("auth_operation", bad_operations)):
            for record_id, reason in bad:
                log.error("quarantined %s %s: %s", kind, record_id, reason)
                await self.store.write(queries.quarantine, kind, record_id, reason)
        assert self.nursery is not None
        for op in operations:
            log.info("auth session operation %s (%s of %s) was not finished: running it again", op.id, op.kind,
                     op.session_id)  # fmt: skip
            self.nursery.start_soon(self._perform, op)


def _gone(session_id: str) -> SessionUnavailable:
    return SessionUnavailable(NOT_FOUND, f"AuthSession '{session_id}' does not exist in this project")


class AuthSessionsHandle:
    """The routes' ``AuthSessionsApi`` and the runner's way to a valid session."""

    def __init__(self, service: _AuthSessions) -> None:
        self.start_create = service.start_create
        self.start_update = service.start_update
        self.start_validate = service.start_validate
        self.import_state = service.import_state
        self.valid_session = service.valid_session
        self.using = service.using
        self.delete = service.delete
        self.runtime_reference = service.runtime_reference


async def run_auth_sessions(
    store: StoreHandle,
    box: SecretBox,
    pool: PoolHandle,
    settings: Settings,
    *,
    clock: Clock,
    backend: Backend | None = None,
    task_status: trio.TaskStatus[AuthSessionsHandle] = trio.TASK_STATUS_IGNORED,
) -> NoReturn:
    service = _AuthSessions(store, box, Attempts(pool, settings, clock, backend), settings, clock)
    async with trio.open_nursery() as nursery:
        service.nursery = nursery
        await service.recover()
        task_status.started(AuthSessionsHandle(service))
        await trio.sleep_forever()
    raise AssertionError("unreachable")
