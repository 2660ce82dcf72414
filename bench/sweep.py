"""Throughput at several concurrencies: intunedd against raw Playwright and Crawlee, with the
memory each takes per concurrent page, all in one run on the same pages.

    python -m bench.sweep [--concurrency 2,4,8] [--runs 300] [--rounds 3] [--json out.json]

For each concurrency C, a fresh daemon with a pool of C (idle while raw Playwright runs, and left
out of its memory), then ``--rounds`` rounds of:

1. Raw Playwright (``bench/throughput.py``'s baseline): one Chromium in this process, C asyncio
   workers, a new context per page, after a warm-up.
2. intunedd, ``saveTrace: false``, every page's run submitted at once (``bench/throughput.py``'s
   pass, after a warm-up); results checked against the titles.

and then Crawlee-Python's PlaywrightCrawler at concurrency C (``bench/crawlee_baseline.py``, in a
venv of its own), a new (incognito) context per page. The table gives the medians and the median
of the rounds' ratios, with each round's: this machine's speed drifts by more than the gap being
measured, and alternating passes a minute apart lets a drift move both sides of a ratio alike.

Memory: the peak of each subject's whole process tree (this process for raw Playwright, the
daemon with its workers and browsers, Crawlee's process), summed RSS sampled every 100 ms,
divided by C. Prints a markdown table (and writes the figures to ``--json``). See bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
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
    """One concurrency: ``rounds`` alternate passes of raw Playwright and intunedd, then Crawlee."""

    concurrency: int
    raws: list[RawResult]
    raw_mib: float
    daemons: list[DaemonPass]
    daemon_mib: float
    crawlee: CrawleeResult
    crawlee_mib: float

    @property
    def raw_per_s(self) -> float:
        return statistics.median(r.per_s for r in self.raws)

    @property
    def daemon_per_s(self) -> float:
        return statistics.median(d.per_s for d in self.daemons)

    @property
    def ratios(self) -> list[float]:
        """intunedd / raw in each round: passes a minute apart, so a drift of the machine's speed
        moves both sides of a ratio alike."""
        return [d.per_s / r.per_s for r, d in zip(self.raws, self.daemons, strict=True)]


def _peak_mib(memory: TreeRss, c: int) -> float:
    memory.finish()
    return memory.peak / MIB / c


def _point(session: Session, c: int, urls: list[str], titles: list[str], rounds: int, timeout_s: float) -> Point:
    d = session.daemon(c, f"pool-{c}")
    start_daemon(d)
    d.deploy("bench", {"api/title.py": TITLE_API}, {"replication": {"maxConcurrentRequests": c}})
    assert d.process is not None
    raws: list[RawResult] = []
    daemons: list[DaemonPass] = []
    raw_mib = daemon_mib = 0.0
    for n in range(1, rounds + 1):
        log(f"concurrency {c}, round {n}/{rounds}: raw Playwright")
        memory = TreeRss()
        memory.follow(os.getpid(), exclude=d.process.pid)
        raws.append(raw_baseline("raw", urls, titles, c, warmup=max(2 * c, 4), floor_runs=0, timeout_s=timeout_s))
        raw_mib = max(raw_mib, _peak_mib(memory, c))
        log(f"  {raws[-1].per_s:.2f} pages/s")
        log(f"concurrency {c}, round {n}/{rounds}: intunedd, pool of {c}")
        memory = TreeRss()
        memory.follow(d.process.pid)
        daemons.append(trio.run(untraced_pass, d, urls, titles, c, timeout_s))
        daemon_mib = max(daemon_mib, _peak_mib(memory, c))
        log(f"  {daemons[-1].per_s:.2f} runs/s")
    d.stop()
    log(f"concurrency {c}: Crawlee")
    memory = TreeRss()
    crawled = crawlee_baseline(urls, titles, c, timeout_s=timeout_s, memory=memory)
    log(f"  {crawled.per_s:.2f} pages/s")
    return Point(c, raws, raw_mib, daemons, daemon_mib, crawled, _peak_mib(memory, c))


def measure(session: Session, args: argparse.Namespace) -> Report:
    revision = source_revision()
    levels = [int(level) for level in args.concurrency.split(",")]
    with PageServer(args.runs) as site:
        urls = [site.url(i) for i in range(args.runs)]
        titles = [page_title(i) for i in range(args.runs)]
        points = [_point(session, c, urls, titles, args.rounds, args.phase_timeout) for c in levels]
    lines = [
        f"Throughput sweep: {args.runs} local pages per pass, a new context per page, saveTrace false; "
        f"raw and intunedd alternate over {args.rounds} rounds (medians; each round's ratio in brackets)",
        "",
        "| Concurrency | Raw Playwright | intunedd | Crawlee | intunedd / raw | intunedd / Crawlee "
        "| Peak MiB per slot: raw / intunedd / Crawlee |",
        "|---:|---:|---:|---:|---:|---:|---|",
    ]
    for p in points:
        rounds = ", ".join(f"{r:.2f}" for r in p.ratios)
        lines.append(
            f"| {p.concurrency} | {p.raw_per_s:.2f} pages/s | {p.daemon_per_s:.2f} runs/s "
            f"| {p.crawlee.per_s:.2f} pages/s "
            f"| **{statistics.median(p.ratios):.2f}×** ({rounds}) | {p.daemon_per_s / p.crawlee.per_s:.2f}× "
            f"| {p.raw_mib:.0f} / {p.daemon_mib:.0f} / {p.crawlee_mib:.0f} |"
        )
    lines += ["", *machine_table(machine_info(revision))]
    for p in points:
        verified = sum(d.verified for d in p.daemons)
        lines.append(
            f"- concurrency {p.concurrency}: intunedd {verified}/{sum(d.runs for d in p.daemons)} results verified, "
            f"{sum(d.failed for d in p.daemons)} failed; raw {sum(r.wrong_titles for r in p.raws)} and Crawlee "
            f"{p.crawlee.wrong_titles} wrong titles (Crawlee: {p.crawlee.pages} pages); CPU busy/other: raw "
            f"{', '.join(str(r.cpu) for r in p.raws)}, intunedd {', '.join(str(d.cpu) for d in p.daemons)}, "
            f"Crawlee {p.crawlee.cpu}"
        )
    bad = any(
        any(d.verified != d.runs for d in p.daemons) or any(r.wrong_titles for r in p.raws) or p.crawlee.wrong_titles
        or p.crawlee.pages != args.runs
        for p in points
    )  # fmt: skip
    data = {
        "points": [
            {
                "concurrency": p.concurrency, "raw_per_s": [r.per_s for r in p.raws],
                "intunedd_per_s": [d.per_s for d in p.daemons], "ratios": p.ratios,
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
    p.add_argument("--rounds", type=int, default=3, help="alternate raw / intunedd passes per concurrency")
    args = p.parse_args(argv)
    return run(args, "intunedd-bench-sweep-", lambda session: measure(session, args))


if __name__ == "__main__":
    sys.exit(main())
