"""What an AuthSession costs each run: the same logged-in page through runs without a session, with
a session checked before every attempt (Intuned's behaviour, ``auth_sessions.check_window_s = 0``),
and with a session whose passed check is trusted for a while (``check_window_s = 300``), in one run.

For each: latency of sequential runs on an idle warm pool (p50/p99), and throughput of a batch
submitted at once at the pool's concurrency. The login site is served locally.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import httpx
import trio
from trio_websocket import open_websocket_url

from bench.common import (
    Report,
    Session,
    events_url,
    fmt_ms,
    log,
    machine_info,
    machine_table,
    parser,
    run,
    source_revision,
    start_daemon,
    summarize,
)
from bench.throughput import TERMINAL_EVENTS, Completions
from intunedd.harness import DaemonProcess
from tests.login_site import AUTH_FILES, LoginSite

PROJECT = {
    **AUTH_FILES,
    "api/private.py": """
        async def automation(page, params, **_kwargs):
            await page.goto(params["url"] + "/private")
            return await page.locator("#user").count()
    """,
}


async def _runs(d: DaemonProcess, body: dict[str, Any], sequential: int, batch: int, gap_s: float) -> dict[str, Any]:
    completions = Completions()
    latencies: list[float] = []
    async with (
        open_websocket_url(events_url(d, "p", TERMINAL_EVENTS)) as ws,
        d.async_client() as client,
        trio.open_nursery() as nursery,
    ):
        nursery.start_soon(completions.read, ws)
        for _ in range(sequential + 2):
            await trio.sleep(gap_s)
            t0 = time.perf_counter()
            r = await client.post(d.path("p", "/run/start"), json=body)
            t1, kind = await completions.wait(r.json()["runId"])
            assert kind == "run.completed", kind
            latencies.append((t1 - t0) * 1000)
        t0 = time.perf_counter()
        ids = [(await client.post(d.path("p", "/run/start"), json=body)).json()["runId"] for _ in range(batch)]
        done = [await completions.wait(i) for i in ids]
        elapsed = max(t for t, _ in done) - t0
        failed = sum(kind != "run.completed" for _, kind in done)
        nursery.cancel_scope.cancel()
    return {"latency": summarize(latencies[2:]), "per_s": batch / elapsed, "failed": failed}


def measure(session: Session, args: argparse.Namespace) -> Report:
    revision = source_revision()
    figures: dict[str, dict[str, Any]] = {}
    with LoginSite.serving() as site:
        for window in (0.0, 300.0):
            d = session.daemon(args.concurrency, f"window-{window:g}", auth_sessions={"check_window_s": window})
            start_daemon(d)
            d.deploy("p", PROJECT, {"replication": {"maxConcurrentRequests": args.concurrency}})
            with httpx.Client(base_url=d.url, headers={"x-api-key": d.key}, timeout=120) as c:
                c.post(d.path("p", "/auth-sessions/create"), json={"id": "s", "parameters": site.credentials})
            plain = {"api": "private", "parameters": {"url": site.url}, "saveTrace": False}
            modes = [(f"session, check_window_s={window:g}", {**plain, "authSession": {"id": "s"}})]
            if window == 0:
                modes.insert(0, ("no session", plain))
            for label, body in modes:
                log(f"{label}: {args.sequential} sequential, then {args.batch} at once")
                figures[label] = trio.run(_runs, d, body, args.sequential, args.batch, args.gap_ms / 1000)
                log(f"  p50 {figures[label]['latency']['p50_ms']:.1f} ms, {figures[label]['per_s']:.2f} runs/s")
    base = figures["no session"]
    lines = ["| Runs | Latency, idle warm pool | Throughput | vs no session |", "|---|---|---:|---:|"]
    for label, f in figures.items():
        lines.append(
            f"| {label} | {fmt_ms(f['latency'])} | {f['per_s']:.2f} runs/s | "
            f"+{f['latency']['p50_ms'] - base['latency']['p50_ms']:.1f} ms p50, {f['per_s'] / base['per_s']:.2f}× |"
        )
    lines += ["", *machine_table(machine_info(revision))]
    return Report("\n".join(lines), {"figures": figures}, failed=any(f["failed"] for f in figures.values()))


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__ or "", phase_timeout=600)
    p.add_argument("--sequential", type=int, default=40)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--concurrency", type=int, default=2)
    p.add_argument("--gap-ms", type=float, default=300.0)
    args = p.parse_args(argv)
    return run(args, "intunedd-bench-auth-", lambda session: measure(session, args))


if __name__ == "__main__":
    raise SystemExit(main())
