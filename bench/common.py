"""What every benchmark shares: the daemon (``intunedd.harness``) set up for measuring, the
command line they have in common, the machine table, CPU and memory monitors, and the report
output. Benchmarks run as modules from the checkout's root: ``python -m bench.throughput``."""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

import httpx
import psutil
import trio

from intunedd.clock import parse_iso
from intunedd.harness import DaemonProcess
from intunedd.workers.browser import find_browser
from intunedd.workers.child import CHROMIUM_ARGS as WORKER_CHROMIUM_ARGS

# Every benchmark launches the very browser, with the very flags, the daemon's workers use:
# a ratio to raw Playwright is only fair while both sides run the same Chromium the same way.
CHROMIUM = find_browser("auto", True) or "/usr/lib/chromium/chromium-headless-shell"
CHROMIUM_ARGS = list(WORKER_CHROMIUM_ARGS)
DAEMON_START_TIMEOUT_S = 90.0
RSS_INTERVAL_S = 0.1
MIB = 1024 * 1024
ECHO_API = """\
async def automation(page, params, **kwargs):
    return params
"""


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# The daemon


def bench_daemon(state_dir: Path, pool_size: int, **sections: dict[str, Any]) -> DaemonProcess:
    """A daemon (not started yet) on ``state_dir`` with the benchmarks' Chromium and a short drain."""
    merged: dict[str, dict[str, Any]] = {
        "pool": {"size": pool_size, "browser": CHROMIUM},
        "runs": {"drain_timeout_s": 5.0},
    }
    for name, values in sections.items():
        merged.setdefault(name, {}).update(values)
    return DaemonProcess(state_dir, merged, key_name="bench")


def start_daemon(d: DaemonProcess) -> None:
    d.start(timeout_s=DAEMON_START_TIMEOUT_S)


def stop_daemon(d: DaemonProcess) -> None:
    """SIGTERM (then SIGKILL), then kill whatever of its process tree outlived it."""
    if d.process is None:
        return
    tree: list[psutil.Process] = []
    if d.process.poll() is None:
        try:
            tree = psutil.Process(d.process.pid).children(recursive=True)
        except psutil.Error:
            pass
    d.stop()
    for p in tree:
        try:
            p.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(tree, timeout=5)


def events_url(d: DaemonProcess, project: str, types: list[str] | tuple[str, ...]) -> str:
    query = "".join(f"&type={t}" for t in types)
    return f"ws://127.0.0.1:{d.port}/api/v1/workspace/{d.workspace}/events?project={project}{query}&apiKey={d.key}"


async def call(client: httpx.AsyncClient, method: str, path: str, body: Any = None) -> Any:
    r = await client.request(method, path, json=body)
    if r.status_code not in (200, 201):
        raise RuntimeError(f"{method} {path}: {r.status_code} {r.text[:500]}")
    return r.json() if r.content else None


async def wait_until(predicate: Callable[..., bool], timeout_s: float, what: str, interval_s: float = 0.002) -> None:
    with trio.move_on_after(timeout_s):
        while not predicate():
            await trio.sleep(interval_s)
        return
    raise RuntimeError(f"timed out after {timeout_s:g}s waiting for {what}")


def epoch(text: str) -> float:
    return parse_iso(text).timestamp()


# --------------------------------------------------------------------------------------------
# CPU and memory


@dataclass
class CpuUse:
    busy_pct: float  # all CPUs, everything on the machine
    other_pct: float  # processes outside this benchmark's process tree

    def __str__(self) -> str:
        return f"{self.busy_pct:.0f}% / {self.other_pct:.0f}%"

    def data(self) -> dict[str, float]:
        return {"busy_pct": self.busy_pct, "other_pct": self.other_pct}


def cpu_data(use: CpuUse | None) -> dict[str, float] | None:
    return use.data() if use else None


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


