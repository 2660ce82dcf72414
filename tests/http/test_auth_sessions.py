"""The AuthSession routes over real HTTP requests and a real store.

The AuthSessions actor is the one part stood in for: ``RecordingActor`` writes sessions and
operations through the store's own functions, as the actor does, and records what it was asked.
Answers are parsed with Intuned's own client models, which is what wire compatibility means.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from intuned_client import AsyncIntunedClient, models
from pydantic import TypeAdapter

from intunedd.actors.bus import run_bus
from intunedd.actors.store import StoreHandle, run_store
from intunedd.config import Settings
from intunedd.http.app import create_app
from intunedd.http.auth_schemas import MAX_STATE_BYTES, CreateSessionBody, UpdateSessionBody, ValidateSessionBody
from intunedd.http.handles import Handles
from intunedd.http.records import Records
from intunedd.ids import new_uuid
from intunedd.secrets import SecretBox
from intunedd.store import auth_queries
from intunedd.store.auth_queries import AuthOperation, AuthSessionRecord, OperationKind, OperationStatus
from intunedd.store.db import open_db
from intunedd.store.keys import insert_api_key
from intunedd.store.queries import Tx

KEY = "test-key-0123456789"
HEADERS = {"x-api-key": KEY}
SESSIONS = "/api/v1/workspace/ws/projects/shop/auth-sessions"
PARAMETERS = {"username": "ann", "password": "parameter-secret-1"}
PROXY = "http://bob:proxy-secret-2@proxy.example:8080"
STATE = {
    "cookies": [{"name": "sid", "value": "cookie-secret-3", "domain": "x.test", "path": "/", "expires": -1,
                 "httpOnly": True, "secure": True, "sameSite": "Lax"}],
    "origins": [{"origin": "https://x.test", "localStorage": [{"name": "token", "value": "storage-secret-4"}]}],
}  # fmt: skip
SECRETS = ("parameter-secret-1", "proxy-secret-2", "cookie-secret-3", "storage-secret-4")


@dataclasses.dataclass(frozen=True)
class FixedClock:
    moment: datetime = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.moment


def _create(tx: Tx, box: SecretBox, project: str, session_id: str, body: CreateSessionBody) -> AuthOperation:
    request = msgspec.to_builtins(body)
    auth_queries.create_session(tx, box, project, session_id, "CREDENTIALS", body.parameters, body.proxy, {})
    return auth_queries.new_operation(tx, box, project, session_id, "create", request)


def _update(tx: Tx, box: SecretBox, project: str, session_id: str, body: UpdateSessionBody) -> AuthOperation:
    auth_queries.set_parameters(tx, box, project, session_id, body.parameters, body.proxy)
    return auth_queries.new_operation(tx, box, project, session_id, "update", msgspec.to_builtins(body))


def _validate(tx: Tx, box: SecretBox, project: str, session_id: str, body: ValidateSessionBody) -> AuthOperation:
    auth_queries._require(tx.db, project, session_id)
    return auth_queries.new_operation(tx, box, project, session_id, "validate", msgspec.to_builtins(body))


@dataclasses.dataclass
class RecordingActor:
    """A stand-in for the AuthSessions actor's handle (``AuthSessionsApi``)."""

    store: StoreHandle
    box: SecretBox
    calls: list[tuple[str, str, str | None, Any]] = dataclasses.field(default_factory=list)

    async def start_create(self, project: str, body: CreateSessionBody) -> AuthOperation:
        self.calls.append(("create", project, body.id, body))
        return await self.store.write(_create, self.box, project, body.id or new_uuid(), body)

    async def start_update(self, project: str, session_id: str, body: UpdateSessionBody) -> AuthOperation:
        self.calls.append(("update", project, session_id, body))
        return await self.store.write(_update, self.box, project, session_id, body)

    async def start_validate(self, project: str, session_id: str, body: ValidateSessionBody) -> AuthOperation:
        self.calls.append(("validate", project, session_id, body))
        return await self.store.write(_validate, self.box, project, session_id, body)

    async def delete(self, project: str, session_id: str) -> bool:
        self.calls.append(("delete", project, session_id, None))
        return await self.store.write(auth_queries.delete_session, project, session_id)

    async def import_state(self, project: str, session_id: str, state: dict[str, Any]) -> AuthSessionRecord:
        self.calls.append(("import", project, session_id, state))
        await self.store.write(auth_queries.import_state, self.box, project, session_id, state)
        session = await self.store.read(auth_queries.get_session, project, session_id)
        assert session is not None
        return session


