#!/usr/bin/env python
"""JobRun orchestration overhead and scheduler precision of intunedd.

    python -m bench.jobrun [--items 2000] [--concurrency 4] [--firings 100] [--json out.json]

1. JobRun: a project whose only API returns its parameters; a job with ``--items`` payload
   items (``maxConcurrentRequests`` = pool size = ``--concurrency``, one attempt each) is
   triggered once, after an untimed warm-up JobRun. Completion is learnt from the
   ``jobrun.status`` websocket event; then payloads == successful_runs == items is checked and
   every run is fetched from the paginated run list. Reported: the wall time, the summed run
   time (Σ runDuration), the orchestration overhead per item ((wall × concurrency − Σ) / items),
   items/s, the daemon's CPU seconds and peak RSS (sampled every 100 ms, the daemon process
   only) and the workers' RSS at the end.
2. Scheduler: a job with ``{"every": "1s"}`` and one trivial item; each ``jobrun.created``
   event's ``at`` (when the JobRun was committed) minus its slot (the whole UTC second it
   belongs to) is the lateness, also measured at the subscriber (arrival time − slot). After
   ``--firings`` firings the job is paused; skipped or doubled slots are counted.

Uses ``bench/common.py``'s daemon, CPU and report helpers. Prints a markdown table (and writes
it, with the raw figures, to ``--json``). See README.md.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass, field
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
    summarize,
    vm_hwm,
)
from intunedd.harness import DaemonProcess

PROJECT = "jobbench"
API = "noop"
ACTIVE = ("PENDING", "PAUSING", "PAUSED", "RESUMING")  # a JobRun in any other status has ended
LONG_GAP_S = 1.0


# --------------------------------------------------------------------------------------------
# Helpers


def tree_memory(daemon_pid: int) -> dict[str, Any]:
    """RSS of the daemon's descendants: its worker processes (direct children) and the rest
    (Chromium and its helpers). RSS counts shared pages once per process; PSS splits them."""
    out = {"workers": 0, "workers_rss": 0, "workers_pss": 0, "browser_procs": 0, "browser_rss": 0, "browser_pss": 0}
    try:
        children = psutil.Process(daemon_pid).children(recursive=True)
    except psutil.Error:
        return out
    for p in children:
        kind = "workers" if p.ppid() == daemon_pid else "browser"
        try:
            mem = p.memory_full_info()
        except psutil.Error:
            continue
        out["workers" if kind == "workers" else "browser_procs"] += 1
        out[f"{kind}_rss"] += mem.rss
        out[f"{kind}_pss"] += getattr(mem, "pss", 0)
    return out


async def wait_pool_idle(client: httpx.AsyncClient, timeout_s: float = 60.0) -> dict[str, Any]:
    """Until every worker is idle, e.g. the replacements of recycled workers have started."""
    with trio.fail_after(timeout_s):
        while True:
            pool: dict[str, Any] = (await call(client, "GET", "/health"))["pool"]
            if pool["idle"] == pool["size"]:
                return pool
            await trio.sleep(0.1)


def idle_slots(
    spans: list[tuple[float, float]], slots: int, t0: float, t1: float, long_s: float
) -> tuple[float, float]:
    """Slot time not spent inside a run over [t0, t1], from the runs' (start, end): the total, and
    the part of it in stretches of at least ``long_s`` during which some slot stayed free (a
    worker being replaced, the ramp-up, the tail), as opposed to short gaps between runs."""
    delta: dict[float, int] = {}
    for start, end in spans:
        delta[start] = delta.get(start, 0) + 1
        delta[end] = delta.get(end, 0) - 1
    running = sum(d for t, d in delta.items() if t <= t0)
    times = [t0, *sorted(t for t in delta if t0 < t < t1), t1]
    total = long_total = stretch_idle = 0.0
    stretch_start: float | None = None
    for a, b in zip(times, times[1:], strict=False):
        if a > t0:
            running += delta.get(a, 0)
        idle = max(0, slots - running) * (b - a)
        total += idle
        if idle > 0:
            stretch_start = a if stretch_start is None else stretch_start
            stretch_idle += idle
        elif stretch_start is not None:
            long_total += stretch_idle if a - stretch_start >= long_s else 0.0
            stretch_idle, stretch_start = 0.0, None
    if stretch_start is not None and t1 - stretch_start >= long_s:
        long_total += stretch_idle
    return total, long_total


def job_body(job_id: str, items: int, concurrency: int, schedule: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": job_id,
        "payload": [{"apiName": API, "parameters": {"i": i}} for i in range(items)],
        "configuration": {"maxConcurrentRequests": concurrency, "retry": {"maximumAttempts": 1}},
    }
    if schedule is not None:
        body["schedule"] = schedule
    return body


# --------------------------------------------------------------------------------------------
# 1. One JobRun


@dataclass
class JobRunResult:
    items: int
    concurrency: int
    job_run_id: str = ""
    status: str = ""
    payloads: int = 0
    successful: int = 0
    failed: int = 0
    wall_s: float = 0.0  # POST trigger -> arrival of the terminal jobrun.status event
    trigger_s: float = 0.0  # the POST trigger round trip (creates the JobRun and its runs)
    server_wall_s: float = 0.0  # JobRun created_at -> end_time
    first_start_s: float = 0.0  # JobRun created_at -> first run startedAt
    tail_s: float = 0.0  # last run endedAt -> JobRun end_time
    idle_slot_s: float = 0.0  # slot time outside runs between created_at and end_time, from the runs' times
    idle_long_s: float = 0.0  # the part of it in stretches >= LONG_GAP_S during which a slot stayed free
    run_ms: list[float] = field(default_factory=list)
    runs_listed: int = 0
    not_completed: int = 0
    multi_attempt: int = 0
    daemon_cpu_s: float = 0.0
    daemon_wait_s: float = 0.0  # summed over the daemon's threads: runnable, waiting for a CPU
    cpu: CpuUse | None = None
    rss_before: int = 0
    rss_peak: int = 0
    rss_end: int = 0
    rss_samples: int = 0
    hwm: int | None = None
    tree: dict[str, Any] = field(default_factory=dict)
    pool_before: dict[str, Any] = field(default_factory=dict)  # /health "pool" before and after the JobRun
    pool_after: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def summed_s(self) -> float:
        return sum(self.run_ms) / 1000

    @property
    def overhead_ms(self) -> float:
        return (self.wall_s * self.concurrency - self.summed_s) / self.items * 1000

    @property
    def per_s(self) -> float:
        return self.items / self.wall_s if self.wall_s else 0.0

    @property
    def ok(self) -> bool:
        return (
            self.status == "COMPLETED"
            and self.payloads == self.successful == self.items == self.runs_listed
            and not self.not_completed
        )


class JobRunStatuses:
    """``jobrun.status`` events from one websocket: the last status per JobRun and its arrival."""

    def __init__(self) -> None:
        self.ended: dict[str, tuple[float, dict[str, Any]]] = {}
        self._changed = trio.Event()

    async def read(self, ws: Any) -> None:
        while True:
            event = json.loads(await ws.get_message())
            now = time.perf_counter()
            data = event.get("data", {})
            if event.get("type") == "jobrun.status" and data.get("status") not in ACTIVE:
                self.ended.setdefault(data["job_run_id"], (now, data))
                self._changed.set()
                self._changed = trio.Event()

    async def wait(self, job_run_id: str) -> tuple[float, dict[str, Any]]:
        while job_run_id not in self.ended:
            await self._changed.wait()
        return self.ended[job_run_id]


async def list_job_runs_runs(client: httpx.AsyncClient, d: DaemonProcess, job_run_id: str) -> list[dict[str, Any]]:
    runs: dict[str, dict[str, Any]] = {}
    offset, total = 0, None
    while total is None or offset < total:
        page = await call(
            client, "GET", d.path(PROJECT, f"/runs?limit=500&offset={offset}&filter=job_run_id={job_run_id}")
        )
        total = page["total"]
        if not page["items"]:
            break
        for item in page["items"]:
            runs[item["id"]] = item
        offset += len(page["items"])
    return list(runs.values())


async def trigger_and_wait(
    d: DaemonProcess, client: httpx.AsyncClient, job_id: str, timeout_s: float, out: JobRunResult | None = None
) -> tuple[str, float, float, dict[str, Any]]:
    """Trigger the job, wait for its JobRun's terminal status event; with ``out``, measure the
    daemon (CPU, RSS every 100 ms, machine CPU use) meanwhile."""
    statuses = JobRunStatuses()
    assert d.process is not None
    proc = psutil.Process(d.process.pid)
    rss = RssSampler(d)
    with trio.fail_after(timeout_s):
        async with open_websocket_url(events_url(d, PROJECT, ["jobrun.status"])) as ws, trio.open_nursery() as nursery:
            nursery.start_soon(statuses.read, ws)
            # The subscription exists once the handshake is done: the completion cannot be missed.
            if out is not None:
                out.rss_before = proc.memory_info().rss
                cpu_before = cpu_seconds(proc)
                waits_before = runqueue_waits(proc.pid)
                cpu_start = CPU.snapshot()
                rss.start()
            t0 = time.perf_counter()
            job_run_id = (await call(client, "POST", d.path(PROJECT, f"/jobs/{job_id}/trigger")))["jobRunId"]
            t_trigger = time.perf_counter()
            t_end, data = await statuses.wait(job_run_id)
            if out is not None:
                out.daemon_cpu_s = cpu_seconds(proc) - cpu_before
                waits = runqueue_waits(proc.pid)
                out.daemon_wait_s = sum(w - waits_before.get(tid, 0.0) for tid, w in waits.items())
                out.cpu = CPU.since(cpu_start)
                out.rss_end = proc.memory_info().rss
                rss.finish()
                out.rss_peak = max(out.rss_before, rss.peak, out.rss_end)
                out.rss_samples = rss.samples
            nursery.cancel_scope.cancel()
    return job_run_id, t_end - t0, t_trigger - t0, data


async def jobrun_phase(d: DaemonProcess, args: argparse.Namespace) -> JobRunResult:
    c = args.concurrency
    out = JobRunResult(args.items, c)
    async with d.async_client() as client:
        warm = max(4 * c, 8)
        log(f"jobrun: warm-up JobRun ({warm} items)")
        with trio.fail_after(60):
            await call(client, "POST", d.path(PROJECT, "/jobs"), job_body("warm", warm, c))
        _, warm_s, _, data = await trigger_and_wait(d, client, "warm", 60)
        if data.get("status") != "COMPLETED":
            raise RuntimeError(f"warm-up JobRun ended {data}")
        log(f"  {warm_s:.2f}s")

        log(f"jobrun: creating a job with {args.items} items (concurrency {c})")
        with trio.fail_after(60):
            await call(client, "POST", d.path(PROJECT, "/jobs"), job_body("bench", args.items, c))
        log("jobrun: trigger, waiting for COMPLETED")
        out.pool_before = await wait_pool_idle(client)
        out.job_run_id, out.wall_s, out.trigger_s, _ = await trigger_and_wait(
            d, client, "bench", args.phase_timeout, out
        )
        assert d.process is not None
        out.hwm = vm_hwm(d.process.pid)
        out.tree = tree_memory(d.process.pid)
        log(f"  {out.wall_s:.2f}s, {out.items / out.wall_s:.1f} items/s")

        with trio.fail_after(120):
            out.pool_after = (await call(client, "GET", "/health"))["pool"]
            job_run = (await call(client, "GET", d.path(PROJECT, f"/jobs/bench/runs/{out.job_run_id}")))["jobRun"]
            runs = await list_job_runs_runs(client, d, out.job_run_id)
    out.status = job_run["status"]
    out.payloads = job_run["payloads"]
    out.successful = job_run["successful_runs"]
    out.failed = job_run["failed_runs"]
    out.runs_listed = len(runs)
    if job_run.get("end_time"):
        out.server_wall_s = epoch(job_run["end_time"]) - epoch(job_run["created_at"])
    started = [epoch(r["startedAt"]) for r in runs if r.get("startedAt")]
    ended = [epoch(r["endedAt"]) for r in runs if r.get("endedAt")]
    if started and job_run.get("end_time"):
        out.first_start_s = min(started) - epoch(job_run["created_at"])
        out.tail_s = epoch(job_run["end_time"]) - max(ended)
        spans = [(epoch(r["startedAt"]), epoch(r["endedAt"])) for r in runs if r.get("startedAt") and r.get("endedAt")]
        out.idle_slot_s, out.idle_long_s = idle_slots(
            spans, out.concurrency, epoch(job_run["created_at"]), epoch(job_run["end_time"]), LONG_GAP_S
        )
    for r in runs:
        if r["status"] != "completed" or r.get("runDuration") is None:
            out.not_completed += 1
            if len(out.problems) < 5:
                out.problems.append(f"run {r['id']}: {json.dumps(r)[:300]}")
            continue
        out.run_ms.append(float(r["runDuration"]))
        out.multi_attempt += (r.get("attemptsCount") or 1) > 1
    if not (out.payloads == out.successful == out.items == out.runs_listed):
        out.problems.append(
            f"payloads {out.payloads}, successful_runs {out.successful}, items {out.items}, "
            f"listed runs {out.runs_listed}"
        )
    return out


# --------------------------------------------------------------------------------------------
# 2. Scheduler precision


@dataclass
class SchedulerResult:
    firings: int
    slots: list[int] = field(default_factory=list)
    server_ms: list[float] = field(default_factory=list)  # event at - slot
    client_ms: list[float] = field(default_factory=list)  # arrival at the subscriber - slot
    statuses: dict[str, int] = field(default_factory=dict)
    skipped: int = 0
    doubled: int = 0
    events_total: int = 0  # jobrun.created events of the job until the pause (and a grace)
    job_runs_total: int = 0  # JobRuns the daemon lists for the job afterwards
    cpu: CpuUse | None = None


async def scheduler_phase(d: DaemonProcess, args: argparse.Namespace) -> SchedulerResult:
    out = SchedulerResult(args.firings)
    job_id = "tick"
    got_enough = trio.Event()
    received: list[tuple[float, dict[str, Any]]] = []  # (time.time() at arrival, event)

    async def read(ws: Any) -> None:
        while True:
            message = await ws.get_message()
            now = time.time()
            event = json.loads(message)
            if event.get("type") == "jobrun.created" and event.get("data", {}).get("job_id") == job_id:
                received.append((now, event))
                if len(received) >= args.firings:
                    got_enough.set()

    with trio.fail_after(args.firings * 1.0 + 120):
        async with (
            d.async_client() as client,
            open_websocket_url(events_url(d, PROJECT, ["jobrun.created"])) as ws,
            trio.open_nursery() as nursery,
        ):
            nursery.start_soon(read, ws)
            await wait_pool_idle(client)  # workers recycled at the end of the JobRun have restarted
            cpu_start = CPU.snapshot()
            body = job_body(job_id, 1, 1, schedule={"intervals": [{"every": "1s"}]})
            await call(client, "POST", d.path(PROJECT, "/jobs"), body)
            log(f"scheduler: job '{job_id}' every 1s, collecting {args.firings} firings")
            await got_enough.wait()
            out.cpu = CPU.since(cpu_start)
            await call(client, "POST", d.path(PROJECT, f"/jobs/{job_id}/pause"))
            await trio.sleep(1.5)  # an event committed just before the pause still arrives
            out.events_total = len(received)
            listing = await call(client, "GET", d.path(PROJECT, f"/jobs/{job_id}/runs?pageSize=1&pageNumber=1"))
            out.job_runs_total = int(listing["totalCount"])
            nursery.cancel_scope.cancel()

    for arrival, event in received[: args.firings]:
        at = epoch(event["at"])
        slot = math.floor(at)
        out.slots.append(slot)
        out.server_ms.append((at - slot) * 1000)
        out.client_ms.append((arrival - slot) * 1000)
        status = event["data"].get("status", "?")
        out.statuses[status] = out.statuses.get(status, 0) + 1
    for a, b in zip(out.slots, out.slots[1:], strict=False):
        if b == a:
            out.doubled += 1
        elif b > a + 1:
            out.skipped += b - a - 1
    return out


# --------------------------------------------------------------------------------------------
# Report


def mib(n: int | None) -> str:
    return "?" if n is None else f"{n / MIB:.0f} MiB"


def report(
    args: argparse.Namespace, machine: dict[str, Any], j: JobRunResult, s: SchedulerResult | None
) -> tuple[str, dict[str, Any]]:
    c = j.concurrency
    run = summarize(j.run_ms)
    busy_cpu_s = j.cpu.busy_pct / 100 * (machine["cores"] or 1) * j.wall_s if j.cpu else 0.0
    rows = [
        ("JobRun items: payloads / successful_runs / listed runs", f"{j.payloads} / {j.successful} / {j.runs_listed}"),
        ("Wall time (POST trigger → COMPLETED event)", f"{j.wall_s:.2f} s"),
        ("Throughput", f"{j.per_s:.1f} items/s"),
        ("Summed run time (Σ runDuration)", f"{j.summed_s:.2f} s"),
        ("↳ per item", fmt_ms(run, "max") + (f" · mean {run['mean_ms']:.1f} ms" if run.get("n") else "")),
        (f"**Orchestration overhead per item** ((wall × {c} − Σ) / items)", f"**{j.overhead_ms:.1f} ms**"),
        (
            f"↳ in stretches ≥ {LONG_GAP_S:g} s with a slot free (worker recycling, ramp-up, tail) / in short gaps",
            f"{j.idle_long_s / j.items * 1000:.1f} ms / {(j.idle_slot_s - j.idle_long_s) / j.items * 1000:.1f} ms",
        ),
        (f"Mean busy worker slots (Σ / wall, of {c})", f"{j.summed_s / j.wall_s:.2f}" if j.wall_s else "n/a"),
        ("POST trigger round trip (creates the JobRun and its runs)", f"{j.trigger_s * 1000:.0f} ms"),
        ("JobRun created → first run started", f"{j.first_start_s * 1000:.0f} ms"),
        ("Last run ended → JobRun ended", f"{j.tail_s * 1000:.0f} ms"),
        (
            "Daemon CPU during the JobRun",
            f"{j.daemon_cpu_s:.2f} s ({j.daemon_cpu_s / j.items * 1000:.2f} ms/item; "
            f"{100 * j.daemon_cpu_s / busy_cpu_s if busy_cpu_s else 0:.0f}% of all busy CPU)",
        ),
        (
            "Daemon run-queue wait during the JobRun (runnable, waiting for a CPU; all its threads)",
            f"{j.daemon_wait_s:.2f} s ({j.daemon_wait_s / j.items * 1000:.2f} ms/item)",
        ),
        ("CPU busy / other procs during the JobRun", str(j.cpu) if j.cpu else ""),
        (
            "**Daemon peak RSS** (sampled every 100 ms; before → peak → end)",
            f"{mib(j.rss_before)} → **{mib(j.rss_peak)}** → {mib(j.rss_end)}",
        ),
        (
            "Workers' RSS at the end (worker processes / their Chromiums)",
            f"{mib(j.tree.get('workers_rss'))} ({j.tree.get('workers')} procs) / "
            f"{mib(j.tree.get('browser_rss'))} ({j.tree.get('browser_procs')} procs)",
        ),
    ]
    if s is not None:
        server, client = summarize(s.server_ms), summarize(s.client_ms)
        rows += [
            (
                "Scheduler: firings, skipped / doubled slots",
                f"{len(s.slots)}, {s.skipped} skipped / {s.doubled} doubled",
            ),
            ("**Lateness at commit** (jobrun.created `at` − slot)", f"**{fmt_ms(server, 'max')}**"),
            ("Lateness at the subscriber (event arrival − slot)", fmt_ms(client, "max")),
            ("CPU busy / other procs during the scheduler phase", str(s.cpu) if s.cpu else ""),
        ]
    lines = [
        f"### intunedd JobRun benchmark ({j.items} items, concurrency {c})",
        "",
        "| Measurement | Result |",
        "|---|---|",
        *[f"| {a} | {b} |" for a, b in rows],
        "",
        *machine_table(machine),
        f"- JobRun {j.job_run_id}: {j.status}; {j.failed} failed, {j.not_completed} listed runs not completed, "
        f"{j.multi_attempt} with more than one attempt; server-side wall (created_at → end_time) "
        f"{j.server_wall_s:.2f} s",
        f"- daemon RSS samples: {j.rss_samples}; kernel high-water mark since start (VmHWM) {mib(j.hwm)}; "
        f"PSS at the end: workers {mib(j.tree.get('workers_pss'))}, Chromiums {mib(j.tree.get('browser_pss'))}",
    ]
    spawned, recycled, killed = (
        j.pool_after.get(k, 0) - j.pool_before.get(k, 0) for k in ("spawned", "recycled", "killed")
    )
    lines.append(
        f"- pool during the JobRun: {spawned} workers spawned, {recycled} recycled, {killed} killed "
        "(a recycled worker's slot is empty while its replacement starts)"
    )
    lines += [f"- problem: {p}" for p in j.problems]
    if s is not None:
        lines.append(
            f"- scheduler: JobRun statuses at creation {s.statuses}; {s.events_total} jobrun.created events "
            f"received until the pause, {s.job_runs_total} JobRuns listed for the job"
        )
        if s.events_total != s.job_runs_total:
            lines.append("- WARNING: the websocket and the JobRun list disagree on the number of firings")
    for phase, use in (("the JobRun", j.cpu), ("the scheduler phase", s.cpu if s else None)):
        warning = other_cpu_warning([use], phase)
        lines += [warning] if warning else []
    markdown = "\n".join(lines)

    data: dict[str, Any] = {
        "settings": {"items": args.items, "concurrency": c, "firings": args.firings},
        "machine": machine,
        "jobrun": {
            "job_run_id": j.job_run_id,
            "status": j.status,
            "payloads": j.payloads,
            "successful_runs": j.successful,
            "failed_runs": j.failed,
            "runs_listed": j.runs_listed,
            "not_completed": j.not_completed,
            "multi_attempt": j.multi_attempt,
            "wall_s": j.wall_s,
            "server_wall_s": j.server_wall_s,
            "trigger_s": j.trigger_s,
            "first_start_s": j.first_start_s,
            "tail_s": j.tail_s,
            "idle_slot_s": j.idle_slot_s,
            "idle_long_s": j.idle_long_s,
            "summed_run_s": j.summed_s,
            "run_duration": run,
            "overhead_ms_per_item": j.overhead_ms,
            "items_per_s": j.per_s,
            "daemon_cpu_s": j.daemon_cpu_s,
            "daemon_runqueue_wait_s": j.daemon_wait_s,
            "cpu": cpu_data(j.cpu),
            "daemon_rss": {
                "before": j.rss_before,
                "peak": j.rss_peak,
                "end": j.rss_end,
                "samples": j.rss_samples,
                "vm_hwm": j.hwm,
            },
            "workers_memory_end": j.tree,
            "pool_before": j.pool_before,
            "pool_after": j.pool_after,
            "problems": j.problems,
        },
        "scheduler": None
        if s is None
        else {
            "firings": len(s.slots),
            "skipped": s.skipped,
            "doubled": s.doubled,
            "lateness_commit": summarize(s.server_ms),
            "lateness_subscriber": summarize(s.client_ms),
            "statuses": s.statuses,
            "events_total": s.events_total,
            "job_runs_total": s.job_runs_total,
            "cpu": cpu_data(s.cpu),
            "slots": s.slots,
            "lateness_commit_ms": s.server_ms,
            "lateness_subscriber_ms": s.client_ms,
        },
    }
    return markdown, data


# --------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = parser(__doc__, phase_timeout=240.0)
    p.add_argument("--items", type=int, default=2000, help="payload items of the measured JobRun")
    p.add_argument("--concurrency", type=int, default=4, help="pool size = project and job maxConcurrentRequests")
    p.add_argument("--firings", type=int, default=100, help="scheduler firings to collect (one per second)")
    args = p.parse_args(argv)
    if args.items < 1 or args.concurrency < 1 or args.firings < 0:
        p.error("--items and --concurrency must be positive, --firings not negative")
    return args


async def phases(daemon: DaemonProcess, args: argparse.Namespace) -> tuple[JobRunResult, SchedulerResult | None]:
    j = await jobrun_phase(daemon, args)
    s = await scheduler_phase(daemon, args) if args.firings > 0 else None
    return j, s


def measure(session: Session, args: argparse.Namespace) -> Report:
    revision = source_revision()  # before the run: the code that was started
    daemon = session.daemon(args.concurrency)
    log(f"daemon: starting (pool {args.concurrency}) in {daemon.state_dir}; source {revision}")
    start_daemon(daemon)
    daemon.deploy(PROJECT, {f"api/{API}.py": ECHO_API}, {"replication": {"maxConcurrentRequests": args.concurrency}})
    j, s = trio.run(phases, daemon, args)
    markdown, data = report(args, machine_info(revision), j, s)
    return Report(markdown, data, failed=not j.ok or (s is not None and bool(s.skipped or s.doubled)))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run(args, "intunedd-jobbench-", lambda session: measure(session, args))


if __name__ == "__main__":
    sys.exit(main())