def cpu_seconds(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return t.user + t.system


def runqueue_waits(pid: int) -> dict[int, float]:
    """Per thread of the process: seconds spent runnable but waiting for a CPU (schedstat)."""
    waits: dict[int, float] = {}
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            waits[int(task.name)] = int((task / "schedstat").read_text().split()[1]) / 1e9
        except (OSError, ValueError, IndexError):
            continue
    return waits


def vm_hwm(pid: int) -> int | None:
    """The kernel's peak RSS of the process since it started (VmHWM), in bytes."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


class RssSampler(threading.Thread):
    """The daemon process's RSS every ``RSS_INTERVAL_S``, from the moment it exists (it may be
    started before the daemon is) until ``stop_event`` is set."""

    def __init__(self, daemon: DaemonProcess) -> None:
        super().__init__(name="rss", daemon=True)
        self.d = daemon
        self.stop_event = threading.Event()
        self.peak = 0
        self.samples = 0
        self.last = 0

    def run(self) -> None:
        while self.d.process is None and not self.stop_event.wait(0.01):
            pass
        if self.d.process is None:
            return
        try:
            proc = psutil.Process(self.d.process.pid)
        except psutil.Error:
            return
        while not self.stop_event.is_set():
            try:
                self.last = proc.memory_info().rss
            except psutil.Error:
                return
            self.peak = max(self.peak, self.last)
            self.samples += 1
            self.stop_event.wait(RSS_INTERVAL_S)

    def finish(self) -> None:
        self.stop_event.set()
        self.join(5)


class TreeRss(threading.Thread):
    """The peak of a process tree's summed RSS (a process and all its descendants), sampled every
    ``RSS_INTERVAL_S`` from ``follow(pid)`` until ``finish()``. Summed RSS counts pages shared
    between processes (Chromium's) more than once: an upper bound, the same for every subject."""

    def __init__(self) -> None:
        super().__init__(name="tree-rss", daemon=True)
        self.pid: int | None = None
        self.exclude: int | None = None
        self.stop_event = threading.Event()
        self.peak = 0

    def follow(self, pid: int, *, exclude: int | None = None) -> None:
        """From now on, ``pid``'s tree without ``exclude``'s (another subject, idle meanwhile)."""
        self.pid = pid
        self.exclude = exclude
        self.start()

    def run(self) -> None:
        assert self.pid is not None
        while not self.stop_event.is_set():
            try:
                root = psutil.Process(self.pid)
                tree = [root, *root.children(recursive=True)]
                if self.exclude is not None:
                    other = psutil.Process(self.exclude)
                    tree = [p for p in tree if p not in {other, *other.children(recursive=True)}]
            except psutil.Error:
                return
            total = 0
            for process in tree:
                try:
                    total += process.memory_info().rss
                except psutil.Error:
                    pass  # it ended between the listing and the look
            self.peak = max(self.peak, total)
            self.stop_event.wait(RSS_INTERVAL_S)

    def finish(self) -> None:
        self.stop_event.set()
        if self.is_alive():
            self.join(5)


# --------------------------------------------------------------------------------------------
# Figures


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


def fmt_ms(s: dict[str, float], last: str = "mean") -> str:
    """``p50 · p99 · <last>`` of a ``summarize`` result; ``last`` is ``mean`` or ``max``."""
    if not s.get("n"):
        return "n/a"
    return f"p50 {s['p50_ms']:.1f} ms · p99 {s['p99_ms']:.1f} ms · {last} {s[f'{last}_ms']:.1f} ms"


# --------------------------------------------------------------------------------------------
# The machine


def chromium_version() -> str:
    try:
        out = subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True, timeout=20).stdout
        return out.split()[-1] if out.split() else "?"
    except (OSError, subprocess.SubprocessError):
        return "?"


def source_revision() -> str:
    """The git commit of the checkout being measured, with ``-dirty`` if it has local changes."""
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=20,
        )
        return out.stdout.strip() or "?"
    except (OSError, subprocess.SubprocessError):
        return "?"


def machine_info(revision: str) -> dict[str, Any]:
    """``revision`` is taken by the caller before the daemon starts: the code that was measured."""
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
        "chromium": chromium_version(),
        "intunedd": pkg("intunedd"),
        "revision": revision,
    }


def machine_table(machine: dict[str, Any]) -> list[str]:
    return [
        "| Machine | |",
        "|---|---|",
        f"| CPU | {machine['cpu']} |",
        f"| Cores | {machine['cores']} |",
        f"| RAM | {machine['ram_gib']} GiB |",
        f"| OS | {machine['os']} |",
        f"| Python | {machine['python']} |",
        f"| Playwright | {machine['playwright']} |",
        f"| Chromium | {machine['chromium']} (headless shell) |",
        f"| intunedd | {machine['intunedd']} ({machine['revision']}) |",
        "",
    ]


def other_cpu_warning(uses: list[CpuUse | None], what: str) -> str | None:
    others = [u.other_pct for u in uses if u is not None]
    if others and max(others) > 5:
        return (
            f"- WARNING: other processes used up to {max(others):.0f}% of the CPU during {what}; "
            "the figures are disturbed"
        )
    return None


# --------------------------------------------------------------------------------------------
# Command line and the run as a whole


def parser(doc: str, phase_timeout: float) -> argparse.ArgumentParser:
    """The options every benchmark has; the caller adds its own."""
    p = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    p.add_argument("--phase-timeout", type=float, default=phase_timeout, help="bound on each measured phase (s)")
    p.add_argument("--json", dest="json_path", help="also write the figures here")
    p.add_argument("--keep-state", action="store_true", help="keep the daemons' state dirs (printed)")
    return p


@dataclass
class Report:
    markdown: str
    data: dict[str, Any]
    failed: bool


@dataclass
class Session:
    """One benchmark run: a throwaway directory, and the daemons made in it (stopped at the end)."""

    state: Path
    daemons: list[DaemonProcess] = field(default_factory=list)

    def daemon(self, pool_size: int, name: str = "daemon", **sections: dict[str, Any]) -> DaemonProcess:
        d = bench_daemon(self.state / name, pool_size, **sections)
        self.daemons.append(d)
        return d


def run(args: argparse.Namespace, prefix: str, body: Callable[[Session], Report]) -> int:
    """Run ``body``, print its markdown (and write its figures to ``--json``); 1 if it failed.
    Whatever happens, every daemon it made is stopped and the directory removed."""
    if not Path(CHROMIUM).exists():
        print(f"error: {CHROMIUM} not found (apt-get install chromium-headless-shell)", file=sys.stderr)
        return 2
    # SIGTERM to the bench must still stop the daemons: turn it into SystemExit.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    session = Session(Path(tempfile.mkdtemp(prefix=prefix)))
    try:
        report = body(session)
        print(report.markdown)
        if args.json_path:
            Path(args.json_path).write_text(json.dumps({"markdown": report.markdown, **report.data}, indent=2) + "\n")
        return 1 if report.failed else 0
    except BaseException:
        for d in session.daemons:
            if d.log_path.exists():
                print(f"--- daemon log tail ({d.state_dir}) ---\n{d.log_tail()}", file=sys.stderr)
        raise
    finally:
        for d in session.daemons:
            stop_daemon(d)
        if args.keep_state:
            log(f"state kept in {session.state}")
        else:
            shutil.rmtree(session.state, ignore_errors=True)