@dataclasses.dataclass
class Daemon:
    app: Any
    client: Any
    actor: RecordingActor
    store: StoreHandle

    async def create(self, **body: Any) -> str:
        response = await self.client.post(
            f"{SESSIONS}/create", json={"parameters": PARAMETERS, **body}, headers=HEADERS
        )
        assert response.status_code == 201, await response.get_data()
        return str((await response.get_json())["operationId"])

    async def finish(self, op_id: str, status: OperationStatus, **fields: Any) -> AuthOperation:
        return await self.store.write(auth_queries.update_operation, op_id, status, **fields)


async def start_daemon(nursery: trio.Nursery, tmp_path: Path, *, with_actor: bool = True) -> Daemon:
    bus = await nursery.start(partial(run_bus, buffer=100))
    db = open_db(tmp_path / "db.sqlite")
    store = await nursery.start(partial(run_store, db, bus.publisher(), clock=FixedClock()))
    await store.write(insert_api_key, "key-1", "tests", KEY)
    box = SecretBox(b"s" * 32)
    actor = RecordingActor(store, box)
    required = [
        f.name
        for f in dataclasses.fields(Handles)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    values: dict[str, Any] = dict.fromkeys(required)
    values |= {
        "settings": Settings(),
        "workspace_id": "ws",
        "records": Records(store),
        "secrets": box,
        "clock": FixedClock(),
        "auth_sessions": actor if with_actor else None,
    }
    app = create_app(Handles(**values))
    return Daemon(app, app.test_client(), actor, store)


@pytest.fixture
async def daemon(nursery: trio.Nursery, tmp_path: Path) -> Daemon:
    return await start_daemon(nursery, tmp_path)


def _parses(model: Any, body: Any) -> Any:
    return TypeAdapter(model).validate_python(body)


# -- sessions ----------------------------------------------------------------------------------


async def test_create_then_list_and_get_show_the_session_without_its_secrets(daemon: Daemon) -> None:
    op_id = await daemon.create(id="shop-login", proxy=PROXY, createAttempts=2, saveTrace=True)
    [call] = daemon.actor.calls
    assert call[:3] == ("create", "shop", "shop-login")
    assert (call[3].create_attempts, call[3].check_attempts, call[3].save_trace) == (2, 3, True)
    assert op_id

    listed = await daemon.client.get(SESSIONS, headers=HEADERS)
    got = await daemon.client.get(f"{SESSIONS}/shop-login", headers=HEADERS)
    assert (listed.status_code, got.status_code) == (200, 200)
    [item] = _parses(models.AuthSessionsListResponse, await listed.get_json())
    shown = _parses(models.AuthSessionsGetResponse, await got.get_json())
    assert (item.id, item.type, item.status) == (shown.id, shown.type, shown.status) == (
        "shop-login", "CREDENTIALS", "PENDING"
    )  # fmt: skip
    body = await got.get_json()
    assert body["proxy"] == "http://bob:****@proxy.example:8080"
    assert (body["source"], body["hasState"], body["createdAt"]) == ("API", False, "2026-12-01T12:00:00.000Z")


async def test_no_get_answer_holds_a_parameter_cookie_or_proxy_password(daemon: Daemon) -> None:
    await daemon.create(id="a", proxy=PROXY)
    imported = await daemon.client.put(f"{SESSIONS}/b/state", json=STATE, headers=HEADERS)
    assert imported.status_code == 200
    answers = [await imported.get_data()]
    for path in (SESSIONS, f"{SESSIONS}/a", f"{SESSIONS}/b"):
        response = await daemon.client.get(path, headers=HEADERS)
        assert response.status_code == 200
        answers.append(await response.get_data())
    text = b"".join(answers).decode()
    assert '"id":"b"' in text and '"hasState":true' in text
    for secret in SECRETS:
        assert secret not in text


async def test_import_makes_a_ready_recorder_session_and_hands_the_state_over(daemon: Daemon) -> None:
    response = await daemon.client.put(f"{SESSIONS}/recorded/state", json=STATE, headers=HEADERS)
    body = await response.get_json()
    assert (response.status_code, body["type"], body["status"], body["hasState"]) == (200, "RECORDER", "READY", True)
    [(kind, project, session_id, state)] = daemon.actor.calls
    assert (kind, project, session_id) == ("import", "shop", "recorded")
    assert state["cookies"][0]["value"] == "cookie-secret-3"
    assert state["origins"] == STATE["origins"]


async def test_delete_answers_204_then_the_session_is_gone(daemon: Daemon) -> None:
    await daemon.create(id="gone")
    deleted = await daemon.client.delete(f"{SESSIONS}/gone", headers=HEADERS)
    assert (deleted.status_code, await deleted.get_data()) == (204, b"")
    assert daemon.actor.calls[-1][:3] == ("delete", "shop", "gone")  # through the actor, which cancels its work
    missing = await daemon.client.get(f"{SESSIONS}/gone", headers=HEADERS)
    assert missing.status_code == 404
    again = await daemon.client.delete(f"{SESSIONS}/gone", headers=HEADERS)
    assert (again.status_code, (await again.get_json())["details"]) == (404, {"field": "authSessionId"})


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", f"{SESSIONS}/nope"),
        ("DELETE", f"{SESSIONS}/nope"),
        ("GET", f"{SESSIONS}/create/nope/result"),
        ("GET", f"{SESSIONS}/nope/update/nope/result"),
        ("GET", f"{SESSIONS}/nope/validate/nope/result"),
    ],
)
async def test_unknown_sessions_and_operations_are_404(daemon: Daemon, method: str, path: str) -> None:
    response = await daemon.client.open(path, method=method, headers=HEADERS)
    assert (response.status_code, (await response.get_json())["code"]) == (404, "not-found")


