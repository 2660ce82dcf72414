"""The browser pool with scripted fake workers, under trio's autojump clock: environments sharing
the pool's capacity, retiring idle workers, FIFO across environments, a broken environment, and
what the pool always did (kill, recycle)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

import pytest
import trio
import trio.testing

from intunedd.actors.browser_pool import ENV_SPAWN_ATTEMPTS, PoolHandle, WorkerUnavailable, run_browser_pool
from intunedd.config import BrowserHost
from intunedd.policy.browser_hosts import HOST_BACKOFF_S
from intunedd.workers.fake import HOSTS_DOWN, fake_command
from intunedd.workers.process import DAEMON_ENV, Lease, WorkerEnv
from intunedd.workers.protocol import WorkerConfig

DEFAULT_COMMAND = tuple(fake_command("ok"))
TIMEOUT_S = 600


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    # A fake worker takes about 0.1 s of real time to start, during which trio is idle: a longer
    # threshold than the shared fixture's keeps the clock from jumping to its start timeout.
    return trio.testing.MockClock(autojump_threshold=1.0)


def _env(tmp_path: Path, key: str) -> WorkerEnv:
    """A fake worker environment, told apart from the others by its argv."""
    return WorkerEnv(key, tuple(fake_command("ok", pid_file=tmp_path / f"{key}.pid")))


def _command(lease: Lease) -> tuple[str, ...]:
    args = lease.worker.process.args
    assert isinstance(args, list)
    return tuple(args[:-1])  # the WorkerConfig JSON is last


@asynccontextmanager
async def _pool(
    size: int,
    *,
    retire_s: float = 10_000.0,
    recycle_after_attempts: int = 100,
    hosts: Sequence[BrowserHost] = (),
    environ: Mapping[str, str] | None = None,
) -> AsyncIterator[PoolHandle]:
    async with trio.open_nursery() as nursery:
        pool = await nursery.start(
            partial(
                run_browser_pool,
                WorkerConfig(fd=-1),
                environ or {},
                size=size,
                hosts=hosts,
                recycle_after_attempts=recycle_after_attempts,
                recycle_rss_mb=4096,
                start_timeout_s=30,
                idle_worker_retire_s=retire_s,
                command=DEFAULT_COMMAND,
            )
        )
        yield pool
        nursery.cancel_scope.cancel()


def _live(pool: PoolHandle) -> dict[str, int]:
    return {key: env.live for key, env in pool.statistics().envs.items()}


async def _hold(pool: PoolHandle, env: WorkerEnv, release: trio.Event, *, task_status: trio.TaskStatus[Lease]) -> None:
    async with pool.lease(env) as lease:
        task_status.started(lease)
        await release.wait()


async def test_two_environments_share_the_capacity(autojump_clock: trio.testing.MockClock, tmp_path: Path) -> None:
    a, b = _env(tmp_path, "a"), _env(tmp_path, "b")
    with trio.fail_after(TIMEOUT_S):
        async with _pool(2) as pool, trio.open_nursery() as nursery:
            assert _live(pool) == {"": 2} and pool.statistics().idle == 2
            free_a, free_default, free_b = trio.Event(), trio.Event(), trio.Event()
            on_a = await nursery.start(_hold, pool, a, free_a)
            # No idle worker of A and no room: an idle worker of the daemon's own made room.
            assert _command(on_a) == a.command
            assert _live(pool) == {"": 1, "a": 1} and pool.statistics().retired == 1
            on_default = await nursery.start(_hold, pool, DAEMON_ENV, free_default)
            assert _command(on_default) == DEFAULT_COMMAND
            on_b: list[Lease] = []
            got_b = trio.Event()

            async def lease_b() -> None:
                on_b.append(await nursery.start(_hold, pool, b, free_b))
                got_b.set()

            nursery.start_soon(lease_b)
            await trio.testing.wait_all_tasks_blocked()
            assert pool.statistics().waiting == 1 and not on_b  # both workers are lent
            free_a.set()
            await got_b.wait()
            # A's worker came back and was retired so that B's could start.
            assert [_command(lease) for lease in on_b] == [b.command]
            assert _live(pool) == {"": 1, "b": 1} and pool.statistics().retired == 2
            free_default.set()
            free_b.set()
            await trio.testing.wait_all_tasks_blocked()
            assert {key: env.idle for key, env in pool.statistics().envs.items()} == {"": 1, "b": 1}
            async with pool.lease(b) as again_b, pool.lease() as again_default:  # at once, from the idle ones
                assert (_command(again_b), _command(again_default)) == (b.command, DEFAULT_COMMAND)
            assert (pool.statistics().spawned, pool.statistics().retired) == (4, 2)


async def test_an_idle_worker_of_a_project_environment_is_retired_and_replaced(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    a = _env(tmp_path, "a")
    with trio.fail_after(TIMEOUT_S):
        async with _pool(1, retire_s=60) as pool:
            async with pool.lease(a):
                pass
            await trio.testing.wait_all_tasks_blocked()
            assert _live(pool) == {"a": 1}
            await trio.sleep(59)
            assert _live(pool) == {"a": 1}  # not yet
            await trio.sleep(2)
            async with pool.lease() as on_default:  # its replacement, of the daemon's own environment
                assert _command(on_default) == DEFAULT_COMMAND
            assert pool.statistics().retired == 2  # the daemon's own, to make room for A; then A's
            await trio.sleep(500)
            assert _live(pool) == {"": 1} and pool.statistics().retired == 2  # the daemon's own stay


async def test_waiting_leases_are_served_in_order_across_environments(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    a = _env(tmp_path, "a")
    served_send, served = trio.open_memory_channel[str](3)

    async def lease(env: WorkerEnv, release: trio.Event) -> None:
        async with pool.lease(env) as got:
            assert _command(got) == (DEFAULT_COMMAND if env == DAEMON_ENV else env.command)
            served_send.send_nowait(env.key)
            await release.wait()

    with trio.fail_after(TIMEOUT_S):
        async with _pool(1) as pool, trio.open_nursery() as nursery:
            first, release_a, release_default = trio.Event(), trio.Event(), trio.Event()
            nursery.start_soon(lease, DAEMON_ENV, first)
            assert await served.receive() == ""
            nursery.start_soon(lease, a, release_a)
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(lease, DAEMON_ENV, release_default)
            await trio.testing.wait_all_tasks_blocked()
            assert pool.statistics().waiting == 2
            # The worker coming back is of the daemon's own environment, which the last waiter
            # wants, but A asked first: it is retired to make room for A's.
            first.set()
            assert await served.receive() == "a"
            await trio.testing.wait_all_tasks_blocked()
            assert pool.statistics().waiting == 1
            release_a.set()
            assert await served.receive() == ""
            assert pool.statistics().retired == 2
            release_default.set()


async def test_a_broken_environment_fails_its_lease_without_blocking_the_others(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    gone = WorkerEnv("gone", (str(tmp_path / "deleted-environment" / "bin" / "python"), "-m", "intunedd.workers.fake"))
    a = _env(tmp_path, "a")
    with trio.fail_after(TIMEOUT_S):
        async with _pool(2) as pool:
            started = trio.current_time()
            async with trio.open_nursery() as nursery:

                async def broken() -> None:
                    with pytest.raises(WorkerUnavailable, match=f"environment 'gone'.*{ENV_SPAWN_ATTEMPTS} tries"):
                        async with pool.lease(gone):
                            pass

                nursery.start_soon(broken)
                # Meanwhile the other environments are served, as often as they ask.
                for _ in range(5):
                    async with pool.lease(a) as on_a, pool.lease() as on_default:
                        assert (_command(on_a), _command(on_default)) == (a.command, DEFAULT_COMMAND)
            assert trio.current_time() - started < 60  # a few backoffs, not a spawn per try for ever
            stats = pool.statistics()
            assert stats.last_spawn_error is not None and "environment 'gone'" in stats.last_spawn_error
            assert "gone" not in stats.envs and stats.waiting == 0
            assert stats.spawn_failures == ENV_SPAWN_ATTEMPTS  # counted for /metrics
            # The next lease for it tries again, and fails again.
            with pytest.raises(WorkerUnavailable):
                async with pool.lease(gone):
                    pass
            assert pool.statistics().spawn_failures == 2 * ENV_SPAWN_ATTEMPTS


async def test_a_cancelled_waiter_leaves_no_trace(autojump_clock: trio.testing.MockClock, tmp_path: Path) -> None:
    a = _env(tmp_path, "a")
    with trio.fail_after(TIMEOUT_S):
        async with _pool(1) as pool:
            async with pool.lease():
                with trio.move_on_after(5) as waited:
                    async with pool.lease(a):
                        pass
                assert waited.cancelled_caught
            async with pool.lease() as again:  # nobody waits for A: the worker is still the daemon's own
                assert _command(again) == DEFAULT_COMMAND
            assert pool.statistics().spawned == 1 and pool.statistics().waiting == 0


async def test_workers_are_killed_on_a_bad_verdict_and_recycled_after_n_attempts(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    a = _env(tmp_path, "a")
    with trio.fail_after(TIMEOUT_S):
        async with _pool(1, recycle_after_attempts=2) as pool:
            pids = []
            for _ in range(4):
                async with pool.lease(a) as lease:
                    pids.append(lease.worker.pid)
                await trio.testing.wait_all_tasks_blocked()  # the pool has taken it back
            assert pids[0] == pids[1] != pids[2] == pids[3]
            assert pool.statistics().recycled == 2
            async with pool.lease(a) as lease:
                lease.poison("test")
                poisoned = lease.worker
            await trio.testing.wait_all_tasks_blocked()
            async with pool.lease(a) as lease:  # its replacement is of its own environment
                assert lease.worker.pid != poisoned.pid and _command(lease) == a.command
                last = lease.worker
            assert pool.statistics().killed == 1 and pool.statistics().retired == 1
            assert poisoned.process.returncode is not None
        assert last.process.returncode is not None  # stopped with the pool


async def _until(check: Callable[[], bool]) -> None:
    while not check():
        await trio.sleep(0.05)


async def test_workers_spread_over_browser_hosts_and_one_that_stops_answering_is_taken_out(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """Two hosts, A (2 slots) and B (1): the pool's size is 3. When a worker cannot start on A, A is
    out, with its idle worker, and leases wait for B; after its backoff A is tried again and used."""
    hosts = [BrowserHost(url="ws://a.test:3000/token-a", capacity=2), BrowserHost(url="ws://b.test:3000/", capacity=1)]
    down = tmp_path / "a.test"
    with trio.fail_after(TIMEOUT_S):
        async with _pool(3, hosts=hosts, environ={HOSTS_DOWN: str(tmp_path)}) as pool, trio.open_nursery() as nursery:
            assert pool.statistics().size == 3 and pool.statistics().idle == 3
            releases = [trio.Event() for _ in range(3)]
            leases = [await nursery.start(_hold, pool, DAEMON_ENV, release) for release in releases]
            on = [lease.worker.browser_version for lease in leases]
            assert sorted(on) == ["a.test", "a.test", "b.test"]
            first_a, second_a = (i for i, host in enumerate(on) if host == "a.test")
            down.touch()
            releases[first_a].set()  # back, idle on A
            await trio.testing.wait_all_tasks_blocked()
            leases[second_a].poison("its browser went away")
            releases[second_a].set()  # killed; its replacement cannot start on A
            await _until(lambda: not pool.statistics().hosts[0].up)
            stats = pool.statistics()
            assert [(h.host, h.live, h.up, h.failures) for h in stats.hosts] == [
                ("ws://a.test:3000", 0, False, 1),  # no token: a URL's path is not shown
                ("ws://b.test:3000", 1, True, 0),
            ]
            assert stats.killed == 2 and stats.idle == 0  # A's idle worker went with it
            releases[on.index("b.test")].set()
            async with pool.lease() as lease:
                assert lease.worker.browser_version == "b.test"
                # A second lease waits: B is full and A is out. A comes back after its backoff.
                down.unlink()
                started = trio.current_time()
                async with pool.lease() as other:
                    assert other.worker.browser_version == "a.test"
                    assert trio.current_time() - started >= HOST_BACKOFF_S[0] - 0.1
            await _until(lambda: pool.statistics().idle == 3)
            assert [h.failures for h in pool.statistics().hosts] == [0, 0]


async def test_a_worker_on_its_last_attempt_has_its_replacement_started_meanwhile(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    with trio.fail_after(TIMEOUT_S):
        async with _pool(1, recycle_after_attempts=2) as pool:
            async with pool.lease() as first:
                pass
            await trio.testing.wait_all_tasks_blocked()
            assert pool.statistics().spawned == 1
            async with pool.lease() as last:  # the second of two: recycled when it comes back
                assert last.worker.pid == first.worker.pid
                await _until(lambda: pool.statistics().idle == 1)  # its replacement, ready before it ends
                assert pool.statistics().spawned == 2
            await trio.testing.wait_all_tasks_blocked()
            async with pool.lease() as after:
                assert after.worker.pid != first.worker.pid
            stats = pool.statistics()
            assert (stats.spawned, stats.recycled) == (2, 1)  # no third worker: the replacement was used
