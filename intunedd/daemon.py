"""The daemon: one trio process whose root nursery hosts the actors and the HTTP server.

Start order is dependency order, each through ``nursery.start`` so a failing actor fails
start-up loudly:  bus → store → pool → sink dispatcher → runner → scheduler → http.

One shutdown path: SIGTERM or SIGINT sets ``shutdown``; Hypercorn stops accepting
connections, the runner drains (nothing new starts; running attempts get
``runs.drain_timeout_s``, then are recorded as interrupted and requeued on the next
start), and the root nursery is cancelled.
"""

from __future__ import annotations

import logging
import secrets
import signal
import sys
from functools import partial

import hypercorn.config
import hypercorn.trio
import trio

from .actors.browser_pool import run_browser_pool
from .actors.bus import run_bus
from .actors.runner import run_runner
from .actors.scheduler import run_scheduler
from .actors.sink_dispatcher import HttpClientFactory, run_sink_dispatcher
from .actors.store import run_store
from .clock import Clock, SystemClock
from .config import Settings
from .http.app import create_app
from .http.handles import Handles
from .ids import new_uuid
from .messages import JobChanged
from .store import queries
from .store.db import open_db
from .workers.browser import find_browser, prepare_ffmpeg
from .workers.protocol import WorkerConfig

log = logging.getLogger("intunedd")
JOB_CHANGES_BUFFER = 64


def _hypercorn_config(settings: Settings) -> hypercorn.config.Config:
    config = hypercorn.config.Config()
    config.bind = [f"{settings.server.host}:{settings.server.port}"]
    config.graceful_timeout = settings.runs.drain_timeout_s
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")
    return config


def _worker_config(settings: Settings) -> WorkerConfig:
    pool = settings.pool
    browser = None if pool.remote_endpoint else find_browser(pool.browser, pool.headless)
    return WorkerConfig(
        fd=-1,
        browser_executable=browser,
        headless=pool.headless,
        browser_args=pool.browser_args,
        remote_endpoint=pool.remote_endpoint,
        remote_protocol=pool.remote_protocol,
    )


async def _watch_signals(shutdown: trio.Event) -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for signum in signals:
            log.info("received %s: draining", signal.Signals(signum).name)
            shutdown.set()
            return


async def run_daemon(
    settings: Settings,
    *,
    clock: Clock | None = None,
    shutdown: trio.Event | None = None,
    http_client: HttpClientFactory | None = None,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run until ``shutdown`` is set (or a signal arrives); ``started`` gives the bound URLs."""
    clock = clock or SystemClock()
    shutdown = trio.Event() if shutdown is None else shutdown
    for path in (settings.state_path, settings.projects_path, settings.artifacts_path):
        path.mkdir(parents=True, exist_ok=True)
    worker_config = _worker_config(settings)
    env = prepare_ffmpeg(settings.state_path) if settings.runs.record_video else {}
    db = await trio.to_thread.run_sync(open_db, settings.db_path)
    async with trio.open_nursery() as root:
        bus = await root.start(partial(run_bus, buffer=settings.events.subscriber_buffer))
        store = await root.start(partial(run_store, db, bus.publisher(), clock=clock))
        workspace_id = await store.write(queries.ensure_workspace, settings.workspace_id, new_uuid())
        secret = await store.write(queries.ensure_secret, secrets.token_hex(32))
        pool = await root.start(
            partial(
                run_browser_pool,
                worker_config,
                env,
                size=settings.pool.size,
                recycle_after_attempts=settings.pool.recycle_after_attempts,
                recycle_rss_mb=settings.pool.recycle_rss_mb,
                start_timeout_s=settings.pool.start_timeout_s,
            )
        )
        sinks = await root.start(
            partial(run_sink_dispatcher, store, bus, settings.sinks, workspace_id, clock=clock, http_client=http_client)
        )
        job_changes_send, job_changes_receive = trio.open_memory_channel[JobChanged](JOB_CHANGES_BUFFER)
        runner, drain = await root.start(partial(run_runner, store, pool, settings, job_changes_send, clock=clock))
        window = settings.scheduler.catch_up_window_s
        await root.start(
            partial(
                run_scheduler,
                store,
                runner.trigger_job,
                job_changes_receive,
                clock=clock,
                catch_up_window_s=None if window < 0 else window,
            )
        )
        app = create_app(Handles(settings, workspace_id, store, bus, pool, runner, secret.encode(), sinks.statistics))
        root.start_soon(_watch_signals, shutdown)
        binds = await root.start(
            partial(hypercorn.trio.serve, app, _hypercorn_config(settings), shutdown_trigger=shutdown.wait)
        )
        log.info("intunedd serving workspace %s on %s", workspace_id, ", ".join(binds))
        task_status.started(binds)
        await shutdown.wait()
        await drain(settings.runs.drain_timeout_s)
        root.cancel_scope.cancel()
    db.conn.close()


def serve(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # httpx logs every request at INFO: one line per sink delivery would flood the journal.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger().level))
    trio.run(run_daemon, settings)