async def test_a_result_is_found_only_under_its_own_kind_and_session(daemon: Daemon) -> None:
    create_op = await daemon.create(id="one")
    await daemon.create(id="two")
    started = await daemon.client.post(f"{SESSIONS}/one/validate/start", json={}, headers=HEADERS)
    validate_op = (await started.get_json())["operationId"]
    for path in (
        f"{SESSIONS}/one/update/{create_op}/result",
        f"{SESSIONS}/one/validate/{create_op}/result",
        f"{SESSIONS}/two/validate/{validate_op}/result",
        f"{SESSIONS}/create/{validate_op}/result",
    ):
        assert (await daemon.client.get(path, headers=HEADERS)).status_code == 404, path
    found = await daemon.client.get(f"{SESSIONS}/one/validate/{validate_op}/result", headers=HEADERS)
    assert found.status_code == 200


async def test_operations_without_an_api_key_are_401(daemon: Daemon) -> None:
    for method, path in (("GET", SESSIONS), ("POST", f"{SESSIONS}/create"), ("PUT", f"{SESSIONS}/x/state")):
        response = await daemon.client.open(path, method=method, json={"parameters": {}})
        assert response.status_code == 401
    assert daemon.actor.calls == []


async def test_without_the_actor_operations_are_503_and_reads_still_answer(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    daemon = await start_daemon(nursery, tmp_path, with_actor=False)
    started = await daemon.client.post(f"{SESSIONS}/create", json={"parameters": {}}, headers=HEADERS)
    assert started.status_code == 503
    assert (await daemon.client.get(SESSIONS, headers=HEADERS)).status_code == 200


async def test_a_storage_state_over_its_bound_is_413(daemon: Daemon) -> None:
    huge = {
        "cookies": [],
        "origins": [{"origin": "o", "localStorage": [{"name": "n", "value": "x" * MAX_STATE_BYTES}]}],
    }
    response = await daemon.client.put(f"{SESSIONS}/s/state", json=huge, headers=HEADERS)
    assert (response.status_code, (await response.get_json())["details"]) == (413, {"field": "body"})
    assert daemon.actor.calls == []


# -- operations and their results ----------------------------------------------------------------


async def test_update_and_validate_start_with_their_answers_and_defaults(daemon: Daemon) -> None:
    await daemon.create(id="s")
    updated = await daemon.client.post(
        f"{SESSIONS}/s/update", json={"parameters": {"username": "bo"}, "checkAttempts": 5}, headers=HEADERS
    )
    update_answer = _parses(models.AuthSessionsUpdateStartResponse, await updated.get_json())
    assert (updated.status_code, update_answer.status) == (201, "started")
    validated = await daemon.client.post(f"{SESSIONS}/s/validate/start", headers=HEADERS)
    validate_answer = _parses(models.AuthSessionsValidateStartResponse, await validated.get_json())
    assert (validated.status_code, validate_answer.status) == (201, "pending")
    _, (_, _, _, update), (_, _, _, validate) = daemon.actor.calls
    assert (update.parameters, update.check_attempts, update.create_attempts) == ({"username": "bo"}, 5, 3)
    assert validate == ValidateSessionBody()
    assert (validate.auto_recreate, validate.request_timeout) == (True, 600)


async def test_update_of_an_unknown_session_is_404(daemon: Daemon) -> None:
    response = await daemon.client.post(f"{SESSIONS}/nope/update", json={"parameters": {}}, headers=HEADERS)
    assert response.status_code == 404


async def test_create_of_an_existing_id_is_409(daemon: Daemon) -> None:
    await daemon.create(id="twice")
    response = await daemon.client.post(f"{SESSIONS}/create", json={"id": "twice", "parameters": {}}, headers=HEADERS)
    assert (response.status_code, (await response.get_json())["details"]) == (409, {"field": "id"})


ERROR = {"code": "create-attempts-failed", "category": "auth", "message": "login failed 3 times", "retirable": False}
REASON = {"type": "cancelled-user-action", "message": "canceled by the user"}
OUTCOMES: list[tuple[OperationStatus, dict[str, Any], Any]] = [
    ("pending", {}, {"status": "pending"}),
    ("in_progress", {"run_id": "run-7"}, {"status": "in_progress", "runId": "run-7"}),
    ("done", {}, {"status": "done", "authSessionId": "s"}),
    ("failed", {"error": ERROR}, {"status": "failed", "message": "login failed 3 times", "error": ERROR}),
    ("canceled", {"reason": REASON}, {"status": "canceled", "message": "canceled by the user", "reason": REASON}),
]
RESULT_MODELS = {
    "create": models.AuthSessionsCreateResultResponse,
    "update": models.AuthSessionsUpdateResultResponse,
    "validate": models.AuthSessionsValidateResultResponse,
}


@pytest.mark.parametrize("kind", ["create", "update", "validate"])
@pytest.mark.parametrize(("status", "fields", "expected"), OUTCOMES, ids=[o[0] for o in OUTCOMES])
async def test_every_result_status_as_intuned_answers_it(
    daemon: Daemon, kind: OperationKind, status: OperationStatus, fields: dict[str, Any], expected: Any
) -> None:
    op_id = await daemon.create(id="s")
    result_path = f"{SESSIONS}/create/{op_id}/result"
    if kind != "create":
        path = f"{SESSIONS}/s/update" if kind == "update" else f"{SESSIONS}/s/validate/start"
        started = await daemon.client.post(path, json={"parameters": {}}, headers=HEADERS)
        op_id = (await started.get_json())["operationId"]
        result_path = f"{SESSIONS}/s/{kind}/{op_id}/result"
    if status != "pending":
        await daemon.finish(op_id, status, **fields)
    response = await daemon.client.get(result_path, headers=HEADERS)
    body = await response.get_json()
    assert (response.status_code, body) == (200, expected)
    assert _parses(RESULT_MODELS[kind], body).status == status


async def test_unknown_error_codes_still_parse_with_the_original_kept(daemon: Daemon) -> None:
    op_id = await daemon.create(id="s")
    await daemon.finish(op_id, "failed", error={"code": "auth-session-locked", "message": "busy"})
    body = await (await daemon.client.get(f"{SESSIONS}/create/{op_id}/result", headers=HEADERS)).get_json()
    parsed = _parses(models.AuthSessionsCreateResultResponse, body)
    assert (parsed.error.code, parsed.error.category, parsed.error.details) == (
        "unexpected", "infrastructure", {"code": "auth-session-locked"}
    )  # fmt: skip


async def test_intuneds_own_client_drives_every_operation(daemon: Daemon) -> None:
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=daemon.app))
    client = AsyncIntunedClient(api_key=KEY, workspace_id="ws", base_url="http://d/api/v1/workspace", client=http)
    sessions = client.projects.auth_sessions
    started = await sessions.create.start(project_name="shop", body={"id": "c", "parameters": PARAMETERS})
    assert (await sessions.create.result(project_name="shop", operation_id=started.operation_id)).status == "pending"
    await daemon.finish(started.operation_id, "done")
    done = await sessions.create.result(project_name="shop", operation_id=started.operation_id)
    assert (done.status, done.auth_session_id) == ("done", "c")
    updated = await sessions.update.start(project_name="shop", auth_session_id="c", body={"parameters": {}})
    update_result = await sessions.update.result(
        project_name="shop", auth_session_id="c", operation_id=updated.operation_id
    )
    validated = await sessions.validate.start(project_name="shop", auth_session_id="c", body={})
    await daemon.finish(validated.operation_id, "failed", error={"code": "check-attempts-failed", "message": "x"})
    validate_result = await sessions.validate.result(
        project_name="shop", auth_session_id="c", operation_id=validated.operation_id
    )
    assert (update_result.status, validate_result.status) == ("pending", "failed")
    assert [s.id for s in await sessions.list(project_name="shop")] == ["c"]
    assert (await sessions.get(project_name="shop", auth_session_id="c")).type == "CREDENTIALS"
    await sessions.delete(project_name="shop", auth_session_id="c")
    assert await sessions.list(project_name="shop") == []
    await http.aclose()


