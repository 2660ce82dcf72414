"""The AuthSessions actor with a real store and pool, and scripted fake workers instead of Chromium,
under trio's autojump clock: deleting a session, exclusive use, and damaged rows at start."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from intunedd.actors.auth_sessions import (
    NOT_FOUND,
    AuthSessionsHandle,
    SessionInUse,
    SessionUnavailable,
    run_auth_sessions,
)
from intunedd.actors.browser_pool import run_browser_pool
from intunedd.actors.bus import run_bus
from intunedd.actors.store import StoreHandle, run_store
from intunedd.config import AuthSessionSettings, PoolSettings, Settings
from intunedd.http.auth_schemas import CreateSessionBody
from intunedd.messages import ProjectVersion
from intunedd.secrets import SecretBox
from intunedd.store import auth_queries, queries
from intunedd.store.auth_queries import AuthOperation
from intunedd.store.db import open_db
from intunedd.workers.fake import fake_command
from intunedd.workers.protocol import WorkerConfig

from ..conftest import TrioClock

CLOCK = TrioClock(datetime(2026, 12, 2, 12, tzinfo=UTC))
BOX = SecretBox(b"k" * 32)
WAIT_S = 60


def _project(tmp_path: Path) -> ProjectVersion:
    return ProjectVersion(
        name="p", version=1, path=str(tmp_path / "project"), apis=["echo"], api_access=True, max_concurrent=2,
        deployed_at="2026-12-02T12:00:00.000Z",
    )  # fmt: skip


@dataclass
class Parts:
    store: StoreHandle
    auth: AuthSessionsHandle
    project: ProjectVersion

    @property
    def service(self) -> Any:
        """The actor behind the handle, to see what it holds (its gates, who waits for a session)."""
        return self.auth.delete.__self__  # type: ignore[attr-defined]

    async def operation(self, op_id: str, *statuses: str) -> AuthOperation:
        """The operation once it reaches one of ``statuses`` (with its run's attempt running, for in_progress)."""
        with trio.fail_after(WAIT_S):
            while True:
                op = await self.store.read(auth_queries.get_operation, "p", "create", op_id)
                assert op is not None
                attempts = await self.store.read(queries.list_attempts, op.run_id) if op.run_id else []
                if op.status in statuses and (op.status != "in_progress" or attempts):
                    return op
                await trio.sleep(0.05)


@asynccontextmanager
async def _actor(tmp_path: Path, behaviour: str, *, deploy: bool = True, window_s: float = 0) -> AsyncIterator[Parts]:
    settings = Settings(
        state_dir=str(tmp_path),
        pool=PoolSettings(size=2, abort_grace_s=0.5),
        auth_sessions=AuthSessionSettings(check_window_s=window_s),
    )
    async with trio.open_nursery() as nursery:
        bus = await nursery.start(partial(run_bus, buffer=100))
        store = await nursery.start(partial(run_store, open_db(tmp_path / "db.sqlite"), bus.publisher(), clock=CLOCK))
        if deploy:
            await store.write(queries.record_deploy, _project(tmp_path), {})
        pool = await nursery.start(
            partial(
                run_browser_pool, WorkerConfig(fd=-1), {}, size=2, recycle_after_attempts=100, recycle_rss_mb=4096,
                start_timeout_s=10, command=fake_command(behaviour),
            )
        )  # fmt: skip
        auth = await nursery.start(partial(run_auth_sessions, store, BOX, pool, settings, clock=CLOCK))
        yield Parts(store, auth, _project(tmp_path))
        nursery.cancel_scope.cancel()


async def _created(parts: Parts, session_id: str = "s") -> None:
    op = await parts.auth.start_create("p", CreateSessionBody(parameters={"user": "a"}, id=session_id))
    assert (await parts.operation(op.id, "done", "failed")).status == "done"


async def test_deleting_a_session_cancels_its_creation_and_frees_the_run_waiting_on_it(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with _actor(tmp_path, "hang") as parts:
        op = await parts.auth.start_create("p", CreateSessionBody(parameters={"user": "a"}, id="s"))
        await parts.operation(op.id, "in_progress")  # its creation attempt hangs on a worker
        refused: list[str] = []

        async def run_needing_it() -> None:
            with pytest.raises(SessionUnavailable) as caught:
                await parts.auth.valid_session(parts.project, {"id": "s"}, "run-1")
            refused.append(caught.value.code)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(run_needing_it)
            with trio.fail_after(WAIT_S):  # the run waits for the creation to finish
                while ("p", "s") not in parts.service.gates or (
                    parts.service.gates[("p", "s")]._recreating.statistics().tasks_waiting == 0
                ):
                    await trio.sleep(0.05)
            assert await parts.auth.delete("p", "s")
        assert refused == [NOT_FOUND]
        canceled = await parts.operation(op.id, "canceled")
        assert canceled.reason == auth_queries.DELETED
        assert canceled.run_id is not None
        with trio.fail_after(WAIT_S):  # the cancelled creation records the end of its validation run
            while (validation := await parts.store.read(queries.get_run, canceled.run_id)) and (
                validation.status == "started"
            ):
                await trio.sleep(0.05)
        assert validation is not None and validation.status == "canceled"
        assert [a.status for a in await parts.store.read(queries.list_attempts, canceled.run_id)] == ["canceled"]
        assert await parts.store.read(auth_queries.get_session, "p", "s") is None
        assert parts.service.gates == {} and parts.service.validating == {}
        assert not await parts.auth.delete("p", "s")


async def test_an_exclusive_use_is_refused_while_others_use_the_session_and_makes_shared_ones_wait(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with _actor(tmp_path, "logged-in") as parts:
        await _created(parts)
        shared, exclusive = {"id": "s"}, {"id": "s", "exclusive": True}
        async with parts.auth.using(parts.project, shared, "run-1") as session:
            assert session.session_id == "s"
            with pytest.raises(SessionInUse) as caught:
                async with parts.auth.using(parts.project, exclusive, "run-2"):
                    pass
            assert caught.value.reason["type"] == "auth-session-already-in-use"
            assert "'s'" in caught.value.reason["message"]
            async with parts.auth.using(parts.project, shared, "run-3"):
                pass  # shared uses go side by side
        order: list[str] = []
        release = trio.Event()

        async def alone(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
            async with parts.auth.using(parts.project, exclusive, "run-4"):
                task_status.started()
                await release.wait()
                order.append("exclusive ended")

        async def beside() -> None:
            async with parts.auth.using(parts.project, shared, "run-5"):
                order.append("shared used")

        async with trio.open_nursery() as nursery:
            await nursery.start(alone)
            nursery.start_soon(beside)
            with trio.fail_after(WAIT_S):  # the shared use waits for the exclusive one to end
                while ("p", "s") not in parts.service.released:
                    await trio.sleep(0.05)
            with pytest.raises(SessionInUse):
                async with parts.auth.using(parts.project, exclusive, "run-6"):
                    pass
            release.set()
        assert order == ["exclusive ended", "shared used"]
        assert parts.service.uses == {}


async def test_unreadable_sessions_and_operations_are_quarantined_at_start_and_the_rest_works(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    db = open_db(tmp_path / "db.sqlite")
    tx = queries.Tx(db, "2026-12-02T11:00:00.000Z")
    with db.atomic():
        queries.record_deploy(tx, _project(tmp_path), {})
        for session_id in ("good", "bad-options", "bad-state"):
            auth_queries.create_session(tx, BOX, "p", session_id, "CREDENTIALS", {"user": "a"}, None, {})
            auth_queries.save_state(tx, BOX, "p", session_id, {"cookies": []})
        auth_queries.new_operation(tx, BOX, "p", "good", "validate", {})
        bad = auth_queries.new_operation(tx, BOX, "p", "good", "validate", {})
    db.conn.execute("UPDATE auth_sessions SET options='{not json' WHERE id='bad-options'")
    db.conn.execute("UPDATE auth_sessions SET state=x'00ff' WHERE id='bad-state'")
    db.conn.execute("UPDATE auth_operations SET kind='unknown' WHERE id=?", (bad.id,))
    db.conn.commit()
    db.conn.close()
    async with _actor(tmp_path, "logged-in", deploy=False) as parts:
        quarantined = await parts.store.read(queries.list_quarantine)
        assert sorted((q["kind"], q["recordId"]) for q in quarantined) == sorted([
            ("auth_session", "p/bad-options"), ("auth_session", "p/bad-state"), ("auth_operation", bad.id),
        ])  # fmt: skip
        assert all("cannot" in q["reason"] for q in quarantined)
        session = await parts.auth.valid_session(parts.project, {"id": "good"}, "run-1")
        assert session.state == {"cookies": []}
        with pytest.raises(SessionUnavailable) as caught:  # a run on it is canceled, not failed inside the daemon
            await parts.auth.valid_session(parts.project, {"id": "bad-state"}, "run-2")
        assert caught.value.code == "auth-session-unreadable"
        assert await parts.auth.delete("p", "bad-state")  # deleting a quarantined session releases it
        assert [q["recordId"] for q in await parts.store.read(queries.list_quarantine)].count("p/bad-state") == 0


async def test_inside_the_check_window_a_run_writes_nothing_and_starts_no_validation(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with _actor(tmp_path, "logged-in", window_s=300) as parts:
        await _created(parts)
        checked = await parts.auth.valid_session(parts.project, {"id": "s"}, "run-1")
        before = await parts.store.read(auth_queries.get_session, "p", "s")
        runs = await parts.store.read(queries.list_runs, "p", [], 100, 0)
        await trio.sleep(60)
        again = await parts.auth.valid_session(parts.project, {"id": "s"}, "run-2")
        assert again == checked
        assert await parts.store.read(auth_queries.get_session, "p", "s") == before  # no mark_checked write
        assert await parts.store.read(queries.list_runs, "p", [], 100, 0) == runs  # no validation run
