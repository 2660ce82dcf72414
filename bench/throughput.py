#!/usr/bin/env python
"""Throughput and latency of intunedd against raw Playwright on the same machine.

    python bench/throughput.py [--runs 500] [--concurrency 2] [--latency-runs 100] [--json out.json]

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
import io
import json
import math
import os
import platform
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

import httpx
import psutil
import trio
from trio_websocket import open_websocket_url

from intunedd.workers.browser import find_browser
from intunedd.workers.child import CHROMIUM_ARGS as WORKER_CHROMIUM_ARGS

# The baseline launches the very browser, with the very flags, the daemon's workers use:
# a ratio is only fair while both sides run the same Chromium the same way.
CHROMIUM = find_browser("auto", True) or "/usr/lib/chromium/chromium-headless-shell"
CHROMIUM_ARGS = list(WORKER_CHROMIUM_ARGS)
INTUNEDD = [sys.executable, "-m", "intunedd"]
DAEMON_START_TIMEOUT_S = 90.0
DAEMON_STOP_TIMEOUT_S = 30.0
HTTP_TIMEOUT = httpx.Timeout(30.0)
TERMINAL_EVENTS = ("run.completed", "run.failed")

# --------------------------------------------------------------------------------------------
# Pages


_WORDS = (
    "automation browser context worker pool queue latency throughput chromium render layout "
    "paint script network request response cache cookie session header payload result trace "
    "screenshot snapshot selector locator element attribute document window frame event "
    "listener promise task loop thread process memory socket frame budget"
).split()


def _sentence(rnd: random.Random) -> str:
    words = [rnd.choice(_WORDS) for _ in range(rnd.randint(8, 16))]
    return " ".join(words).capitalize() + "."


def page_title(i: int) -> str:
    rnd = random.Random(i)
    return f"Bench page {i}: {rnd.choice(_WORDS)} {rnd.choice(_WORDS)}"


def page_html(i: int) -> bytes:
    """A few KB of plain HTML: a title, a heading, a nav list, paragraphs and a table."""
    rnd = random.Random(1_000_000 + i)
    paragraphs = "\n".join(f"<p>{' '.join(_sentence(rnd) for _ in range(rnd.randint(3, 6)))}</p>" for _ in range(6))
    nav = "".join(f'<li><a href="/p/{(i + k) % 997}">{rnd.choice(_WORDS)}</a></li>' for k in range(1, 9))
    rows = "".join(
        f"<tr><td>{rnd.choice(_WORDS)}</td><td>{rnd.randint(1, 9999)}</td><td>{rnd.random():.4f}</td></tr>"
        for _ in range(10)
    )
    html = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{page_title(i)}</title>
<style>body{{font-family:sans-serif;max-width:50em;margin:auto}} td{{padding:2px 8px}}</style>
</head><body>
<header><h1>Article {i}</h1><nav><ul>{nav}</ul></nav></header>
<main>{paragraphs}
<table><thead><tr><th>name</th><th>count</th><th>ratio</th></tr></thead><tbody>{rows}</tbody></table>
</main><footer><p>Generated for the intunedd benchmark.</p></footer>
</body></html>
"""
    return html.encode()


class PageServer:
    """A threaded HTTP server on 127.0.0.1 serving /p/<i> for i < count (pre-rendered)."""

    def __init__(self, count: int) -> None:
        pages = {f"/p/{i}": page_html(i) for i in range(max(count, 997))}

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                body = pages.get(self.path.split("?")[0])
                self.send_response(200 if body is not None else 404)
                body = body if body is not None else b"not found"
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.sizes = [len(pages[f"/p/{i}"]) for i in range(count)]
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> PageServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def url(self, i: int) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/p/{i}"


# --------------------------------------------------------------------------------------------
# CPU accounting: is the machine saturated, and is anything else using it?


@dataclass
class CpuUse:
    busy_pct: float  # all CPUs, everything on the machine
    other_pct: float  # processes outside this benchmark's process tree

    def __str__(self) -> str:
        return f"{self.busy_pct:.0f}% / {self.other_pct:.0f}%"


