#!/usr/bin/env python
"""The runs list over a large history: every query of the runs API, timed on a seeded database.

    python -m bench.history [--runs 100000] [--job-runs 1000] [--repeat 20] [--json out.json]

The daemon's SQLite file is seeded directly (one project; 100,000 runs over 29 days, half of
them items of 1,000 JobRuns; five APIs; statuses, types and durations mixed), then the daemon
is started on it and each query of the runs list is asked ``--repeat`` times over HTTP on
localhost. The time is the client's round trip, so it bounds the server's time from above.
Also printed: the same first page read through the daemon's keyset cursor at depth, which is
what deep paging costs with a cursor instead of ``offset``.
"""

from __future__ import annotations

import argparse
import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import msgspec

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
from intunedd.clock import iso
from intunedd.store.db import open_db

PROJECT = "hist"
APIS = ["list", "detail", "search", "login", "export"]
# The last 29 days (runs older than retention.runs_max_age_days would be deleted at start).
START = datetime.now(UTC).replace(microsecond=0) - timedelta(days=29, hours=12)
SPAN_S = 29 * 86400
OPTIONS = msgspec.json.encode({"max_attempts": 3, "request_timeout_s": 600, "save_trace": True}).decode()


def seed(path: Any, runs: int, job_runs: int, rng: random.Random) -> dict[str, str]:
    """Rows straight into the runs and job_runs tables; returns values the queries filter on."""
    db = open_db(path)
    items_per_job_run = runs // 2 // job_runs
    job_run_ids = [f"jr{n:019d}" for n in range(job_runs)]
    with db.atomic():
        db.conn.executemany(
            "INSERT INTO job_runs (id, project, job_id, type, status, snapshot, max_concurrent, created_at, "
            "updated_at, start_time, end_time) VALUES (?, ?, 'nightly', 'SCHEDULED', 'COMPLETED', '{}', 2, ?, ?, ?, ?)",
            [(jr, PROJECT, *(4 * [iso(START + timedelta(minutes=40 * n))])) for n, jr in enumerate(job_run_ids)],
        )
        rows = []
        for n in range(runs):
            created = START + timedelta(seconds=n * SPAN_S / runs)
            duration = rng.choice([0.2, 0.5, 1, 2, 3, 8, 20]) * rng.uniform(0.8, 1.2)
            status = rng.choices(["completed", "failed", "canceled"], [90, 8, 2])[0]
            job_run = job_run_ids[n // 2 // items_per_job_run % job_runs] if n % 2 else None
            rows.append((
                f"r{n:020d}", PROJECT, 1, rng.choice(APIS), "{}", OPTIONS, status, "JOB" if job_run else "STANDALONE",
                "nightly" if job_run else None, job_run, iso(created), iso(created),
                iso(created + timedelta(seconds=duration)), 1,
            ))  # fmt: skip
        db.conn.executemany(
            "INSERT INTO runs (id, project, version, api, parameters, options, status, run_type, job_id, job_run_id, "
            "created_at, started_at, ended_at, attempts_count) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
    db.conn.execute("ANALYZE")
    db.conn.close()
    return {"job_run": job_run_ids[job_runs // 2], "since": iso(START + timedelta(seconds=SPAN_S) - timedelta(days=1))}


def queries(values: dict[str, str]) -> list[tuple[str, dict[str, Any]]]:
    return [
        ("first page", {}),
        ("offset=90000", {"offset": 90000}),
        ("filter=status=failed", {"filter": "status=failed"}),
        ("filter=api_name=search", {"filter": "api_name=search"}),
        ("filter=run_duration>5000", {"filter": "run_duration>5000"}),
        ("filter=started_at>(last day)", {"filter": f"started_at>{values['since']}"}),
        ("filter=job_run_id=…", {"filter": f"job_run_id={values['job_run']}"}),
        ("filter=run_type=JOB&status=completed", {"filter": ["run_type=JOB", "status=completed"]}),
    ]


def _time(client: httpx.Client, path: str, params: dict[str, Any], repeat: int) -> tuple[dict[str, float], Any]:
    times = []
    body = None
    for _ in range(repeat + 2):
        t0 = time.perf_counter()
        response = client.get(path, params=params)
        times.append((time.perf_counter() - t0) * 1000)
        assert response.status_code == 200, response.text
        body = response.json()
    return summarize(times[2:]), body


def measure(session: Session, args: argparse.Namespace) -> Report:
    revision = source_revision()
    d = session.daemon(1, "history")
    start_daemon(d)
    d.deploy(PROJECT, {"api/list.py": ECHO_API})
    stop_daemon(d)
    log(f"seeding {args.runs} runs and {args.job_runs} JobRuns")
    values = seed(d.state_dir / "intunedd.db", args.runs, args.job_runs, random.Random(20261202))
    start_daemon(d)
    lines = ["| Runs list query (100,000 runs) | p50 | p99 | total |", "|---|---:|---:|---:|"]
    figures: dict[str, Any] = {}
    with httpx.Client(base_url=d.url, headers={"x-api-key": d.key}, timeout=60) as client:
        path = d.path(PROJECT, "/runs")
        for label, params in queries(values):
            stats, body = _time(client, path, {"limit": 50, **params}, args.repeat)
            figures[label] = {**stats, "total": body["total"]}
            lines.append(f"| `{label}` | {stats['p50_ms']:.1f} ms | {stats['p99_ms']:.1f} ms | {body['total']:,} |")
            log(f"{label}: p50 {stats['p50_ms']:.1f} ms")
        deep = client.get(path, params={"limit": 50, "offset": 89950}).json()["nextCursor"]
        stats, body = _time(client, path, {"limit": 50, "cursor": deep}, args.repeat)
        figures["cursor at depth 90000"] = {**stats, "total": body["total"]}
        lines.append(f"| `cursor=` (the page after 90,000 runs) | {stats['p50_ms']:.1f} ms | {stats['p99_ms']:.1f} ms "
                     f"| {body['total']:,} |")  # fmt: skip
    lines += ["", *machine_table(machine_info(revision))]
    slow = [label for label, f in figures.items() if f["p50_ms"] >= 50]
    return Report("\n".join(lines), {"figures": figures, "over_50ms": slow}, failed=False)


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__ or "", phase_timeout=600)
    p.add_argument("--runs", type=int, default=100_000)
    p.add_argument("--job-runs", type=int, default=1000)
    p.add_argument("--repeat", type=int, default=20)
    args = p.parse_args(argv)
    return run(args, "intunedd-bench-history-", lambda session: measure(session, args))


if __name__ == "__main__":
    raise SystemExit(main())
