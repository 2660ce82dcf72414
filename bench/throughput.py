"""Throughput and latency of intunedd against raw Playwright on the same machine.

    python -m bench.throughput [--runs 500] [--concurrency 2] [--latency-runs 100] [--json out.json]

1. Serves ``--runs`` distinct small pages from a threaded HTTP server on 127.0.0.1.
2. Raw Playwright (asyncio): one Chromium, ``--concurrency`` workers pulling from a queue; per
   page: new context -> new page -> goto -> title -> close context. Run before and again after
   the daemon's throughput passes; the ratio uses the mean, and the spread shows drift.
3. The daemon (``intunedd serve``, pool size = concurrency) running ``api/title.py`` (goto +
   title) for the same pages, ``saveTrace: false``; then a smaller pass with tracing on. All
   run/start calls are submitted at once by several HTTP clients; completions are counted from
   the ``/events`` websocket. Every result is checked against the page's title afterwards.
4. Latency on an idle warm pool: a trivial API (``return params``) run one at a time, from
   just before ``POST run/start`` to the arrival of its ``run.completed`` event.

Prints a markdown table (and writes it, with the raw figures, to ``--json``). See README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import trio
from trio_websocket import open_websocket_url

from bench.common import (
    CHROMIUM,
    CHROMIUM_ARGS,
    CPU,
    ECHO_API,
    CpuUse,
    Report,
    Session,
    cpu_data,
    events_url,
    fmt_ms,
    log,
    machine_info,
    machine_table,
    other_cpu_warning,
    parser,
    run,
    source_revision,
    start_daemon,
    summarize,
)
from bench.pages import PageServer, page_title
from intunedd.harness import DaemonProcess

TERMINAL_EVENTS = ("run.completed", "run.failed")

# --------------------------------------------------------------------------------------------
# Raw Playwright baseline (asyncio)


@dataclass
class RawResult:
    label: str
    pages: int
    elapsed_s: float
    wrong_titles: int
    context_latency_ms: list[float]
    cpu: CpuUse

    @property
    def per_s(self) -> float:
        return self.pages / self.elapsed_s


async def _raw_baseline(
    label: str, urls: list[str], titles: list[str], concurrency: int, warmup: int, floor_runs: int
) -> RawResult:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:

            async def one(i: int) -> str:
                context = await browser.new_context()
                try:
                    page = await context.new_page()
                    await page.goto(urls[i], timeout=30_000)
                    return await page.title()
                finally:
                    await context.close()

            async def drain(queue: asyncio.Queue[int], seen: dict[int, str]) -> None:
                while True:
                    try:
                        i = queue.get_nowait()
                    except asyncio.QueueEmpty:
                        return
                    seen[i] = await one(i)

            async def pass_over(indices: list[int]) -> tuple[float, dict[int, str]]:
                queue: asyncio.Queue[int] = asyncio.Queue()
                for i in indices:
                    queue.put_nowait(i)
                seen: dict[int, str] = {}
                t0 = time.perf_counter()
                await asyncio.gather(*(drain(queue, seen) for _ in range(concurrency)))
                return time.perf_counter() - t0, seen

            # Warm-up (untimed), like the daemon's warm pool: first contexts and renderers.
            await pass_over([i % len(urls) for i in range(warmup)])
            cpu_start = CPU.snapshot()
            elapsed, seen = await pass_over(list(range(len(urls))))
            cpu = CPU.since(cpu_start)
            wrong = sum(seen.get(i) != titles[i] for i in range(len(urls)))

            # Reference floor for the latency figure: what a context costs by itself.
            floor: list[float] = []
            for _ in range(floor_runs):
                t0 = time.perf_counter()
                context = await browser.new_context()
                await context.new_page()
                await context.close()
                floor.append((time.perf_counter() - t0) * 1000)
            return RawResult(label, len(urls), elapsed, wrong, floor, cpu)
        finally:
            await browser.close()


def raw_baseline(
    label: str, urls: list[str], titles: list[str], concurrency: int, *, warmup: int, floor_runs: int, timeout_s: float
) -> RawResult:
    async def bounded() -> RawResult:
        async with asyncio.timeout(timeout_s):
            return await _raw_baseline(label, urls, titles, concurrency, warmup, floor_runs)

    return asyncio.run(bounded())


# --------------------------------------------------------------------------------------------
# The daemon


class Completions:
    """Terminal events from one websocket, keyed by run id, with the local time they arrived."""

    def __init__(self) -> None:
        self.arrived: dict[str, tuple[float, str]] = {}
        self._waiters: dict[str, trio.Event] = {}
        self._watch: Callable[[], None] | None = None

    async def read(self, ws: Any) -> None:
        while True:
            event = json.loads(await ws.get_message())
            now = time.perf_counter()
            run_id = event["run_id"]
            if event["type"] not in TERMINAL_EVENTS or run_id in self.arrived:
                continue
            self.arrived[run_id] = (now, event["type"])
            waiter = self._waiters.pop(run_id, None)
            if waiter is not None:
                waiter.set()
            if self._watch is not None:
                self._watch()

    async def wait(self, run_id: str) -> tuple[float, str]:
        if run_id not in self.arrived:
            waiter = self._waiters.setdefault(run_id, trio.Event())
            await waiter.wait()
        return self.arrived[run_id]


@dataclass
class DaemonPass:
    label: str
    runs: int
    save_trace: bool
    elapsed_s: float = 0.0
    submit_s: float = 0.0
    completed: int = 0
    failed: int = 0
    verified: int = 0
    problems: list[str] = field(default_factory=list)
    cpu: CpuUse | None = None
    trace_kib: float | None = None  # mean size of the pass's traces

    @property
    def per_s(self) -> float:
        return self.runs / self.elapsed_s if self.elapsed_s else 0.0


async def daemon_throughput(
    d: DaemonProcess,
    project: str,
    urls: list[str],
    titles: list[str],
    *,
    save_trace: bool,
    submitters: int,
    label: str,
    timeout_s: float,
    verify: bool = True,
) -> DaemonPass:
    n = len(urls)
    result = DaemonPass(label, n, save_trace)
    run_ids: dict[str, int] = {}  # run id -> page index
    all_done = trio.Event()
    completions = Completions()

    def check() -> None:
        if len(run_ids) == n and all(r in completions.arrived for r in run_ids):
            all_done.set()

    completions._watch = check
    with trio.fail_after(timeout_s):
        async with open_websocket_url(events_url(d, project, TERMINAL_EVENTS)) as ws, trio.open_nursery() as nursery:
            nursery.start_soon(completions.read, ws)
            # The subscription exists once the handshake is done: nothing can be missed.
            next_index = iter(range(n))
            cpu_start = CPU.snapshot()
            t_first_submit = time.perf_counter()

            async def submitter() -> None:
                async with d.async_client() as client:
                    for i in next_index:
                        body = {"api": "title", "parameters": {"url": urls[i]}, "saveTrace": save_trace}
                        r = await client.post(d.path(project, "/run/start"), json=body)
                        if r.status_code != 201:
                            raise RuntimeError(f"run/start: {r.status_code} {r.text}")
                        run_ids[r.json()["runId"]] = i

            async with trio.open_nursery() as submitting:
                for _ in range(submitters):
                    submitting.start_soon(submitter)
            result.submit_s = time.perf_counter() - t_first_submit
            check()
            await all_done.wait()
            t_last = max(completions.arrived[r][0] for r in run_ids)
            result.cpu = CPU.since(cpu_start)
            nursery.cancel_scope.cancel()
    result.elapsed_s = t_last - t_first_submit
    outcomes = [completions.arrived[r][1] for r in run_ids]
    result.completed = outcomes.count("run.completed")
    result.failed = outcomes.count("run.failed")
    if verify:
        with trio.fail_after(timeout_s):
            await _verify(d, project, run_ids, titles, result)
    return result


async def warm_up(
    d: DaemonProcess, urls: list[str], titles: list[str], concurrency: int, *, save_trace: bool = False
) -> None:
    """Runs on the first pages, one at a time, untimed: the pool's first contexts and renderers,
    and with ``save_trace``, tracing started ahead on every worker's warm context."""
    warm = max(2 * concurrency, 4)
    await daemon_throughput(
        d, "bench", urls[:warm], titles[:warm], save_trace=save_trace, submitters=1, label="warm-up", timeout_s=120
    )