# -- bad bodies ----------------------------------------------------------------------------------

BAD_BODIES = [
    ("create", {}, "parameters"),
    ("create", {"parameters": []}, "parameters"),
    ("create", {"parameters": {}, "id": "has space"}, "id"),
    ("create", {"parameters": {}, "id": "a\n"}, "id"),
    ("create", {"parameters": {}, "id": "x" * 101}, "id"),
    ("create", {"parameters": {}, "createAttempts": 0}, "createAttempts"),
    ("create", {"parameters": {}, "checkAttempts": 11}, "checkAttempts"),
    ("create", {"parameters": {}, "proxy": "ftp://h"}, "proxy"),
    ("create", {"parameters": {}, "saveTrace": "yes"}, "saveTrace"),
    ("update", {"proxy": "http://h:1"}, "parameters"),
    ("update", {"parameters": {}, "createAttempts": 100}, "createAttempts"),
    ("validate", {"requestTimeout": 0}, "requestTimeout"),
    ("validate", {"requestTimeout": 10**9}, "requestTimeout"),
    ("validate", {"autoRecreate": "no"}, "autoRecreate"),
    ("validate", {"proxy": "nonsense"}, "proxy"),
    ("import", {"origins": []}, "cookies"),
    ("import", {"cookies": [{"name": "a"}]}, "cookies[0].value"),
    ("import", {"cookies": [], "origins": [{"origin": "o", "localStorage": [{"name": 1}]}]},
     "origins[0].localStorage[0].name"),
    ("import", {"cookies": [{"name": "a", "value": "b", "domain": "d", "sameSite": "Sometimes"}]},
     "cookies[0].sameSite"),
]  # fmt: skip
PATHS = {
    "create": ("POST", f"{SESSIONS}/create"),
    "update": ("POST", f"{SESSIONS}/s/update"),
    "validate": ("POST", f"{SESSIONS}/s/validate/start"),
    "import": ("PUT", f"{SESSIONS}/s/state"),
}