class CpuMonitor:
    """Snapshots of /proc/stat and of the CPU time of every process not descended from us.

    A process's CPU time is counted while it lives and, once reaped, in its parent's
    ``children_*`` times, so the difference of the totals is what foreign processes used in
    between, short-lived ones included.
    """

    def __init__(self) -> None:
        self._me = os.getpid()
        self._tick = os.sysconf("SC_CLK_TCK")

    def _stat(self) -> tuple[float, float]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + fields[4]
        return (sum(fields) - idle) / self._tick, sum(fields) / self._tick

    def _foreign_cpu(self) -> float:
        parents: dict[int, int] = {}
        for p in psutil.process_iter(["ppid"]):
            parents[p.pid] = p.info["ppid"] or 0

        def ours(pid: int) -> bool:
            for _ in range(64):
                if pid == self._me:
                    return True
                if pid <= 2:
                    return False
                pid = parents.get(pid, 0)
            return False

        total = 0.0
        for pid, ppid in parents.items():
            # pid 1 and kernel threads (children of kthreadd, pid 2) are left out: init reaps
            # orphans, ours included (Chromium's crashpad handler).
            if pid <= 2 or ppid == 2 or ours(pid):
                continue
            try:
                t = psutil.Process(pid).cpu_times()
            except psutil.Error:
                continue
            total += t.user + t.system + t.children_user + t.children_system
        return total

    def snapshot(self) -> tuple[float, float, float]:
        busy, total = self._stat()
        return busy, total, self._foreign_cpu()

    def since(self, start: tuple[float, float, float]) -> CpuUse:
        busy, total, foreign = self.snapshot()
        span = max(total - start[1], 1e-9)
        return CpuUse(100 * (busy - start[0]) / span, max(0.0, 100 * (foreign - start[2]) / span))


CPU = CpuMonitor()


# --------------------------------------------------------------------------------------------
# Raw Playwright baseline (asyncio)


@dataclass
class RawResult:
    label: str
    pages: int
    elapsed_s: float
    chromium_version: str
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
            return RawResult(label, len(urls), elapsed, browser.version, wrong, floor, cpu)
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
# The daemon as a subprocess


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def project_archive(files: dict[str, str], settings: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, text in {**files, "Intuned.json": json.dumps(settings)}.items():
            data = textwrap.dedent(text).encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = int(time.time())
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@dataclass
class Daemon:
    state_dir: Path
    pool_size: int
    port: int = field(default_factory=free_port)
    key: str = ""
    workspace: str = ""
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def config_path(self) -> Path:
        return self.state_dir / "intunedd.toml"

    @property
    def log_path(self) -> Path:
        return self.state_dir / "daemon.log"

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:] if self.log_path.exists() else ""

    def start(self) -> None:
        self.config_path.write_text(
            textwrap.dedent(
                f"""\
                state_dir = "{self.state_dir}"
                [server]
                port = {self.port}
                [pool]
                size = {self.pool_size}
                browser = "{CHROMIUM}"
                [runs]
                drain_timeout_s = 5.0
                """
            )
        )
        out = subprocess.run(
            [*INTUNEDD, "--json", "keys", "create", "--name", "bench", "--config", str(self.config_path)],
            capture_output=True,
            check=True,
            timeout=60,
        )
        self.key = json.loads(out.stdout)["key"]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [*INTUNEDD, "serve", "--config", str(self.config_path)], stdout=log, stderr=log
            )
        deadline = time.monotonic() + DAEMON_START_TIMEOUT_S
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"daemon exited {self.process.returncode}:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"daemon not ready after {DAEMON_START_TIMEOUT_S:g}s:\n{self.log_tail()}")
            try:
                health = httpx.get(f"{self.url}/health", timeout=2)
                pool = health.json()["pool"] if health.status_code == 200 else None
                if pool and pool["idle"] == pool["size"]:
                    break
            except (httpx.TransportError, ValueError, KeyError):
                pass
            time.sleep(0.1)
        with self.client() as c:
            r = c.get("/api/v1/info")
            r.raise_for_status()
            self.workspace = r.json()["workspaceId"]

    def stop(self) -> None:
        """SIGTERM (the daemon drains and kills its workers), then SIGKILL if it lingers."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=DAEMON_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"x-api-key": self.key}, timeout=HTTP_TIMEOUT)

    def async_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, headers={"x-api-key": self.key}, timeout=HTTP_TIMEOUT)

    def path(self, project: str, rest: str = "") -> str:
        return f"/api/v1/workspace/{self.workspace}/projects/{project}{rest}"

    def events_url(self, project: str) -> str:
        types = "".join(f"&type={t}" for t in TERMINAL_EVENTS)
        return (
            f"ws://127.0.0.1:{self.port}/api/v1/workspace/{self.workspace}/events"
            f"?project={project}{types}&apiKey={self.key}"
        )

    def deploy(self, project: str, files: dict[str, str], max_concurrent: int) -> None:
        archive = project_archive(files, {"replication": {"maxConcurrentRequests": max_concurrent}})
        with self.client() as c:
            r = c.post(self.path(project, "/deploy"), content=archive)
            if r.status_code != 201:
                raise RuntimeError(f"deploy {project}: {r.status_code} {r.text}")


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

    @property
    def per_s(self) -> float:
        return self.runs / self.elapsed_s if self.elapsed_s else 0.0


async def daemon_throughput(
    d: Daemon,
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
        async with open_websocket_url(d.events_url(project)) as ws, trio.open_nursery() as nursery:
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


async def _verify(d: Daemon, project: str, run_ids: dict[str, int], titles: list[str], out: DaemonPass) -> None:
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


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def summarize(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "p50_ms": percentile(values, 50),
        "p99_ms": percentile(values, 99),
        "mean_ms": statistics.fmean(values),
        "min_ms": min(values),
        "max_ms": max(values),
    }


async def daemon_latency(
    d: Daemon, project: str, runs: int, *, save_trace: bool, gap_s: float, label: str, timeout_s: float
) -> Latency:
    out = Latency(label, [], [])
    completions = Completions()
    with trio.fail_after(timeout_s):
        async with (
            open_websocket_url(d.events_url(project)) as ws,
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
ECHO_API = """\
async def automation(page, params, **kwargs):
    return params
