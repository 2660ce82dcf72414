"""The daemon: one trio process whose root nursery hosts the actors and the HTTP server.

Start order is dependency order, each through ``nursery.start`` so a failing actor fails
start-up loudly:  bus → store → pool → sink dispatcher → auth sessions → rate limiter → runner → collections →
deployer → scheduler → retention → metrics → http (and the key-less metrics listener, if set).

One shutdown path: SIGTERM or SIGINT sets ``shutdown``; Hypercorn stops accepting
connections, the runner drains (nothing new starts; running attempts get
``runs.drain_timeout_s``, then are recorded as interrupted and requeued on the next
start), and the root nursery is cancelled.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import signal
import socket
import sys
from functools import partial

import hypercorn.config
import hypercorn.trio
import msgspec
import trio
from hypercorn.typing import ASGIFramework

from .actors.auth_sessions import run_auth_sessions
from .actors.browser_pool import run_browser_pool
from .actors.bus import run_bus
from .actors.collections import run_collections
from .actors.deployer import run_deployer
from .actors.metrics import run_metrics
from .actors.rate_limiter import run_rate_limiter
from .actors.retention import run_retention
from .actors.runner import run_runner
from .actors.scheduler import JobChanges, run_scheduler
from .actors.sink_dispatcher import HttpClientFactory, run_sink_dispatcher
from .actors.store import run_store
from .clock import Clock, SystemClock
from .collections import signing
from .config import Settings
from .functions_token import Backend
from .http.app import create_app
from .http.asgi import keep_alive_safe
from .http.handles import Handles
from .http.metrics import metrics_app
from .http.records import Records
from .http.signing import public_base_url
from .ids import new_uuid
from .metrics.statistics import Sources
from .secrets import SecretBox, lock_key_file
from .sinks import destinations
from .store import queries
from .store.db import open_db
from .workers import sandbox
from .workers.browser import prepare_ffmpeg
from .workers.browser import worker_config as browser_worker_config
from .workers.sandbox import WorkerUser

log = logging.getLogger("intunedd")


def _claim_port(settings: Settings) -> tuple[Settings, str]:
    """Where Hypercorn binds. Port 0 is bound here, so every setting that names the daemon's own
    address (signed links) holds the port the kernel chose; Hypercorn takes the socket by fd."""
    server = settings.server
    if server.port != 0:
        return settings, f"{server.host}:{server.port}"
    listener = socket.create_server((server.host, 0))
    port = listener.getsockname()[1]
    settings = msgspec.structs.replace(settings, server=msgspec.structs.replace(server, port=port))
    return settings, f"fd://{listener.detach()}"


def _hypercorn_config(settings: Settings, bind: str) -> hypercorn.config.Config:
    config = hypercorn.config.Config()
    config.bind = [bind]
    config.graceful_timeout = settings.runs.drain_timeout_s
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")
    return config


async def _serve(
    app: ASGIFramework,
    config: hypercorn.config.Config,
    shutdown: trio.Event,
    *,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    await hypercorn.trio.serve(keep_alive_safe(app), config, shutdown_trigger=shutdown.wait, task_status=task_status)


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
    worker_user: WorkerUser | None = None,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run until ``shutdown`` is set (or a signal arrives); ``started`` gives the bound URLs.
    ``worker_user`` is what ``sandbox.confine`` returned for these settings."""
    clock = clock or SystemClock()
    shutdown = trio.Event() if shutdown is None else shutdown
    # Before any actor starts: every task and worker thread inherits it (a context variable).
    destinations.allow(destinations.parse_networks(settings.sinks.allow_networks))
    settings, bind = _claim_port(settings)
    for path in (settings.state_path, settings.projects_path, settings.artifacts_path):
        path.mkdir(parents=True, exist_ok=True)
    worker_config = browser_worker_config(settings.pool)
    env = prepare_ffmpeg(settings.state_path) if settings.runs.record_video else {}
    if worker_user is not None:
        env = {**env, **await trio.to_thread.run_sync(sandbox.prepare_worker_files, settings, worker_user)}
    db = await trio.to_thread.run_sync(open_db, settings.db_path)
    box = await trio.to_thread.run_sync(SecretBox.open, settings.secrets_key_path)
    key_lock = lock_key_file(settings.secrets_key_path, exclusive=False)  # no key rotation while we run
    async with trio.open_nursery() as root:
        events = settings.events
        bus = await root.start(
            partial(
                run_bus,
                buffer=events.subscriber_buffer,
                buffer_bytes=events.subscriber_buffer_bytes,
                max_event_bytes=events.max_event_bytes,
            )
        )
        store = await root.start(partial(run_store, db, bus.publisher(), clock=clock))
        workspace_id = await store.write(queries.ensure_workspace, settings.workspace_id, new_uuid())
        secret = await store.write(queries.ensure_secret, secrets.token_hex(32))
        pool = await root.start(
            partial(
                run_browser_pool,
                worker_config,
                env,
                size=settings.pool.capacity,
                hosts=settings.pool.hosts,
                recycle_after_attempts=settings.pool.recycle_after_attempts,
                recycle_rss_mb=settings.pool.recycle_rss_mb,
                start_timeout_s=settings.pool.start_timeout_s,
                idle_worker_retire_s=settings.pool.idle_worker_retire_s,
                user=worker_user,
                worker_nice=settings.pool.worker_nice,
            )
        )
        callback_secret = await trio.to_thread.run_sync(signing.callback_secret, settings)
        sinks = await root.start(
            partial(
                run_sink_dispatcher, store, bus, settings.sinks, workspace_id, clock=clock, http_client=http_client,
                callback_secret=callback_secret,
            )
        )  # fmt: skip
        job_changes = JobChanges()  # never blocks: the scheduler waits on the runner, never the reverse
        job_changed = job_changes.notify
        backend = Backend(public_base_url(settings.server), workspace_id, secret.encode())
        auth = await root.start(partial(run_auth_sessions, store, box, pool, settings, clock=clock, backend=backend))
        limiter = await root.start(partial(run_rate_limiter, store, clock=clock))
        runner, drain = await root.start(
            partial(
                run_runner, store, pool, settings, job_changed, clock=clock, backend=backend, auth=auth, limiter=limiter
            )
        )
        # After the runner: its recovery marks every attempt left running as interrupted, and must not
        # see the collection jobs this actor starts at once.
        collections = await root.start(
            partial(
                run_collections, store, pool, settings, clock=clock, base_url=public_base_url(settings.server),
                cursor_key=secret.encode(), pace=limiter,
            )
        )  # fmt: skip
        deployer = await root.start(
            partial(run_deployer, store, runner, settings, job_changed, bus.publisher(), clock=clock, secrets=box)
        )
        window = settings.scheduler.catch_up_window_s
        await root.start(
            partial(
                run_scheduler,
                store,
                runner.trigger_job,
                job_changes,
                clock=clock,
                catch_up_window_s=None if window < 0 else window,
            )
        )
        retention = await root.start(partial(run_retention, store, settings, clock=clock))
        sources = Sources(pool.statistics, runner.statistics, sinks.statistics, store.statistics, limiter.statistics)
        metrics = await root.start(partial(run_metrics, bus, settings.metrics, sources))
        app = create_app(
            Handles(
                settings=settings,
                workspace_id=workspace_id,
                records=Records(store),
                bus=bus,
                pool=pool,
                runner=runner,
                deployer=deployer,
                signing_secret=secret.encode(),
                secrets=box,
                sink_statistics=sinks.statistics,
                retention=retention,
                clock=clock,
                auth_sessions=auth,
                collections=collections,
                metrics=metrics,
            )
        )
        root.start_soon(_watch_signals, shutdown)
        binds = await root.start(_serve, app, _hypercorn_config(settings, bind), shutdown)
        log.info("intunedd serving workspace %s on %s", workspace_id, ", ".join(binds))
        if settings.metrics.listen:
            open_binds = await root.start(
                _serve, metrics_app(metrics), _hypercorn_config(settings, settings.metrics.listen), shutdown
            )
            log.info("metrics served without a key on %s", ", ".join(open_binds))
        task_status.started(binds)
        await shutdown.wait()
        await drain(settings.runs.drain_timeout_s)
        root.cancel_scope.cancel()
    db.conn.close()
    os.close(key_lock)


async def _serve_and_signal(settings: Settings, ready_fd: int | None, worker_user: WorkerUser | None) -> None:
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(partial(run_daemon, settings, worker_user=worker_user))
        if ready_fd is not None:
            # The readiness signal for whoever started us (tests, benchmarks): one JSON line.
            with os.fdopen(ready_fd, "wb") as ready:
                ready.write(json.dumps({"urls": binds}).encode() + b"\n")


def serve(settings: Settings, ready_fd: int | None = None) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # httpx logs every request at INFO: one line per sink delivery would flood the journal.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger().level))
    try:
        worker_user = sandbox.confine(settings)  # before trio starts any thread: see sandbox
    except sandbox.SandboxError as e:
        log.error("%s", e)
        raise SystemExit(f"intunedd: {e}") from None
    trio.run(_serve_and_signal, settings, ready_fd, worker_user)
