"""The backend functions Intuned's runtime calls, against a real store, as its helpers call them."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio

from intunedd.actors.bus import run_bus
from intunedd.actors.store import StoreHandle, run_store
from intunedd.config import RunSettings, Settings
from intunedd.functions_token import expiring, mint
from intunedd.http.app import create_app
from intunedd.http.handles import Handles
from intunedd.http.records import Records
from intunedd.secrets import SecretBox
from intunedd.store import auth_queries
from intunedd.store.db import open_db
from intunedd.workers import protocol

SECRET = b"k" * 32
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
MAX_RESULT_BYTES = 1024
BASE = "/api/ws/functions/shop"


@dataclasses.dataclass
class FixedClock:
    moment: datetime

    def now(self) -> datetime:
        return self.moment


CLOCK = FixedClock(NOW)


def _token(project: str = "shop", lifetime_s: int = 600) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint(SECRET, expiring(project, 'run-1', NOW, lifetime_s))}"}


async def functions_app(
    nursery: trio.Nursery,
    tmp_path: Path,
    max_result_bytes: int = MAX_RESULT_BYTES,
    seed: Callable[[StoreHandle, SecretBox], Awaitable[None]] | None = None,
) -> Any:
    """The app over a real store; handles no backend function uses are left empty (None)."""
    bus = await nursery.start(partial(run_bus, buffer=10))
    store = await nursery.start(partial(run_store, open_db(tmp_path / "db.sqlite"), bus.publisher(), clock=CLOCK))
    required = [
        f.name
        for f in dataclasses.fields(Handles)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    values: dict[str, Any] = dict.fromkeys(required)
    values |= {
        "settings": Settings(runs=RunSettings(max_result_bytes=max_result_bytes)),
        "workspace_id": "ws",
        "records": Records(store),
        "signing_secret": SECRET,
        "secrets": SecretBox.open(tmp_path / "secrets.key"),
        "clock": CLOCK,
    }
    if seed is not None:
        await seed(store, values["secrets"])
    return create_app(Handles(**values))


@pytest.fixture
async def client(nursery: trio.Nursery, tmp_path: Path) -> Any:
    return (await functions_app(nursery, tmp_path)).test_client()


async def test_set_then_get_as_the_runtime_reads_it(client: Any) -> None:
    missing = await client.get(f"{BASE}/kv-store/count", headers=_token())
    assert (missing.status_code, await missing.get_json()) == (200, {"value": None})
    saved = await client.put(f"{BASE}/kv-store/count", json={"value": {"n": 1}}, headers=_token())
    assert (saved.status_code, await saved.get_json()) == (200, {})
    got = await client.get(f"{BASE}/kv-store/count", headers=_token())
    assert await got.get_json() == {"value": {"value": {"n": 1}}}


async def test_keys_with_slashes_are_one_key(client: Any) -> None:
    await client.put(f"{BASE}/kv-store/a/b", json={"value": 2}, headers=_token())
    assert await (await client.get(f"{BASE}/kv-store/a/b", headers=_token())).get_json() == {"value": {"value": 2}}
    assert await (await client.get(f"{BASE}/kv-store/a", headers=_token())).get_json() == {"value": None}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic abc"},
        {"Authorization": "Bearer nonsense"},
        {"Authorization": _token()["Authorization"] + "x"},
        {"x-api-key": "anything"},
    ],
)
async def test_without_a_valid_token_is_401(client: Any, headers: dict[str, str]) -> None:
    for method, body in (("GET", None), ("PUT", {"value": 1})):
        response = await client.open(f"{BASE}/kv-store/k", method=method, json=body, headers=headers)
        answer = await response.get_json()
        assert (response.status_code, answer["code"], answer["details"]) == (
            401,
            "unauthorized",
            {"field": "Authorization"},
        )


async def test_an_expired_token_is_401(client: Any) -> None:
    response = await client.get(f"{BASE}/kv-store/k", headers=_token(lifetime_s=-1))
    assert response.status_code == 401


async def test_another_projects_token_is_403_and_reads_nothing(client: Any) -> None:
    await client.put(f"{BASE}/kv-store/secret", json={"value": "mine"}, headers=_token())
    response = await client.get(f"{BASE}/kv-store/secret", headers=_token("other"))
    assert response.status_code == 403
    assert (await response.get_json())["details"] == {"field": "projectId"}
    other = await client.get("/api/ws/functions/other/kv-store/secret", headers=_token("other"))
    assert await other.get_json() == {"value": None}


async def test_another_workspace_is_403(client: Any) -> None:
    response = await client.get("/api/elsewhere/functions/shop/kv-store/k", headers=_token())
    assert response.status_code == 403


@pytest.mark.parametrize("key", ["a:b", "a%23b", "x" * (protocol.MAX_NAME_CHARS + 1)])
async def test_keys_the_runtime_refuses_are_400(client: Any, key: str) -> None:
    response = await client.put(f"{BASE}/kv-store/{key}", json={"value": 1}, headers=_token())
    answer = await response.get_json()
    assert (response.status_code, answer["details"]) == (400, {"field": "key"})


@pytest.mark.parametrize("body", [b"", b"{", b"[]", b'{"other": 1}'])
async def test_bad_bodies_are_400(client: Any, body: bytes) -> None:
    response = await client.put(f"{BASE}/kv-store/k", data=body, headers=_token())
    assert response.status_code == 400


async def test_values_over_the_store_limit_are_413_and_not_stored(client: Any) -> None:
    limit = protocol.max_from_worker_bytes(MAX_RESULT_BYTES)
    value = "x" * limit
    response = await client.put(f"{BASE}/kv-store/big", json={"value": value}, headers=_token())
    assert response.status_code == 413
    assert await (await client.get(f"{BASE}/kv-store/big", headers=_token())).get_json() == {"value": None}


async def test_auth_session_parameters_are_answered_for_credentials_sessions_only(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    async def seed(store: StoreHandle, box: SecretBox) -> None:
        await store.write(auth_queries.create_session, box, "shop", "as-1", "CREDENTIALS", {"user": "u"}, None, {})
        await store.write(auth_queries.create_session, box, "shop", "rt-1", "RUNTIME", {"user": "r"}, None, {})
        await store.write(auth_queries.create_session, box, "other", "as-2", "CREDENTIALS", {"user": "o"}, None, {})

    client = (await functions_app(nursery, tmp_path, seed=seed)).test_client()
    response = await client.get(f"{BASE}/auth-session/as-1/parameters", headers=_token())
    assert (response.status_code, await response.get_json()) == (200, {"parameters": {"user": "u"}})
    for missing in ("rt-1", "as-2", "nope"):
        response = await client.get(f"{BASE}/auth-session/{missing}/parameters", headers=_token())
        answer = await response.get_json()
        assert response.status_code == 404
        assert {"code", "category", "message", "retirable", "correlationId"} <= answer.keys()
    unauthorised = await client.get(f"{BASE}/auth-session/as-1/parameters")
    assert unauthorised.status_code == 401