async def untraced_pass(
    d: DaemonProcess, urls: list[str], titles: list[str], concurrency: int, timeout_s: float
) -> DaemonPass:
    """A warm-up, then every page's run submitted at once with ``saveTrace: false``."""
    await warm_up(d, urls, titles, concurrency)
    return await daemon_throughput(
        d, "bench", urls, titles, save_trace=False, submitters=8, label="saveTrace=false", timeout_s=timeout_s
    )


async def _verify(d: DaemonProcess, project: str, run_ids: dict[str, int], titles: list[str], out: DaemonPass) -> None:
    """Every run's stored result must be its page's title."""
    pending = iter(run_ids.items())

    async def checker() -> None:
        async with d.async_client() as client:
            for run_id, i in pending:
                r = await client.get(d.path(project, f"/run/{run_id}/result"))
                body = r.json()
                if body.get("status") == "completed" and body.get("result") == titles[i]:
                    out.verified += 1
                elif len(out.problems) < 5:
                    out.problems.append(f"run {run_id} (page {i}): {json.dumps(body)[:300]}")

    async with trio.open_nursery() as nursery:
        for _ in range(4):
            nursery.start_soon(checker)


@dataclass
class Latency:
    label: str
    samples_ms: list[float]
    post_ms: list[float]
    failed: int = 0
    cpu: CpuUse | None = None

    def summary(self) -> dict[str, float]:
        return summarize(self.samples_ms)


