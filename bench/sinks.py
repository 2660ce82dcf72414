#!/usr/bin/env python
"""Sink delivery: the dispatcher's throughput on a full outbox, and end-to-end webhook latency.

    python -m bench.sinks [--deliveries 5000] [--concurrency 16] [--latency-runs 100] [--json out.json]

1. Dispatcher throughput. The daemon is started once (its migrations create the database), a
   project whose ``api/echo.py`` returns its parameters is deployed, and ONE real run with a
   webhook sink pointing at the benchmark's receiver is made and its delivery checked (the real
   path: run end -> outbox row in the same transaction -> dispatcher -> POST). The daemon is
   stopped (SIGTERM); then ``--deliveries`` finished runs and their pending ``deliveries`` rows
   are inserted straight into the SQLite file, copied from the real run's rows (new ids, a
   small result, due times in the past), in one transaction. The daemon is started again with
   ``[sinks] concurrency = --concurrency`` and the time from its ``/health`` answering to the
   receiver having seen every seeded ``Idempotency-Key`` is measured, with the daemon's RSS
   (every 100 ms) and CPU time. Seeding is what makes this a measure of the dispatcher: making
   5,000 finished runs through real browsers would take minutes and measure the browsers.
2. End-to-end latency: ``--latency-runs`` sequential real runs (``saveTrace: false``, webhook
   sink); from the ``at`` of each run's ``run.completed`` event (the commit that also wrote the
   outbox row) to the receiver getting the POST.

The receiver is a minimal HTTP/1.1 server on asyncio in a thread of this process; its capacity
is measured first, with a load from another process, and its thread's CPU time during phase 1
is reported, so it can be seen not to be the bottleneck (``bench/receiver.py``). Uses
``bench/common.py``'s daemon, CPU and report helpers. Prints a markdown table (and writes it, with
the raw figures, to ``--json``). See README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import sqlite3
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psutil
import trio
from trio_websocket import open_websocket_url

from bench.common import (
    CPU,
    ECHO_API,
    MIB,
    CpuUse,
    Report,
    RssSampler,
    Session,
    call,
    cpu_data,
    cpu_seconds,
    epoch,
    events_url,
    fmt_ms,
    log,
    machine_info,
    machine_table,
    other_cpu_warning,
    parser,
    run,
    runqueue_waits,
    source_revision,
    start_daemon,
    stop_daemon,
    summarize,
    vm_hwm,
    wait_until,
)
from bench.receiver import RESPONSE, Receiver
from intunedd.clock import iso
from intunedd.harness import DaemonProcess
from intunedd.ids import nanoid, new_uuid

PROJECT = "sinkbench"
API = "echo"
HEALTH_POLL_S = 0.01
# Copied from migrations 0001 (runs, without the autoincrement seq) and 0003 (deliveries).
RUN_COLUMNS = (
    "id, project, version, api, parameters, options, status, run_type, job_id, job_run_id, created_at, "
    "started_at, ended_at, result, extended_payloads, error, reason, attempts_count"
)
DELIVERY_COLUMNS = (
    "id, run_id, project, kind, sink, status, attempts, created_at, updated_at, next_attempt_at, "
    "first_attempt_at, delivered_at, last_status, last_error"
)


# --------------------------------------------------------------------------------------------
# The receiver's capacity


def _load(port: int, requests: int, connections: int, result: Any) -> None:
    """In a separate process: ``connections`` keep-alive connections, each sending the next
    request once the previous response has arrived (as the dispatcher's pool does)."""

    async def run() -> float:
        body = b'{"apiInfo": {"runId": "x", "result": {"status": "completed"}}, "pad": "' + b"x" * 240 + b'"}'
        counter = iter(range(requests))

        async def connection() -> None:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            for i in counter:
                writer.write(
                    b"POST /hook HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                    b"Idempotency-Key: load-%d\r\nContent-Length: %d\r\n\r\n%s" % (i, len(body), body)
                )
                if await reader.readexactly(len(RESPONSE)) != RESPONSE:
                    raise RuntimeError("unexpected response")
            writer.close()

        t0 = time.perf_counter()
        await asyncio.wait_for(asyncio.gather(*(connection() for _ in range(connections))), 60)
        return requests / (time.perf_counter() - t0)

    result.value = asyncio.run(run())


def receiver_capacity(receiver: Receiver, requests: int, connections: int) -> float:
    """Requests/s the receiver answers under a load from another process, with the same number
    of connections as the dispatcher. A lower bound: the load generator has its own costs, and on
    2 cores the two compete with each other."""
    ctx = multiprocessing.get_context("spawn")
    value = ctx.Value("d", 0.0)
    proc = ctx.Process(target=_load, args=(receiver.port, requests, connections, value), daemon=True)
    proc.start()
    proc.join(90)
    if proc.is_alive():
        proc.kill()
        proc.join(5)
        raise RuntimeError("the receiver's load test did not finish in 90 s")
    if proc.exitcode != 0 or not value.value:
        raise RuntimeError(f"the receiver's load test failed (exit {proc.exitcode})")
    if receiver.requests != requests or receiver.problems:
        raise RuntimeError(f"receiver counted {receiver.requests}/{requests} requests: {receiver.problems}")
    return float(value.value)


# --------------------------------------------------------------------------------------------
# Watching the daemon from threads (phase 1 blocks in start_daemon until the pool is warm)


@dataclass
class HealthMark:
    """Taken the moment /health first answers 200 with status ok."""

    t: float = 0.0
    delivered: int = 0  # seeded keys the receiver had already seen
    daemon_cpu: float = 0.0
    waits: dict[int, float] = field(default_factory=dict)
    cpu: tuple[float, float, float] = (0.0, 0.0, 0.0)
    receiver_cpu: float = 0.0
    rss: int = 0
    launched: float = 0.0  # when the daemon process appeared


class HealthPoller(threading.Thread):
    def __init__(self, daemon: DaemonProcess, receiver: Receiver, timeout_s: float) -> None:
        super().__init__(name="health", daemon=True)
        self.d, self.receiver, self.timeout_s = daemon, receiver, timeout_s
        self.mark: HealthMark | None = None
        self.launched = 0.0
        self.done = threading.Event()

    def run(self) -> None:
        deadline = time.monotonic() + self.timeout_s
        try:
            with httpx.Client(timeout=1.0) as client:
                while time.monotonic() < deadline:
                    if not self.launched and self.d.process is not None:
                        self.launched = time.perf_counter()
                    try:
                        r = client.get(f"{self.d.url}/health")
                        ok = r.status_code == 200 and r.json().get("status") == "ok"
                    except (httpx.TransportError, ValueError):
                        ok = False
                    if ok and self.d.process is not None:
                        t = time.perf_counter()
                        delivered = self.receiver.expected_seen
                        proc = psutil.Process(self.d.process.pid)
                        self.mark = HealthMark(
                            t=t,
                            delivered=delivered,
                            daemon_cpu=cpu_seconds(proc),
                            waits=runqueue_waits(proc.pid),
                            cpu=CPU.snapshot(),
                            receiver_cpu=self.receiver.cpu_seconds(),
                            rss=proc.memory_info().rss,
                            launched=self.launched,
                        )
                        return
                    time.sleep(HEALTH_POLL_S)
        finally:
            self.done.set()


# --------------------------------------------------------------------------------------------
# Phase 1: one real run, then the seeded outbox


def webhook_sink(receiver: Receiver) -> dict[str, Any]:
    return {"type": "webhook", "url": receiver.url}


async def delivery_totals(client: httpx.AsyncClient, d: DaemonProcess) -> dict[str, int]:
    out = {}
    for status in ("delivered", "pending", "failed"):
        page = await call(client, "GET", f"/api/v1/workspace/{d.workspace}/deliveries?status={status}&limit=1")
        out[status] = int(page["total"])
    return out


async def real_run(d: DaemonProcess, receiver: Receiver) -> dict[str, Any]:
    """One run through the real path; returns its id and how its delivery went."""
    receiver.reset(keep_bodies=True)
    params = {"probe": "real-run", "n": 1}
    with trio.fail_after(90):
        async with (
            open_websocket_url(events_url(d, PROJECT, ["run.completed", "run.failed"])) as ws,
            d.async_client() as client,
        ):
            body = {"api": API, "parameters": params, "saveTrace": False, "sink": webhook_sink(receiver)}
            run_id = (await call(client, "POST", d.path(PROJECT, "/run/start"), body))["runId"]
            while True:
                event = json.loads(await ws.get_message())
                if event.get("run_id") == run_id:
                    break
            if event["type"] != "run.completed":
                raise RuntimeError(f"the real run ended {event}")
            await wait_until(lambda: run_id in receiver.by_run, 30, "the real run's webhook")
            sent = json.loads(receiver.bodies[run_id])
            result = sent["apiInfo"]["result"]
            if result.get("status") != "completed" or result.get("result") != params:
                raise RuntimeError(f"the real run's webhook body is wrong: {sent}")
            latency_ms = (receiver.by_run[run_id][1] - epoch(event["at"])) * 1000

            # Stopping before the attempt is recorded would leave it pending (and resend it).
            async def recorded() -> dict[str, int]:
                while True:
                    totals = await delivery_totals(client, d)
                    if totals["delivered"] == 1:
                        return totals
                    await trio.sleep(0.05)

            with trio.fail_after(30):
                totals = await recorded()
    return {"run_id": run_id, "latency_ms": latency_ms, "totals": totals, "body_bytes": len(receiver.bodies[run_id])}


def seed_outbox(db_path: Path, real_run_id: str, n: int) -> tuple[set[str], float]:
    """``n`` completed runs and their pending webhook deliveries, copied from the real run's
    rows, in one transaction; the daemon must be stopped. Returns the idempotency keys."""
    t0 = time.perf_counter()
    conn = sqlite3.connect(db_path, isolation_level=None)
    try:
        conn.row_factory = sqlite3.Row
        run = conn.execute(f"SELECT {RUN_COLUMNS} FROM runs WHERE id=?", (real_run_id,)).fetchone()
        delivery = conn.execute(f"SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE run_id=?", (real_run_id,)).fetchone()
        if run is None or delivery is None:
            raise RuntimeError("the real run or its delivery is not in the database")
        if run["status"] != "completed" or delivery["status"] != "delivered" or delivery["kind"] != "webhook":
            raise RuntimeError(f"unexpected real rows: {dict(run)} {dict(delivery)}")
        base = datetime.now(UTC) - timedelta(hours=1)  # every seeded delivery is already due
        runs, deliveries, keys = [], [], set()
        for i in range(n):
            at = iso(base + timedelta(milliseconds=i))
            run_id, delivery_id = nanoid(), new_uuid()
            params = json.dumps({"i": i}, separators=(",", ":"))
            values = {
                **dict(run),
                "id": run_id,
                "parameters": params,
                "status": "completed",
                "created_at": at,
                "started_at": at,
                "ended_at": at,
                "result": params,
            }
            runs.append(tuple(values[c.strip()] for c in RUN_COLUMNS.split(",")))
            due = (at, at, at)  # created_at, updated_at, next_attempt_at
            rest = (None, None, None, None)  # first_attempt_at, delivered_at, last_status, last_error
            deliveries.append(
                (delivery_id, run_id, run["project"], "webhook", delivery["sink"], "pending", 0, *due, *rest)
            )
            keys.add(f"{run_id}:{delivery_id}")
        marks = ", ".join("?" * len(RUN_COLUMNS.split(",")))
        dmarks = ", ".join("?" * len(DELIVERY_COLUMNS.split(",")))
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(f"INSERT INTO runs ({RUN_COLUMNS}) VALUES ({marks})", runs)
            conn.executemany(f"INSERT INTO deliveries ({DELIVERY_COLUMNS}) VALUES ({dmarks})", deliveries)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    finally:
        conn.close()
    return keys, time.perf_counter() - t0


@dataclass
class Throughput:
    deliveries: int
    concurrency: int
    seed_s: float = 0.0
    elapsed_s: float = 0.0  # /health OK -> the receiver has every seeded key
    span_s: float = 0.0  # first -> last seeded request at the receiver
    before_health: int = 0  # seeded deliveries received before /health answered
    launch_to_health_s: float = 0.0
    requests: int = 0
    duplicates: int = 0
    mismatched: int = 0
    daemon_cpu_s: float = 0.0  # /health OK -> done, the daemon process alone
    daemon_wait_s: float = 0.0
    receiver_cpu_s: float = 0.0
    cpu: CpuUse | None = None
    rss_health: int = 0
    rss_peak: int = 0
    rss_end: int = 0
    rss_samples: int = 0
    hwm: int | None = None
    per_second: list[int] = field(default_factory=list)  # seeded deliveries received in each second after /health OK
    totals: dict[str, int] = field(default_factory=dict)
    sink_stats: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def per_s(self) -> float:
        return (self.deliveries - self.before_health) / self.elapsed_s if self.elapsed_s else 0.0

    @property
    def span_per_s(self) -> float:
        return (self.deliveries - 1) / self.span_s if self.span_s else 0.0

    @property
    def cpu_per_1000(self) -> float:
        done = self.deliveries - self.before_health
        return self.daemon_cpu_s / done * 1000 if done else 0.0

    @property
    def ok(self) -> bool:
        return self.totals.get("delivered") == self.deliveries + 1 and self.totals.get("pending") == 0


def dispatcher_phase(d: DaemonProcess, receiver: Receiver, args: argparse.Namespace, real_run_id: str) -> Throughput:
    out = Throughput(args.deliveries, args.concurrency)
    log(f"seed: {args.deliveries} completed runs + pending webhook deliveries into {d.state_dir / 'intunedd.db'}")
    keys, out.seed_s = seed_outbox(d.state_dir / "intunedd.db", real_run_id, args.deliveries)
    log(f"  {out.seed_s:.2f}s")
    receiver.reset(expected=keys)
    rss = RssSampler(d)
    health = HealthPoller(d, receiver, timeout_s=120)
    log(f"daemon: restarting with sinks.concurrency = {args.concurrency}; timing from /health OK")
    rss.start()
    health.start()
    try:
        start_daemon(d)  # returns once the pool is warm; the poller notes when /health first answered
        if not health.done.wait(30) or health.mark is None:
            raise RuntimeError("the health poller saw no OK")
        mark = health.mark
        remaining = args.phase_timeout - (time.perf_counter() - mark.t)
        if not receiver.all_seen.wait(max(remaining, 1.0)):
            raise RuntimeError(
                f"only {receiver.expected_seen}/{len(keys)} seeded deliveries arrived in {args.phase_timeout:g}s"
            )
        assert d.process is not None
        proc = psutil.Process(d.process.pid)
        out.daemon_cpu_s = cpu_seconds(proc) - mark.daemon_cpu
        waits = runqueue_waits(proc.pid)
        out.daemon_wait_s = sum(w - mark.waits.get(tid, 0.0) for tid, w in waits.items())
        out.cpu = CPU.since(mark.cpu)
        out.receiver_cpu_s = receiver.cpu_seconds() - mark.receiver_cpu
        out.rss_end = proc.memory_info().rss
        out.hwm = vm_hwm(proc.pid)
    finally:
        rss.finish()
    seen = [receiver.arrivals[k][0] for k in keys]
    out.elapsed_s = max(seen) - mark.t
    out.span_s = max(seen) - min(seen)
    out.before_health = mark.delivered
    out.per_second = [0] * (int(out.elapsed_s) + 1)
    for t in seen:
        if t >= mark.t:
            out.per_second[int(t - mark.t)] += 1
    out.launch_to_health_s = mark.t - mark.launched if mark.launched else 0.0
    out.requests, out.duplicates, out.mismatched = receiver.requests, receiver.duplicates, receiver.mismatched
    out.problems += receiver.problems
    out.rss_health, out.rss_peak, out.rss_samples = mark.rss, max(rss.peak, out.rss_end), rss.samples
    log(
        f"  {out.per_s:.0f} deliveries/s ({out.elapsed_s:.2f}s from /health OK, {out.before_health} before it); "
        f"daemon CPU {out.daemon_cpu_s:.2f}s, peak RSS {out.rss_peak / MIB:.0f} MiB; CPU busy/other {out.cpu}"
    )

    async def verify() -> None:
        async with d.async_client() as client:
            with trio.move_on_after(30):  # the last attempts are recorded just after their POST
                while True:
                    out.totals = await delivery_totals(client, d)
                    if out.totals["delivered"] >= args.deliveries + 1 and out.totals["pending"] == 0:
                        break
                    await trio.sleep(0.1)
            out.sink_stats = (await call(client, "GET", "/health"))["sinks"]

    trio.run(verify)
    if not out.ok:
        out.problems.append(f"deliveries API after the phase: {out.totals} (expected delivered {args.deliveries + 1})")
    return out


# --------------------------------------------------------------------------------------------
# Phase 2: end-to-end latency of real runs


@dataclass
class LatencyResult:
    runs: int
    from_at_ms: list[float] = field(default_factory=list)  # event `at` -> receiver (wall clocks)
    from_ws_ms: list[float] = field(default_factory=list)  # event's arrival here -> receiver
    from_post_ms: list[float] = field(default_factory=list)  # POST run/start -> receiver
    failed: int = 0
    duplicates: int = 0
    cpu: CpuUse | None = None


async def latency_phase(d: DaemonProcess, receiver: Receiver, args: argparse.Namespace) -> LatencyResult:
    out = LatencyResult(args.latency_runs)
    receiver.reset(keep_bodies=False)
    events: dict[str, tuple[float, dict[str, Any]]] = {}

    async def read(ws: Any) -> None:
        while True:
            event = json.loads(await ws.get_message())
            if event.get("run_id"):
                events.setdefault(event["run_id"], (time.perf_counter(), event))

    with trio.fail_after(args.phase_timeout):
        async with (
            open_websocket_url(events_url(d, PROJECT, ["run.completed", "run.failed"])) as ws,
            d.async_client() as client,
            trio.open_nursery() as nursery,
        ):
            nursery.start_soon(read, ws)
            warm = 3
            cpu_start = None
            for k in range(warm + args.latency_runs):
                if k == warm:
                    cpu_start = CPU.snapshot()
                await trio.sleep(args.latency_gap_ms / 1000)
                body = {"api": API, "parameters": {"k": k}, "saveTrace": False, "sink": webhook_sink(receiver)}
                t_post = time.perf_counter()
                run_id = (await call(client, "POST", d.path(PROJECT, "/run/start"), body))["runId"]
                await wait_until(lambda r=run_id: r in events, 60, f"run {run_id}'s terminal event")
                t_event, event = events[run_id]
                if event["type"] != "run.completed":
                    out.failed += k >= warm
                    continue
                await wait_until(lambda r=run_id: r in receiver.by_run, 30, f"run {run_id}'s webhook")
                t_recv, wall_recv = receiver.by_run[run_id]
                if k >= warm:
                    out.from_at_ms.append((wall_recv - epoch(event["at"])) * 1000)
                    out.from_ws_ms.append((t_recv - t_event) * 1000)
                    out.from_post_ms.append((t_recv - t_post) * 1000)
            out.cpu = CPU.since(cpu_start) if cpu_start else None
            await trio.sleep(0.2)  # a late duplicate would show here
            out.duplicates = receiver.duplicates
            nursery.cancel_scope.cancel()
    return out


# --------------------------------------------------------------------------------------------
# Report


def report(
    args: argparse.Namespace,
    machine: dict[str, Any],
    capacity: float,
    capacity_cpu: CpuUse,
    real: dict[str, Any],
    t: Throughput,
    lat: LatencyResult,
) -> tuple[str, dict[str, Any]]:
    n = t.deliveries
    counted = n - t.before_health
    rows = [
        (
            f"Receiver capacity (lower bound: load from another process, {args.concurrency} keep-alive connections)",
            f"{args.capacity_requests}",
            "",
            f"{capacity:.0f} req/s",
            str(capacity_cpu),
        ),
        (
            "One real run with a webhook sink (the real path), `at` → receiver",
            "1",
            "",
            f"delivered, {real['latency_ms']:.1f} ms, body {real['body_bytes']} B",
            "",
        ),
        (
            f"**Dispatcher throughput**, seeded outbox, sinks.concurrency {t.concurrency}: /health OK → all keys seen",
            f"{counted}",
            f"{t.elapsed_s:.2f}",
            f"**{t.per_s:.0f} deliveries/s**",
            str(t.cpu),
        ),
        (
            "↳ first → last seeded request at the receiver (all of them)",
            f"{n}",
            f"{t.span_s:.2f}",
            f"{t.span_per_s:.0f} deliveries/s",
            "",
        ),
        (
            "↳ duplicates seen by the receiver / body runId mismatches",
            f"{t.requests}",
            "",
            f"{t.duplicates} / {t.mismatched}",
            "",
        ),
        (
            "**Daemon peak RSS** (daemon process, every 100 ms): at /health OK → peak → end",
            f"{t.rss_samples}",
            "",
            f"**{t.rss_health / MIB:.0f} → {t.rss_peak / MIB:.0f} → {t.rss_end / MIB:.0f} MiB**",
            "",
        ),
        (
            "Daemon CPU per 1,000 deliveries (daemon process alone)",
            f"{counted}",
            "",
            f"{t.cpu_per_1000:.2f} s ({t.daemon_cpu_s:.2f} s = {100 * t.daemon_cpu_s / t.elapsed_s:.0f}% of one core)",
            "",
        ),
        (
            "Daemon run-queue wait (runnable, waiting for a CPU; summed over its threads)",
            "",
            "",
            f"{t.daemon_wait_s:.2f} s",
            "",
        ),
        (
            "Receiver thread CPU during the phase",
            "",
            "",
            f"{t.receiver_cpu_s:.2f} s ({100 * t.receiver_cpu_s / t.elapsed_s:.0f}% of one core)",
            "",
        ),
        (
            "**End-to-end delivery latency**, sequential real runs: `run.completed` `at` → receiver",
            f"{len(lat.from_at_ms)}",
            "",
            f"**{fmt_ms(summarize(lat.from_at_ms))}**",
            str(lat.cpu) if lat.cpu else "",
        ),
        (
            "↳ from the event's arrival on the benchmark's websocket → receiver",
            f"{len(lat.from_ws_ms)}",
            "",
            fmt_ms(summarize(lat.from_ws_ms)),
            "",
        ),
        (
            "↳ from just before POST run/start → receiver",
            f"{len(lat.from_post_ms)}",
            "",
            fmt_ms(summarize(lat.from_post_ms)),
            "",
        ),
    ]
    whole = t.per_second[:-1]  # the last second is partial
    lines = [
        f"### intunedd sink delivery benchmark ({n} deliveries, sinks.concurrency {t.concurrency})",
        "",
        "| Measurement | N | Elapsed (s) | Result | CPU busy / other procs |",
        "|---|---:|---:|---|---:|",
        *[f"| {a} | {b} | {e} | {r} | {u} |" for a, b, e, r, u in rows],
        "",
        *machine_table(machine),
        f"- seeding: {n} runs + deliveries inserted in one transaction in {t.seed_s:.2f}s, with the daemon stopped",
        f"- daemon restart: process start → /health OK {t.launch_to_health_s:.2f}s (pool of {args.pool} browser "
        f"starts first); {t.before_health} seeded deliveries arrived before /health answered and are left out of "
        "the /health-OK figure",
        f"- deliveries per whole second after /health OK: min {min(whole):.0f}, max {max(whole):.0f} "
        f"({len(whole)} whole seconds)"
        if whole
        else "- phase shorter than 2 s: no per-second figures",
        f"- deliveries API afterwards: delivered {t.totals.get('delivered')} (expected {n + 1}), "
        f"pending {t.totals.get('pending')}, failed {t.totals.get('failed')}; dispatcher attempts since the "
        f"restart {t.sink_stats.get('attempts')}",
        f"- daemon VmHWM (peak RSS since start, kernel): {t.hwm / MIB:.0f} MiB" if t.hwm else "- VmHWM n/a",
        f"- latency runs: {lat.runs - lat.failed}/{lat.runs} completed, {lat.duplicates} duplicate webhooks; "
        "`at` has millisecond resolution (truncated), so the `at` figures are up to 1 ms high",
    ]
    lines += [f"- problem: {p}" for p in t.problems]
    uses = [capacity_cpu, t.cpu, lat.cpu]
    others = max((u.other_pct for u in uses if u is not None), default=0)
    warning = other_cpu_warning(uses, "a measured phase")
    lines.append(warning or f"- other processes used at most {others:.0f}% of the CPU: undisturbed")
    markdown = "\n".join(lines)
    data = {
        "settings": {
            "deliveries": n,
            "concurrency": t.concurrency,
            "latency_runs": args.latency_runs,
            "latency_gap_ms": args.latency_gap_ms,
            "pool": args.pool,
        },
        "machine": machine,
        "receiver_capacity": {"requests": args.capacity_requests, "per_s": capacity, "cpu": cpu_data(capacity_cpu)},
        "real_run": real,
        "throughput": {
            "seed_s": t.seed_s,
            "elapsed_s": t.elapsed_s,
            "counted": counted,
            "deliveries_per_s": t.per_s,
            "span_s": t.span_s,
            "span_deliveries_per_s": t.span_per_s,
            "before_health": t.before_health,
            "launch_to_health_s": t.launch_to_health_s,
            "requests": t.requests,
            "duplicates": t.duplicates,
            "mismatched": t.mismatched,
            "daemon_cpu_s": t.daemon_cpu_s,
            "daemon_cpu_s_per_1000": t.cpu_per_1000,
            "daemon_wait_s": t.daemon_wait_s,
            "receiver_cpu_s": t.receiver_cpu_s,
            "rss_health": t.rss_health,
            "rss_peak": t.rss_peak,
            "rss_end": t.rss_end,
            "rss_samples": t.rss_samples,
            "vm_hwm": t.hwm,
            "per_second": t.per_second,
            "totals": t.totals,
            "sink_stats": t.sink_stats,
            "problems": t.problems,
            "cpu": cpu_data(t.cpu),
        },
        "latency": {
            "from_at": summarize(lat.from_at_ms),
            "from_ws": summarize(lat.from_ws_ms),
            "from_post": summarize(lat.from_post_ms),
            "failed": lat.failed,
            "duplicates": lat.duplicates,
            "cpu": cpu_data(lat.cpu),
            "from_at_ms": lat.from_at_ms,
        },
    }
    return markdown, data


# --------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = parser(__doc__, phase_timeout=180.0)
    p.add_argument("--deliveries", type=int, default=5000, help="seeded pending webhook deliveries")
    p.add_argument("--concurrency", type=int, default=16, help="[sinks] concurrency of the daemon")
    p.add_argument("--latency-runs", type=int, default=100, help="sequential real runs for the latency")
    p.add_argument("--latency-gap-ms", type=float, default=20.0, help="idle gap before each latency run")
    p.add_argument("--pool", type=int, default=1, help="browser pool size (only the real runs use it)")
    p.add_argument("--capacity-requests", type=int, default=20000, help="requests of the receiver's load test")
    args = p.parse_args(argv)
    if args.deliveries < 1 or args.concurrency < 1 or args.latency_runs < 1 or args.pool < 1:
        p.error("--deliveries, --concurrency, --latency-runs and --pool must be positive")
    return args


def measure(session: Session, args: argparse.Namespace) -> Report:
    # The receiver is on the loopback, which sinks refuse unless allowed.
    sinks = {"concurrency": args.concurrency, "allow_networks": ["127.0.0.0/8"]}
    daemon = session.daemon(args.pool, sinks=sinks)
    with Receiver() as receiver:
        revision = source_revision()
        log(f"receiver on {receiver.url}; capacity check, {args.capacity_requests} requests")
        cpu_start = CPU.snapshot()
        capacity = receiver_capacity(receiver, args.capacity_requests, args.concurrency)
        capacity_cpu = CPU.since(cpu_start)
        log(f"  {capacity:.0f} req/s (CPU busy/other {capacity_cpu})")

        log(f"daemon: starting (pool {args.pool}) in {daemon.state_dir}; source {revision}")
        start_daemon(daemon)
        daemon.deploy(PROJECT, {f"api/{API}.py": ECHO_API}, {"replication": {"maxConcurrentRequests": args.pool}})
        real = trio.run(real_run, daemon, receiver)
        log(f"real run {real['run_id']}: delivered, {real['latency_ms']:.1f} ms after its run.completed `at`")
        log("daemon: stopping (SIGTERM)")
        stop_daemon(daemon)
        daemon.process = None  # the samplers of the dispatcher phase wait for the next one

        t = dispatcher_phase(daemon, receiver, args, real["run_id"])
        log(f"latency: {args.latency_runs} sequential real runs with a webhook sink")
        lat = trio.run(latency_phase, daemon, receiver, args)
        s = summarize(lat.from_at_ms)
        log(f"  p50 {s['p50_ms']:.1f} ms, p99 {s['p99_ms']:.1f} ms (CPU busy/other {lat.cpu})")
    markdown, data = report(args, machine_info(revision), capacity, capacity_cpu, real, t, lat)
    bad = not t.ok or bool(t.mismatched) or bool(lat.failed) or len(lat.from_at_ms) != args.latency_runs
    return Report(markdown, data, failed=bad)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run(args, "intunedd-sinkbench-", lambda session: measure(session, args))


if __name__ == "__main__":
    sys.exit(main())
