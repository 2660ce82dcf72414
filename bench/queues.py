#!/usr/bin/env python
"""What a queue costs per item: the same trivial items through a queue and through a JobRun.

    python -m bench.queues [--items 10000] [--json out.json]

A queue runs one item at a time (its head is retried before the next starts), so the JobRun it
is compared with runs one at a time too (``maxConcurrentRequests: 1``) on the same daemon, in the
same run, after a warm-up of each. Items are appended to the queue as fast as one client can
(the queue starts them as they come; appending outpaces running, so it never drains early).
Reported for each: items/s, and the per-item overhead: (wall − Σ run durations) / items, where
wall runs from the first item's start to the last item's end and run durations are the
daemon's own ``runDuration``; then the queue's overhead minus the JobRun's.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import httpx
import trio

from bench.common import (
    ECHO_API,
    Report,
    Session,
    call,
    epoch,
    log,
    machine_info,
    machine_table,
    parser,
    run,
    source_revision,
    start_daemon,
)
from bench.jobrun import PROJECT, job_body, trigger_and_wait
from intunedd.harness import DaemonProcess

APPENDERS = 4  # concurrent append requests


async def _runs(client: httpx.AsyncClient, d: DaemonProcess, condition: str) -> list[dict[str, Any]]:
    runs: dict[str, dict[str, Any]] = {}
    offset = 0
    while True:
        page = await call(client, "GET", d.path(PROJECT, f"/runs?limit=500&offset={offset}&filter={condition}"))
        for item in page["items"]:
            runs[item["id"]] = item
        offset += len(page["items"])
        if not page["items"] or offset >= page["total"]:
            return list(runs.values())


def _figures(runs: list[dict[str, Any]], items: int) -> dict[str, Any]:
    done = [r for r in runs if r["status"] == "completed"]
    wall = max(epoch(r["endedAt"]) for r in done) - min(epoch(r["startedAt"]) for r in done)
    summed = sum(r["runDuration"] for r in done) / 1000
    return {
        "items": items,
        "completed": len(done),
        "wall_s": wall,
        "per_s": len(done) / wall,
        "overhead_ms": (wall - summed) / items * 1000,
        "run_ms": summed / items * 1000,
    }


async def _queue(d: DaemonProcess, client: httpx.AsyncClient, queue_id: str, items: int, timeout_s: float) -> None:
    await call(client, "POST", d.path(PROJECT, "/queues"), {"id": queue_id, "configuration": {
        "retry": {"maximumAttempts": 1}}})  # fmt: skip
    send, receive = trio.open_memory_channel[int](items)
    for i in range(items):
        send.send_nowait(i)
    send.close()
    last: list[str] = []

    async def append() -> None:
        async for i in receive:
            body = {"apiName": "noop", "parameters": {"i": i}}
            last.append((await call(client, "POST", d.path(PROJECT, f"/queues/{queue_id}/items"), body))["runId"])

    with trio.fail_after(timeout_s):
        async with trio.open_nursery() as nursery:
            for _ in range(APPENDERS):
                nursery.start_soon(append)
        # Items run in order: the queue is done when nothing waits and nothing runs.
        while True:
            state = (await call(client, "GET", d.path(PROJECT, f"/queues/{queue_id}")))["state"]
            if not state["queuedItems"] and state["runningItem"] is None:
                return
            await trio.sleep(0.5)


async def _measure(d: DaemonProcess, args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    async with d.async_client() as client:
        log("warm-up: 20 items through a queue and a JobRun")
        await _queue(d, client, "warm", 20, 120)
        await call(client, "POST", d.path(PROJECT, "/jobs"), job_body("warm", 20, 1))
        await trigger_and_wait(d, client, "warm", 120)

        log(f"queue: {args.items} items")
        t0 = time.perf_counter()
        await _queue(d, client, "bench", args.items, args.phase_timeout)
        log(f"  {time.perf_counter() - t0:.1f}s")
        queue = _figures(await _runs(client, d, "queue_id=bench"), args.items)

        log(f"JobRun: {args.items} items, one at a time")
        await call(client, "POST", d.path(PROJECT, "/jobs"), job_body("bench", args.items, 1))
        job_run_id, wall, _, _ = await trigger_and_wait(d, client, "bench", args.phase_timeout)
        log(f"  {wall:.1f}s")
        job_run = _figures(await _runs(client, d, f"job_run_id={job_run_id}"), args.items)
    return {"queue": queue, "jobrun": job_run}


def measure(session: Session, args: argparse.Namespace) -> Report:
    revision = source_revision()
    d = session.daemon(1, "queues")
    start_daemon(d)
    d.deploy(PROJECT, {"api/noop.py": ECHO_API}, {"replication": {"maxConcurrentRequests": 1}})
    figures = trio.run(_measure, d, args)
    q, j = figures["queue"], figures["jobrun"]
    lines = [
        "| Items, one at a time | Completed | Items/s | Run time / item | Overhead / item |",
        "|---|---:|---:|---:|---:|",
        *(
            f"| {label} | {f['completed']} of {f['items']} | {f['per_s']:.1f} | {f['run_ms']:.2f} ms | "
            f"{f['overhead_ms']:.2f} ms |"
            for label, f in (("queue", q), ("JobRun (maxConcurrentRequests 1)", j))
        ),
        "",
        f"Queue overhead per item minus the JobRun's: **{q['overhead_ms'] - j['overhead_ms']:+.2f} ms**; "
        f"throughput ratio queue/JobRun **{q['per_s'] / j['per_s']:.2f}×**.",
        "",
        *machine_table(machine_info(revision)),
    ]
    failed = q["completed"] != args.items or j["completed"] != args.items
    return Report("\n".join(lines), figures, failed=failed)


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__ or "", phase_timeout=3600)
    p.add_argument("--items", type=int, default=10_000)
    args = p.parse_args(argv)
    return run(args, "intunedd-bench-queues-", lambda session: measure(session, args))


if __name__ == "__main__":
    raise SystemExit(main())