async def daemon_latency(
    d: DaemonProcess, project: str, runs: int, *, save_trace: bool, gap_s: float, label: str, timeout_s: float
) -> Latency:
    out = Latency(label, [], [])
    completions = Completions()
    with trio.fail_after(timeout_s):
        async with (
            open_websocket_url(events_url(d, project, TERMINAL_EVENTS)) as ws,
            d.async_client() as client,
            trio.open_nursery() as nursery,
        ):
            nursery.start_soon(completions.read, ws)
            cpu_start = CPU.snapshot()
            for k in range(runs):
                await trio.sleep(gap_s)  # let the pool settle: every run meets an idle, warm worker
                body = {"api": "echo", "parameters": {"k": k}, "saveTrace": save_trace}
                t0 = time.perf_counter()
                r = await client.post(d.path(project, "/run/start"), json=body)
                t_post = time.perf_counter()
                if r.status_code != 201:
                    raise RuntimeError(f"run/start: {r.status_code} {r.text}")
                with trio.fail_after(60):
                    t1, kind = await completions.wait(r.json()["runId"])
                out.failed += kind != "run.completed"
                out.samples_ms.append((t1 - t0) * 1000)
                out.post_ms.append((t_post - t0) * 1000)
            out.cpu = CPU.since(cpu_start)
            nursery.cancel_scope.cancel()
    return out


TITLE_API = """\
async def automation(page, params, **kwargs):
    await page.goto(params["url"])
    return await page.title()
"""


