"""The store actor and the bus, in-process with a real SQLite file."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import pytest
import trio
import trio.testing

from intunedd.actors.bus import BusHandle, run_bus
from intunedd.actors.store import StoreHandle, run_store
from intunedd.messages import Event, EventFilter, ProjectVersion, Publish, RunOptions
from intunedd.policy.run_filters import parse_filter
from intunedd.store import queries
from intunedd.store.db import open_db

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
PROJECT = ProjectVersion(name="p", version=1, path="/x", apis=["a"], api_access=True, max_concurrent=1, deployed_at="t")
OPTIONS = RunOptions(max_attempts=3, request_timeout_s=600, save_trace=True)


class FixedClock:
    def now(self) -> datetime:
        return NOW


async def _start(nursery: trio.Nursery, tmp_path: Path, buffer: int = 16) -> tuple[StoreHandle, BusHandle]:
    bus = await nursery.start(partial(run_bus, buffer=buffer))
    store = await nursery.start(partial(run_store, open_db(tmp_path / "t.db"), bus.publisher(), clock=FixedClock()))
    return store, bus


async def test_events_are_published_after_commit(nursery: trio.Nursery, tmp_path: Path) -> None:
    store, bus = await _start(nursery, tmp_path)
    events = await bus.subscribe(EventFilter(project="p"))
    await store.write(queries.record_deploy, PROJECT, {})
    run = await store.write(queries.insert_run, "r" * 21, PROJECT, "a", {"x": 1}, OPTIONS)
    with trio.fail_after(5):
        deployed, created = await events.receive(), await events.receive()
    assert (deployed.type, created.type, created.run_id) == ("project.deployed", "run.created", run.id)
    assert created.at == "2026-11-23T12:00:00.000Z"
    stored = await store.read(queries.get_run, run.id)
    assert stored is not None
    assert (stored.parameters, stored.options, stored.status) == ({"x": 1}, OPTIONS, "pending")


async def test_a_failed_write_rolls_back_and_publishes_nothing(nursery: trio.Nursery, tmp_path: Path) -> None:
    store, bus = await _start(nursery, tmp_path)
    events = await bus.subscribe(EventFilter())

    def half_then_fail(tx: queries.Tx) -> None:
        queries.record_deploy(tx, PROJECT, {})
        raise ValueError("no")

    with pytest.raises(ValueError, match="no"):
        await store.write(half_then_fail)
    assert await store.read(queries.current_projects) == []
    with pytest.raises(trio.WouldBlock):
        events.receive_nowait()


async def test_run_lifecycle_and_recovery_queries(nursery: trio.Nursery, tmp_path: Path) -> None:
    store, _ = await _start(nursery, tmp_path)
    await store.write(queries.record_deploy, PROJECT, {})
    run = await store.write(queries.insert_run, "a" * 21, PROJECT, "a", {}, OPTIONS)
    await store.write(queries.start_attempt, run, 1, "/log", None, None)
    assert [r.id for r in await store.read(queries.unfinished_runs)] == [run.id]
    assert await store.write(queries.interrupt_running_attempts) == 1
    attempts = await store.read(queries.list_attempts, run.id)
    assert [a.status for a in attempts] == ["interrupted"]
    # finish_attempt only touches running attempts, so a late outcome cannot overwrite it.
    await store.write(queries.finish_attempt, run, 1, "completed", None)
    assert [a.status for a in await store.read(queries.list_attempts, run.id)] == ["interrupted"]
    assert await store.write(partial(queries.finish_run, result=1), run, "completed") is True
    assert await store.write(queries.finish_run, run, "failed") is False
    assert await store.read(queries.unfinished_runs) == []


async def test_filters_and_pagination(nursery: trio.Nursery, tmp_path: Path) -> None:
    store, _ = await _start(nursery, tmp_path)
    await store.write(queries.record_deploy, PROJECT, {})
    for i in range(5):
        run = await store.write(queries.insert_run, f"{i}" * 21, PROJECT, "a", {}, OPTIONS)
        if i % 2:
            await store.write(queries.finish_run, run, "failed")
    failed, total = await store.read(queries.list_runs, "p", [parse_filter("status=failed")], 10, 0)
    assert total == 2
    assert {r.id for r in failed} == {"1" * 21, "3" * 21}
    page, total = await store.read(queries.list_runs, "p", [], 2, 1)
    assert total == 5
    assert [r.id for r in page] == ["3" * 21, "2" * 21]  # newest first


async def test_slow_subscriber_is_disconnected_others_keep_going(nursery: trio.Nursery) -> None:
    bus = await nursery.start(partial(run_bus, buffer=2))
    slow = await bus.subscribe(EventFilter())
    fast = await bus.subscribe(EventFilter(run_id="r1"))
    publisher = bus.publisher()
    got = []
    with trio.fail_after(5):
        for i in range(4):
            await publisher.send(Publish(events=[Event(type="t", at="now", run_id="r1", data={"i": i})]))
            got.append((await fast.receive()).data["i"])
        assert got == [0, 1, 2, 3]
        received = [event.data["i"] async for event in slow]  # ends: the bus closed it
    assert received == [0, 1]


async def test_workspace_and_secret_are_generated_once(nursery: trio.Nursery, tmp_path: Path) -> None:
    store, _ = await _start(nursery, tmp_path)
    first = await store.write(queries.ensure_workspace, "", "generated-1")
    assert await store.write(queries.ensure_workspace, "", "generated-2") == first == "generated-1"
    assert await store.write(queries.ensure_workspace, "configured", "x") == "configured"
    secret = await store.write(queries.ensure_secret, "s1")
    assert await store.write(queries.ensure_secret, "s2") == secret == "s1"


async def test_a_caller_that_gives_up_does_not_break_the_store(nursery: trio.Nursery, tmp_path: Path) -> None:
    store, _ = await _start(nursery, tmp_path)
    async with trio.open_nursery() as callers:
        callers.start_soon(store.write, queries.record_deploy, PROJECT, {})
        await trio.testing.wait_all_tasks_blocked()  # the write is in the store's thread now
        callers.cancel_scope.cancel()
    with trio.fail_after(5):  # the store answered nobody, committed, and serves on
        assert [p.name for p in await store.read(queries.current_projects)] == ["p"]