"""


async def daemon_throughput_phases(
    d: Daemon, args: argparse.Namespace, urls: list[str], titles: list[str]
) -> list[DaemonPass]:
    c = args.concurrency
    warm = max(2 * c, 4)
    log(f"daemon: warm-up ({warm} runs)")
    await daemon_throughput(
        d, "bench", urls[:warm], titles[:warm], save_trace=False, submitters=1, label="warm-up", timeout_s=60
    )
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
        log(f"  {traced.per_s:.2f} runs/s ({traced.elapsed_s:.2f}s; CPU busy/other {traced.cpu})")
        passes.append(traced)
    return passes


async def daemon_latency_phases(d: Daemon, args: argparse.Namespace) -> tuple[list[Latency], dict[str, Any]]:
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
# Machine and report


def machine_info(chromium_version: str) -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram_gib = 0.0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram_gib = int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass

    def pkg(name: str) -> str:
        try:
            return package_version(name)
        except Exception:  # noqa: BLE001
            return "?"

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gib": round(ram_gib, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "playwright": pkg("playwright"),
        "chromium": chromium_version,
        "intunedd": pkg("intunedd"),
    }


def fmt_latency(s: dict[str, float]) -> str:
    if not s.get("n"):
        return "n/a"
    return f"p50 {s['p50_ms']:.1f} ms · p99 {s['p99_ms']:.1f} ms · mean {s['mean_ms']:.1f} ms"


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
                f"intunedd, saveTrace=true (pool {c})",
                f"{traced.runs}",
                f"{traced.elapsed_s:.2f}",
                f"{traced.per_s:.2f} runs/s",
                cpu(traced.cpu),
            ),
            ("Ratio intunedd (traced) / raw", "", "", f"{ratio_traced:.2f}×", ""),
        ]
    for lat in latencies:
        aim = " (aim p50 < 100 ms)" if lat.label == "saveTrace=false" else ""
        rows.append(
            (
                f"Latency, idle warm pool, `return params`, {lat.label}{aim}",
                f"{len(lat.samples_ms)}",
                "",
                fmt_latency(lat.summary()),
                cpu(lat.cpu),
            )
        )
    for lat in latencies:
        rows.append(
            (
                f"↳ of which the POST run/start round trip, {lat.label}",
                f"{len(lat.post_ms)}",
                "",
                fmt_latency(summarize(lat.post_ms)),
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
                fmt_latency(summarize(floor)),
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
        "| Machine | |",
        "|---|---|",
        f"| CPU | {machine['cpu']} |",
        f"| Cores | {machine['cores']} |",
        f"| RAM | {machine['ram_gib']} GiB |",
        f"| OS | {machine['os']} |",
        f"| Python | {machine['python']} |",
        f"| Playwright | {machine['playwright']} |",
        f"| Chromium | {machine['chromium']} (headless shell) |",
        f"| intunedd | {machine['intunedd']} |",
        "",
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
    others = [u.other_pct for u in [*(r.cpu for r in raws), *(p.cpu for p in passes)] if u is not None]
    if others and max(others) > 5:
        lines.append(
            f"- WARNING: other processes used up to {max(others):.0f}% of the CPU during a throughput phase; "
            "the figures are disturbed"
        )
    if len(raws) > 1 and spread > 10:
        lines.append(f"- WARNING: the raw passes differ by {spread:.0f}%: the machine's speed drifted")
    markdown = "\n".join(lines)

    def cpu_data(use: CpuUse | None) -> dict[str, float] | None:
        return {"busy_pct": use.busy_pct, "other_pct": use.other_pct} if use else None

    data = {
        "markdown": markdown,
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


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=500, help="pages / runs in the main throughput passes")
    p.add_argument("--concurrency", type=int, default=2, help="raw workers = daemon pool size")
    p.add_argument("--trace-runs", type=int, default=200, help="runs in the saveTrace=true throughput pass")
    p.add_argument("--latency-runs", type=int, default=100, help="sequential runs for latency, saveTrace=false")
    p.add_argument("--latency-trace-runs", type=int, default=30, help="sequential runs for latency, saveTrace=true")
    p.add_argument("--latency-gap-ms", type=float, default=50.0, help="idle gap before each latency run")
    p.add_argument("--submitters", type=int, default=8, help="concurrent HTTP clients submitting run/start")
    p.add_argument("--phase-timeout", type=float, default=240.0, help="bound on each measured phase (s)")
    p.add_argument("--json", dest="json_path", help="also write the figures here")
    p.add_argument("--single-raw", action="store_true", help="one raw pass (before) instead of before and after")
    p.add_argument("--keep-state", action="store_true", help="keep the daemon's state dir (printed)")
    args = p.parse_args(argv)
    if args.runs < 1 or args.concurrency < 1:
        p.error("--runs and --concurrency must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not Path(CHROMIUM).exists():
        print(f"error: {CHROMIUM} not found (apt-get install chromium-headless-shell)", file=sys.stderr)
        return 2
    # SIGTERM to the bench must still stop the daemon: turn it into SystemExit.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    state = Path(tempfile.mkdtemp(prefix="intunedd-bench-"))
    daemon = Daemon(state, args.concurrency)
    warmup = max(2 * args.concurrency, 4)
    try:
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
            log(f"daemon: starting (pool {args.concurrency}) in {state}")
            daemon.start()
            daemon.deploy("bench", {"api/title.py": TITLE_API}, max_concurrent=args.concurrency)
            daemon.deploy("echo", {"api/echo.py": ECHO_API}, max_concurrent=args.concurrency)
            passes = trio.run(daemon_throughput_phases, daemon, args, urls, titles)
            if not args.single_raw:
                raws.append(raw_pass("after", floor_runs=0))
            latencies, health = trio.run(daemon_latency_phases, daemon, args)
        machine = machine_info(raws[0].chromium_version)
        markdown, data = report(args, machine, raws, passes, latencies, health)
        print(markdown)
        if args.json_path:
            Path(args.json_path).write_text(json.dumps(data, indent=2) + "\n")
        bad = any(p.verified != p.runs for p in passes) or any(r.wrong_titles for r in raws)
        return 1 if bad else 0
    except BaseException:
        if daemon.log_path.exists():
            print(f"--- daemon log tail ---\n{daemon.log_tail()}", file=sys.stderr)
        raise
    finally:
        daemon.stop()
        if args.keep_state:
            log(f"state kept in {state}")
        else:
            shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