async def daemon_throughput_phases(
    d: DaemonProcess, args: argparse.Namespace, urls: list[str], titles: list[str]
) -> list[DaemonPass]:
    c = args.concurrency
    log("daemon: warm-up")
    await warm_up(d, urls, titles, c)
    log(f"daemon: {len(urls)} runs, saveTrace=false, concurrency {c}")
    main = await daemon_throughput(
        d,
        "bench",
        urls,
        titles,
        save_trace=False,
        submitters=args.submitters,
        label="saveTrace=false",
        timeout_s=args.phase_timeout,
    )
    log(f"  {main.per_s:.2f} runs/s ({main.elapsed_s:.2f}s; CPU busy/other {main.cpu})")
    passes = [main]
    n_traced = min(args.trace_runs, len(urls))
    if n_traced > 0:
        log(f"daemon: {n_traced} runs, saveTrace=true")
        traced = await daemon_throughput(
            d,
            "bench",
            urls[:n_traced],
            titles[:n_traced],
            save_trace=True,
            submitters=args.submitters,
            label="saveTrace=true",
            timeout_s=args.phase_timeout,
        )
        traces = [path.stat().st_size for path in (d.state_dir / "artifacts").glob("*/*/trace.zip")]
        traced.trace_kib = statistics.fmean(traces) / 1024 if traces else None
        log(f"  {traced.per_s:.2f} runs/s ({traced.elapsed_s:.2f}s; CPU busy/other {traced.cpu}); {len(traces)} traces")
        passes.append(traced)
    return passes


async def daemon_latency_phases(d: DaemonProcess, args: argparse.Namespace) -> tuple[list[Latency], dict[str, Any]]:
    latencies = []
    for runs, save_trace in ((args.latency_runs, False), (args.latency_trace_runs, True)):
        if runs <= 0:
            continue
        label = f"saveTrace={str(save_trace).lower()}"
        log(f"daemon: latency, {runs} sequential runs, {label}")
        # Untimed runs first, so the API module is imported in every worker.
        await daemon_latency(
            d, "echo", 2 * args.concurrency, save_trace=save_trace, gap_s=0.05, label="warm-up", timeout_s=60
        )
        lat = await daemon_latency(
            d,
            "echo",
            runs,
            save_trace=save_trace,
            gap_s=args.latency_gap_ms / 1000,
            label=label,
            timeout_s=args.phase_timeout,
        )
        s = lat.summary()
        log(f"  p50 {s['p50_ms']:.1f} ms, p99 {s['p99_ms']:.1f} ms, mean {s['mean_ms']:.1f} ms")
        latencies.append(lat)
    with trio.fail_after(30):
        async with d.async_client() as client:
            health = (await client.get("/health")).json()
    return latencies, health


# --------------------------------------------------------------------------------------------
# Report