@pytest.mark.parametrize(("kind", "body", "field"), BAD_BODIES)
async def test_a_bad_body_is_400_naming_the_field(daemon: Daemon, kind: str, body: Any, field: str) -> None:
    method, path = PATHS[kind]
    response = await daemon.client.open(path, method=method, json=body, headers=HEADERS)
    answer = await response.get_json()
    assert (response.status_code, answer["code"], answer["details"]) == (400, "bad-request", {"field": field})
    assert daemon.actor.calls == []


async def test_an_import_under_a_bad_session_id_is_400(daemon: Daemon) -> None:
    response = await daemon.client.put(f"{SESSIONS}/bad%20id/state", json=STATE, headers=HEADERS)
    assert (response.status_code, (await response.get_json())["details"]) == (400, {"field": "authSessionId"})


async def test_a_body_nested_too_deep_is_400(daemon: Daemon) -> None:
    deep: Any = 1
    for _ in range(200):
        deep = {"a": deep}
    response = await daemon.client.post(f"{SESSIONS}/create", json={"parameters": deep}, headers=HEADERS)
    assert (response.status_code, (await response.get_json())["details"]) == (400, {"field": "body"})


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
_field_names = st.sampled_from(
    ["id", "parameters", "proxy", "createAttempts", "checkAttempts", "saveTrace", "autoRecreate", "requestTimeout",
     "cookies", "origins", "sessionStorage", "name", "value"]
)  # fmt: skip
_bodies = (
    st.binary(max_size=200)
    | _json_values.map(lambda v: json.dumps(v).encode())
    | st.dictionaries(_field_names, _json_values, max_size=6).map(lambda v: json.dumps(v).encode())
)


