#!/usr/bin/env python
"""The dashboard's runs page over a large history: its server time, filtered several ways.

    python -m bench.dashboard [--runs 100000] [--job-runs 1000] [--repeat 30] [--json out.json]

The daemon's SQLite file is seeded as ``bench.history`` seeds it (one project, 100,000 runs over
30 days, half of them items of 1,000 JobRuns), the daemon is started on it, the bench signs in to
the dashboard with its key and asks for the runs page ``--repeat`` times per filter combination.
The time reported is the page's ``Server-Timing`` (from the session check to the rendered page of
50 rows), beside the client's round trip on localhost. The target is a p99 under 200 ms.
"""

from __future__ import annotations

import argparse
import random
import re
import time
from typing import Any

import httpx

from bench.common import (
    ECHO_API,
    Report,
    Session,
    log,
    machine_info,
    machine_table,
    parser,
    run,
    source_revision,
    start_daemon,
    stop_daemon,
    summarize,
)
from bench.history import PROJECT, seed

TARGET_MS = 200.0
SERVER_TIMING = re.compile(r"app;dur=([0-9.]+)")


def pages(values: dict[str, str]) -> list[tuple[str, dict[str, Any]]]:
    since = values["since"][:19]  # as a browser's datetime-local input sends it
    return [
        ("no filter, first page", {}),
        ("page 1801 (offset 90,000)", {"page": 1801}),
        ("status=failed", {"status": "failed"}),
        ("api=search, status=completed", {"api": "search", "status": "completed"}),
        ("duration ≥ 5000 ms", {"min_ms": 5000}),
        ("created in the last day", {"from": since}),
        ("job=nightly, duration 1–3 s", {"job": "nightly", "min_ms": 1000, "max_ms": 3000}),
        ("a JobRun's runs", {"job_run": values["job_run"]}),
    ]


def _time(client: httpx.Client, params: dict[str, Any], repeat: int) -> tuple[dict[str, float], dict[str, float]]:
    server, trip = [], []
    for _ in range(repeat + 2):
        t0 = time.perf_counter()
        response = client.get("/runs", params={"project": PROJECT, **params})
        trip.append((time.perf_counter() - t0) * 1000)
        assert response.status_code == 200, response.text[:500]
        assert 'data-run="' in response.text, "the page shows no runs"
        match = SERVER_TIMING.search(response.headers.get("server-timing", ""))
        assert match, "no Server-Timing header"
        server.append(float(match.group(1)))
    return summarize(server[2:]), summarize(trip[2:])


def measure(session: Session, args: argparse.Namespace) -> Report:
    revision = source_revision()
    d = session.daemon(1, "dashboard")
    start_daemon(d)
    d.deploy(PROJECT, {"api/list.py": ECHO_API})
    stop_daemon(d)
    log(f"seeding {args.runs} runs and {args.job_runs} JobRuns")
    values = seed(d.state_dir / "intunedd.db", args.runs, args.job_runs, random.Random(20261202))
    start_daemon(d)
    lines = [
        f"| Dashboard runs page ({args.runs:,} runs) | server p50 | server p99 | round trip p50 |",
        "|---|---:|---:|---:|",
    ]
    figures: dict[str, Any] = {}
    with httpx.Client(base_url=d.url, timeout=60) as client:
        token = re.search(r'name="sign_in_token" value="([^"]+)"', client.get("/sign-in").text)
        assert token, "no sign-in token on the sign-in page"
        signed_in = client.post("/sign-in", data={"key": d.key, "next": "/", "sign_in_token": token.group(1)})
        assert signed_in.status_code == 303, signed_in.text[:500]
        for label, params in pages(values):
            server, trip = _time(client, params, args.repeat)
            figures[label] = {"server": server, "round_trip": trip}
            lines.append(
                f"| {label} | {server['p50_ms']:.1f} ms | {server['p99_ms']:.1f} ms | {trip['p50_ms']:.1f} ms |"
            )
            log(f"{label}: server p50 {server['p50_ms']:.1f} ms, p99 {server['p99_ms']:.1f} ms")
    lines += ["", *machine_table(machine_info(revision))]
    slow = [label for label, f in figures.items() if f["server"]["p99_ms"] >= TARGET_MS]
    return Report("\n".join(lines), {"figures": figures, "over_target": slow}, failed=bool(slow))


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__ or "", phase_timeout=600)
    p.add_argument("--runs", type=int, default=100_000)
    p.add_argument("--job-runs", type=int, default=1000)
    p.add_argument("--repeat", type=int, default=30)
    args = p.parse_args(argv)
    return run(args, "intunedd-bench-dashboard-", lambda session: measure(session, args))


if __name__ == "__main__":
    raise SystemExit(main())