def report(
    args: argparse.Namespace,
    machine: dict[str, Any],
    raws: list[RawResult],
    passes: list[DaemonPass],
    latencies: list[Latency],
    health: dict[str, Any],
) -> tuple[str, dict[str, Any]]:
    c = args.concurrency
    raw_per_s = statistics.fmean(r.per_s for r in raws)
    main = passes[0]
    traced = passes[1] if len(passes) > 1 else None
    ratio = main.per_s / raw_per_s
    ratio_traced = traced.per_s / raw_per_s if traced else None
    spread = (max(r.per_s for r in raws) / min(r.per_s for r in raws) - 1) * 100

    def cpu(use: CpuUse | None) -> str:
        return str(use) if use else ""

    rows = [
        (
            f"Raw Playwright, 1 browser, new context per page ({r.label})",
            f"{r.pages}",
            f"{r.elapsed_s:.2f}",
            f"{r.per_s:.2f} pages/s",
            cpu(r.cpu),
        )
        for r in raws
    ]
    if len(raws) > 1:
        rows.append(
            (
                f"Raw Playwright, mean of the {len(raws)} passes (spread {spread:.0f}%)",
                "",
                "",
                f"{raw_per_s:.2f} pages/s",
                "",
            )
        )
    rows += [
        (
            f"intunedd, saveTrace=false (pool {c})",
            f"{main.runs}",
            f"{main.elapsed_s:.2f}",
            f"{main.per_s:.2f} runs/s",
            cpu(main.cpu),
        ),
        ("**Ratio intunedd / raw** (aim ≥ 0.8)", "", "", f"**{ratio:.2f}×**", ""),
    ]
    if traced and ratio_traced is not None:
        rows += [
            (
                f"intunedd, saveTrace=true (pool {c}{', screenshots' if args.trace_screenshots else ''}, "
                f"trace_policy {args.trace_policy}; "
                f"traces {traced.trace_kib or 0:.1f} KiB)",
                f"{traced.runs}",
                f"{traced.elapsed_s:.2f}",
                f"{traced.per_s:.2f} runs/s",
                cpu(traced.cpu),
            ),
            ("Ratio intunedd (traced) / raw", "", "", f"{ratio_traced:.2f}×", ""),
            ("Ratio traced / untraced (aim ≥ 0.85)", "", "", f"{traced.per_s / main.per_s:.2f}×", ""),
        ]
    for lat in latencies:
        aim = " (aim p50 < 100 ms)" if lat.label == "saveTrace=false" else ""
        rows.append(
            (
                f"Latency, idle warm pool, `return params`, {lat.label}{aim}",
                f"{len(lat.samples_ms)}",
                "",
                fmt_ms(lat.summary()),
                cpu(lat.cpu),
            )
        )
    for lat in latencies:
        rows.append(
            (
                f"↳ of which the POST run/start round trip, {lat.label}",
                f"{len(lat.post_ms)}",
                "",
                fmt_ms(summarize(lat.post_ms)),
                "",
            )
        )
    floor = raws[0].context_latency_ms
    if floor:
        rows.append(
            (
                "Reference: raw new context + page + close, sequential",
                f"{len(floor)}",
                "",
                fmt_ms(summarize(floor)),
                "",
            )
        )

    lines = [
        f"### intunedd throughput benchmark (concurrency {c})",
        "",
        "| Measurement | Runs | Elapsed (s) | Result | CPU busy / other procs |",
        "|---|---:|---:|---|---:|",
        *[f"| {a} | {b} | {e} | {r} | {u} |" for a, b, e, r, u in rows],
        "",
        *machine_table(machine),
    ]
    for p in passes:
        lines.append(
            f"- {p.label}: {p.completed}/{p.runs} completed, {p.failed} failed, {p.verified}/{p.runs} results "
            f"verified; all {p.runs} run/start calls answered in {p.submit_s:.2f}s"
        )
        lines += [f"- problem ({p.label}): {problem}" for problem in p.problems]
    for r in raws:
        lines.append(f"- raw ({r.label}): {r.pages - r.wrong_titles}/{r.pages} titles correct")
    for lat in latencies:
        if lat.failed:
            lines.append(f"- latency ({lat.label}): {lat.failed} runs failed")
    pool = health.get("pool", {})
    lines.append(
        f"- pool after the runs: spawned {pool.get('spawned')}, killed {pool.get('killed')}, "
        f"recycled {pool.get('recycled')}"
    )
    warning = other_cpu_warning([*(r.cpu for r in raws), *(p.cpu for p in passes)], "a throughput phase")
    lines += [warning] if warning else []
    if len(raws) > 1 and spread > 10:
        lines.append(f"- WARNING: the raw passes differ by {spread:.0f}%: the machine's speed drifted")
    markdown = "\n".join(lines)
    data = {
        "settings": {
            "runs": args.runs,
            "concurrency": c,
            "trace_runs": traced.runs if traced else 0,
            "latency_runs": args.latency_runs,
            "latency_trace_runs": args.latency_trace_runs,
            "latency_gap_ms": args.latency_gap_ms,
            "submitters": args.submitters,
        },
        "machine": machine,
        "raw": {
            "pages_per_s": raw_per_s,
            "passes": [
                {
                    "label": r.label,
                    "pages": r.pages,
                    "elapsed_s": r.elapsed_s,
                    "pages_per_s": r.per_s,
                    "wrong_titles": r.wrong_titles,
                    "cpu": cpu_data(r.cpu),
                }
                for r in raws
            ],
            "context_floor": summarize(floor),
        },
        "daemon": {
            p.label: {
                "runs": p.runs,
                "elapsed_s": p.elapsed_s,
                "runs_per_s": p.per_s,
                "submit_s": p.submit_s,
                "completed": p.completed,
                "failed": p.failed,
                "verified": p.verified,
                "problems": p.problems,
                "cpu": cpu_data(p.cpu),
            }
            for p in passes
        },
        "ratio": ratio,
        "ratio_traced": ratio_traced,
        "latency": {
            lat.label: {
                **lat.summary(),
                "failed": lat.failed,
                "post_round_trip": summarize(lat.post_ms),
                "cpu": cpu_data(lat.cpu),
            }
            for lat in latencies
        },
        "daemon_health": health,
    }
    return markdown, data