async def test_junk_bodies_never_get_a_5xx(daemon: Daemon) -> None:
    answers: list[int] = []

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(kind=st.sampled_from(sorted(PATHS)), raw=_bodies)
    def check(kind: str, raw: bytes) -> None:
        method, path = PATHS[kind]
        target = path.replace("/s/", "/junk/") if kind == "import" else path
        response = trio.from_thread.run(partial(daemon.client.open, target, method=method, data=raw, headers=HEADERS))
        answers.append(response.status_code)
        assert response.status_code < 500

    await trio.to_thread.run_sync(check)
    assert 400 in answers


GOLDEN = Path(__file__).parent / "golden"


@pytest.mark.parametrize(
    ("pattern", "kinds"),
    [
        ("auth_result_*.json", list(RESULT_MODELS.values())),
        ("auth_session*.json", [models.AuthSessionsGetResponse, models.AuthSessionsListResponseValueItem]),
        ("auth_started.json", [models.AuthSessionsCreateStartResponse, models.AuthSessionsUpdateStartResponse]),
        ("auth_validate_started.json", [models.AuthSessionsValidateStartResponse]),
    ],
)
def test_golden_bodies_parse_with_intunes_client(pattern: str, kinds: list[Any]) -> None:
    files = sorted(GOLDEN.glob(pattern))
    assert files
    for file in files:
        for kind in kinds:
            _parses(kind, json.loads(file.read_text()))
