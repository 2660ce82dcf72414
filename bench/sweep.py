"""Throughput at several concurrencies: intunedd against raw Playwright and Crawlee, with the
memory each takes per concurrent page, all in one run on the same pages.

    python -m bench.sweep [--concurrency 2,4,8] [--runs 300] [--json out.json]

For each concurrency C, in this order:

1. Raw Playwright (``bench/throughput.py``'s baseline): one Chromium in this process, C asyncio
   workers, a new context per page, after a warm-up.
2. intunedd, a fresh daemon with a pool of C, ``saveTrace: false``, every page's run submitted at
   once (``bench/throughput.py``'s pass, after a warm-up); results checked against the titles.
3. Crawlee-Python's PlaywrightCrawler at concurrency C (``bench/crawlee_baseline.py``, in a venv of
   its own), a new (incognito) context per page.

Memory: the peak of each subject's whole process tree (this process for raw Playwright, the
daemon with its workers and browsers, Crawlee's process), summed RSS sampled every 100 ms,
divided by C. Prints a markdown table (and writes the figures to ``--json``). See bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass

import trio

from bench.common import (
    MIB,
    Report,
    Session,
    TreeRss,
    log,
    machine_info,
    machine_table,
    parser,
    run,
    source_revision,
    start_daemon,
)
from bench.crawlee_baseline import CrawleeResult, crawlee_baseline
from bench.pages import PageServer, page_title
from bench.throughput import TITLE_API, DaemonPass, RawResult, raw_baseline, untraced_pass


@dataclass
class Point:
    concurrency: int
    raw: RawResult
    raw_mib: float
    daemon: DaemonPass
    daemon_mib: float
    crawlee: CrawleeResult
    crawlee_mib: float


def _point(session: Session, c: int, urls: list[str], titles: list[str], timeout_s: float) -> Point:
    log(f"concurrency {c}: raw Playwright")
    raw_memory = TreeRss()
    raw_memory.follow(os.getpid())
    raw = raw_baseline("raw", urls, titles, c, warmup=max(2 * c, 4), floor_runs=0, timeout_s=timeout_s)
    raw_memory.finish()
    log(f"  {raw.per_s:.2f} pages/s")
    log(f"concurrency {c}: intunedd, pool of {c}")
    d = session.daemon(c, f"pool-{c}")
    start_daemon(d)
    d.deploy("bench", {"api/title.py": TITLE_API}, {"replication": {"maxConcurrentRequests": c}})
    assert d.process is not None
    daemon_memory = TreeRss()
    daemon_memory.follow(d.process.pid)
    passed = trio.run(untraced_pass, d, urls, titles, c, timeout_s)
    daemon_memory.finish()
    d.stop()
    log(f"  {passed.per_s:.2f} runs/s")
    log(f"concurrency {c}: Crawlee")
    crawlee_memory = TreeRss()
    crawled = crawlee_baseline(urls, titles, c, timeout_s=timeout_s, memory=crawlee_memory)
    log(f"  {crawled.per_s:.2f} pages/s")
    return Point(
        c, raw, raw_memory.peak / MIB / c, passed, daemon_memory.peak / MIB / c, crawled, crawlee_memory.peak / MIB / c
    )


def measure(session: Session, args: argparse.Namespace) -> Report:
    revision = source_revision()
    levels = [int(level) for level in args.concurrency.split(",")]
    with PageServer(args.runs) as site:
        urls = [site.url(i) for i in range(args.runs)]
        titles = [page_title(i) for i in range(args.runs)]
        points = [_point(session, c, urls, titles, args.phase_timeout) for c in levels]
    lines = [
        f"Throughput sweep: {args.runs} local pages per pass, a new context per page, saveTrace false",
        "",
        "| Concurrency | Raw Playwright | intunedd | Crawlee | intunedd / raw | intunedd / Crawlee "
        "| Peak MiB per slot: raw / intunedd / Crawlee |",
        "|---:|---:|---:|---:|---:|---:|---|",
    ]
    for p in points:
        lines.append(
            f"| {p.concurrency} | {p.raw.per_s:.2f} pages/s | {p.daemon.per_s:.2f} runs/s "
            f"| {p.crawlee.per_s:.2f} pages/s "
            f"| **{p.daemon.per_s / p.raw.per_s:.2f}×** | {p.daemon.per_s / p.crawlee.per_s:.2f}× "
            f"| {p.raw_mib:.0f} / {p.daemon_mib:.0f} / {p.crawlee_mib:.0f} |"
        )
    lines += ["", *machine_table(machine_info(revision))]
    for p in points:
        lines.append(
            f"- concurrency {p.concurrency}: intunedd {p.daemon.verified}/{p.daemon.runs} results verified, "
            f"{p.daemon.failed} failed; raw {p.raw.wrong_titles} and Crawlee {p.crawlee.wrong_titles} wrong titles "
            f"(Crawlee: {p.crawlee.pages} pages); CPU busy/other: raw {p.raw.cpu}, intunedd {p.daemon.cpu}, "
            f"Crawlee {p.crawlee.cpu}"
        )
    bad = any(
        p.daemon.verified != p.daemon.runs or p.raw.wrong_titles or p.crawlee.wrong_titles
        or p.crawlee.pages != args.runs
        for p in points
    )  # fmt: skip
    data = {
        "points": [
            {
                "concurrency": p.concurrency, "raw_per_s": p.raw.per_s, "intunedd_per_s": p.daemon.per_s,
                "crawlee_per_s": p.crawlee.per_s, "raw_mib_per_slot": p.raw_mib, "intunedd_mib_per_slot": p.daemon_mib,
                "crawlee_mib_per_slot": p.crawlee_mib,
            }
            for p in points
        ]
    }  # fmt: skip
    return Report("\n".join(lines), data, failed=bad)


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__ or "", phase_timeout=900)
    p.add_argument("--runs", type=int, default=300, help="pages / runs per pass")
    p.add_argument("--concurrency", default="2,4,8", help="the concurrencies, comma-separated")
    args = p.parse_args(argv)
    return run(args, "intunedd-bench-sweep-", lambda session: measure(session, args))


if __name__ == "__main__":
    sys.exit(main())
