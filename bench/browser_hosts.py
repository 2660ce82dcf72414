"""Throughput with the browsers on a browser host (``pool.remote_endpoints``), against the same
daemon with local browsers and against raw Playwright, on the same pages in the same run.

    python -m bench.browser_hosts [--runs 300] [--concurrency 2] [--json out.json]

1. Serves ``--runs`` small pages on 127.0.0.1 (``bench/pages.py``).
2. Raw Playwright: one local Chromium, ``--concurrency`` asyncio workers, a context per page.
3. intunedd, pool of ``--concurrency`` local workers (each with its Chromium), saveTrace false.
4. intunedd whose only browser host is a ``playwright run-server`` on this machine, capacity
   ``--concurrency``: the workers (and the user code) stay here, each worker's browser is launched
   by the server, and every Playwright call crosses its websocket. On one machine this measures
   the protocol's cost; on a real second host, add the network's round trips.

The same ``api/title.py`` (goto + title) runs for every page; results are checked. Prints a
markdown table (and writes it, with the raw figures, to ``--json``). See README.md.
"""

from __future__ import annotations

import argparse
import sys

import trio

from bench.common import Report, Session, log, machine_info, machine_table, parser, run, source_revision, start_daemon
from bench.pages import PageServer, page_title
from bench.throughput import TITLE_API, DaemonPass, RawResult, raw_baseline, untraced_pass
from intunedd.browser_host import PlaywrightServer, headless_shell_registry
from intunedd.harness import DaemonProcess


def _daemon_pass(d: DaemonProcess, urls: list[str], titles: list[str], args: argparse.Namespace) -> DaemonPass:
    start_daemon(d)
    d.deploy("bench", {"api/title.py": TITLE_API}, {"replication": {"maxConcurrentRequests": args.concurrency}})
    result = trio.run(untraced_pass, d, urls, titles, args.concurrency, args.phase_timeout)
    d.stop()
    log(f"  {result.per_s:.2f} runs/s ({result.elapsed_s:.2f}s; CPU busy/other {result.cpu})")
    return result


def measure(session: Session, args: argparse.Namespace) -> Report:
    c = args.concurrency
    revision = source_revision()
    with PageServer(args.runs) as site:
        urls = [site.url(i) for i in range(args.runs)]
        titles = [page_title(i) for i in range(args.runs)]
        log(f"raw Playwright: {args.runs} pages, concurrency {c}")
        raw: RawResult = raw_baseline(
            "raw", urls, titles, c, warmup=max(2 * c, 4), floor_runs=0, timeout_s=args.phase_timeout
        )
        log(f"  {raw.per_s:.2f} pages/s")
        log(f"intunedd, {c} local workers")
        local = _daemon_pass(session.daemon(c, "local"), urls, titles, args)
        host = PlaywrightServer(headless_shell_registry(session.state / "registry"))
        try:
            log(f"intunedd, one browser host ({host.url}), capacity {c}")
            endpoints = {"remote_endpoints": [{"url": host.url, "capacity": c}]}
            remote = _daemon_pass(session.daemon(c, "remote", pool=endpoints), urls, titles, args)
        finally:
            host.kill()
    rows = [
        ("Raw Playwright, 1 local browser, new context per page", raw.per_s, "pages/s", 1.0),
        (f"intunedd, {c} local workers", local.per_s, "runs/s", local.per_s / raw.per_s),
        (f"intunedd, 1 browser host (`playwright run-server`), capacity {c}", remote.per_s, "runs/s",
         remote.per_s / raw.per_s),
    ]  # fmt: skip
    lines = [
        f"Browser hosts: {args.runs} pages, concurrency {c}, saveTrace false",
        "",
        "| | throughput | ratio to raw |",
        "|---|---|---|",
        *(f"| {name} | {per_s:.2f} {unit} | {ratio:.2f}× |" for name, per_s, unit, ratio in rows),
        "",
        f"Remote against local workers: {remote.per_s / local.per_s:.2f}×",
        "",
        *machine_table(machine_info(revision)),
    ]
    bad = any(p.verified != p.runs for p in (local, remote)) or bool(raw.wrong_titles)
    data = {"raw_per_s": raw.per_s, "local_per_s": local.per_s, "remote_per_s": remote.per_s, "concurrency": c}
    return Report("\n".join(lines), data, failed=bad)


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__ or "", phase_timeout=600)
    p.add_argument("--runs", type=int, default=300, help="pages / runs per pass")
    p.add_argument("--concurrency", type=int, default=2, help="raw workers = pool size = the host's capacity")
    args = p.parse_args(argv)
    return run(args, "intunedd-bench-hosts-", lambda session: measure(session, args))


if __name__ == "__main__":
    sys.exit(main())