# --------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = parser(__doc__, phase_timeout=240.0)
    p.add_argument("--runs", type=int, default=500, help="pages / runs in the main throughput passes")
    p.add_argument("--concurrency", type=int, default=2, help="raw workers = daemon pool size")
    p.add_argument("--trace-runs", type=int, default=200, help="runs in the saveTrace=true throughput pass")
    p.add_argument("--latency-runs", type=int, default=100, help="sequential runs for latency, saveTrace=false")
    p.add_argument("--latency-trace-runs", type=int, default=30, help="sequential runs for latency, saveTrace=true")
    p.add_argument("--latency-gap-ms", type=float, default=50.0, help="idle gap before each latency run")
    p.add_argument("--submitters", type=int, default=8, help="concurrent HTTP clients submitting run/start")
    p.add_argument("--single-raw", action="store_true", help="one raw pass (before) instead of before and after")
    p.add_argument("--trace-screenshots", action="store_true", help="traces with a screenshot filmstrip")
    p.add_argument(
        "--trace-policy", default="on", help="the daemon's runs.trace_policy (which attempts of a traced run record)"
    )
    args = p.parse_args(argv)
    if args.runs < 1 or args.concurrency < 1:
        p.error("--runs and --concurrency must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run(args, "intunedd-bench-", lambda session: measure(session, args))


def measure(session: Session, args: argparse.Namespace) -> Report:
    warmup = max(2 * args.concurrency, 4)
    revision = source_revision()  # before the run: the code that was started
    daemon = session.daemon(
        args.concurrency, runs={"trace_screenshots": args.trace_screenshots, "trace_policy": args.trace_policy}
    )
    with PageServer(args.runs) as site:
        urls = [site.url(i) for i in range(args.runs)]
        titles = [page_title(i) for i in range(args.runs)]
        log(f"pages: {args.runs}, mean {statistics.fmean(site.sizes) / 1024:.1f} KiB")

        def raw_pass(label: str, floor_runs: int) -> RawResult:
            log(f"raw Playwright ({label}): {args.runs} pages, concurrency {args.concurrency}")
            raw = raw_baseline(
                label,
                urls,
                titles,
                args.concurrency,
                warmup=warmup,
                floor_runs=floor_runs,
                timeout_s=args.phase_timeout,
            )
            log(f"  {raw.per_s:.2f} pages/s ({raw.elapsed_s:.2f}s; CPU busy/other {raw.cpu})")
            if raw.wrong_titles:
                log(f"  WARNING: {raw.wrong_titles} wrong titles")
            return raw

        # Raw before and after the daemon's throughput passes, so drift in the machine's
        # speed shows (and averages out) instead of silently moving the ratio.
        raws = [raw_pass("before", floor_runs=30)]
        log(f"daemon: starting (pool {args.concurrency}) in {daemon.state_dir}; source {revision}")
        start_daemon(daemon)
        replication = {"replication": {"maxConcurrentRequests": args.concurrency}}
        daemon.deploy("bench", {"api/title.py": TITLE_API}, replication)
        daemon.deploy("echo", {"api/echo.py": ECHO_API}, replication)
        passes = trio.run(daemon_throughput_phases, daemon, args, urls, titles)
        if not args.single_raw:
            raws.append(raw_pass("after", floor_runs=0))
        latencies, health = trio.run(daemon_latency_phases, daemon, args)
    markdown, data = report(args, machine_info(revision), raws, passes, latencies, health)
    bad = any(p.verified != p.runs for p in passes) or any(r.wrong_titles for r in raws)
    return Report(markdown, data, failed=bad)


if __name__ == "__main__":
    sys.exit(main())
