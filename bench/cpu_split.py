"""Where a page's CPU goes: raw Playwright against intunedd, untraced and traced, per kind of process.

    python -m bench.cpu_split [--concurrency 2] [--runs 300] [--json out.json]

On a machine whose cores are all busy, throughput is CPU per page, so this says where intunedd's
cost differs from a bare script's. For each subject (the raw baseline of ``bench/throughput.py``;
a fresh daemon's ``saveTrace: false`` pass; then its ``saveTrace: true`` pass), a sampler in a
process of its own reads the CPU time of every process in the subject's tree every
``SAMPLE_INTERVAL_S`` and sorts it by kind: Chromium's renderers, its browser process, its other
helpers (GPU, network, storage), Playwright's node driver, the Python that drives Playwright (the
script's own process for raw; the workers for intunedd), the daemon, and this benchmark's HTTP and
events client (intunedd only: raw's client is its own script). A process is counted from its
first sample to its last (a renderer lives for a page: several samples), so what it uses after its
last sample is missed; the table's last rows say how much: the kinds' sum beside the whole
machine's busy time over the same pass (the machine's includes this benchmark's sampler).

Prints CPU milliseconds per page per kind, beside pages per second.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from functools import partial
from multiprocessing.connection import Connection

import psutil
import trio

from bench.common import Report, Session, log, machine_info, machine_table, parser, run, source_revision, start_daemon
from bench.pages import PageServer, page_title
from bench.throughput import TITLE_API, daemon_throughput, raw_baseline, warm_up
from intunedd.harness import DaemonProcess

SAMPLE_INTERVAL_S = 0.025
CLIENT = "bench client (HTTP, events)"
MACHINE = "machine"
KINDS = (
    "Chromium renderers",
    "Chromium browser process",
    "Chromium GPU, network, utility",
    "Playwright driver (node)",
    "Python driving Playwright",
    "intunedd daemon",
    CLIENT,
    "other",
)


def _kind(cmdline: list[str], root: bool, root_kind: str) -> str:
    if root:
        return root_kind
    line = " ".join(cmdline)
    if "intunedd.workers" in line:  # before Chromium: a worker's config names the browser
        return "Python driving Playwright"
    if "--type=renderer" in line or "--type=zygote" in line:
        return "Chromium renderers"
    if "--type=" in line:
        return "Chromium GPU, network, utility"
    if "chrom" in line:
        return "Chromium browser process"
    if cmdline and os.path.basename(cmdline[0]) == "node":
        return "Playwright driver (node)"
    return "other"


def _sample(pid: int, root_kind: str, out: Connection) -> None:
    """The sampler process: CPU seconds per kind in ``pid``'s tree until told to stop."""
    me = os.getpid()
    kinds: dict[int, str] = {}
    first: dict[int, float] = {}
    last: dict[int, float] = {}
    root = psutil.Process(pid)
    initial = True
    machine_before = _machine_busy_s()
    while not out.poll(SAMPLE_INTERVAL_S):
        try:
            tree = [root, *root.children(recursive=True)]
        except psutil.Error:
            break
        for process in tree:
            if process.pid == me:
                continue
            try:
                t = process.cpu_times()
                if process.pid not in kinds:
                    kinds[process.pid] = _kind(process.cmdline(), process.pid == pid, root_kind)
            except psutil.Error:
                continue  # it ended between the listing and the look
            used = t.user + t.system
            # What a process had used before the pass began is not the pass's.
            first.setdefault(process.pid, used if initial else 0.0)
            last[process.pid] = used
        initial = False
    split: defaultdict[str, float] = defaultdict(float)
    for p, used in last.items():
        split[kinds[p]] += used - first[p]
    split[MACHINE] = _machine_busy_s() - machine_before
    out.send(dict(split))


def _machine_busy_s() -> float:
    t = psutil.cpu_times()
    return float(sum(t) - t.idle - getattr(t, "iowait", 0.0))


class TreeCpu:
    """CPU seconds per kind of process in a tree, sampled from a process of its own (so its work
    is not the subject's, and holds no lock the subject's Python needs)."""

    def __init__(self, pid: int, root_kind: str) -> None:
        self._mine, theirs = multiprocessing.Pipe()
        self._sampler = multiprocessing.get_context("fork").Process(target=_sample, args=(pid, root_kind, theirs))
        self._sampler.start()
        time.sleep(5 * SAMPLE_INTERVAL_S)  # its first sample sets the baseline, before the pass

    def finish(self) -> defaultdict[str, float]:
        self._mine.send("stop")
        split: dict[str, float] = self._mine.recv() if self._mine.poll(30) else {}
        self._sampler.join(5)
        return defaultdict(float, split)


@dataclass
class Subject:
    label: str
    per_s: float
    runs: int
    split: defaultdict[str, float]

    def ms_per_page(self, kind: str) -> float:
        return 1000 * self.split[kind] / self.runs

    @property
    def total_ms(self) -> float:
        return sum(self.ms_per_page(kind) for kind in KINDS)

    @property
    def machine_ms(self) -> float:
        return self.ms_per_page(MACHINE)


def _own_cpu_s() -> float:
    t = psutil.Process().cpu_times()
    return t.user + t.system


async def _daemon_pass(
    d: DaemonProcess, urls: list[str], titles: list[str], save_trace: bool, timeout_s: float
) -> Subject:
    label = f"intunedd, saveTrace {str(save_trace).lower()}"
    assert d.process is not None
    cpu = TreeCpu(d.process.pid, "intunedd daemon")
    before = _own_cpu_s()
    passed = await daemon_throughput(
        d, "bench", urls, titles, save_trace=save_trace, submitters=8, label=label, timeout_s=timeout_s
    )
    split = cpu.finish()
    # This process's CPU includes the pass's verification reads: slightly over.
    split[CLIENT] = _own_cpu_s() - before
    if passed.verified != passed.runs:
        raise RuntimeError(f"{label}: {passed.verified}/{passed.runs} results verified: {passed.problems}")
    return Subject(label, passed.per_s, passed.runs, split)


def measure(session: Session, args: argparse.Namespace) -> Report:
    c = args.concurrency
    with PageServer(args.runs) as site:
        urls = [site.url(i) for i in range(args.runs)]
        titles = [page_title(i) for i in range(args.runs)]
        log(f"raw Playwright, concurrency {c}")
        cpu = TreeCpu(os.getpid(), "Python driving Playwright")
        raw = raw_baseline("raw", urls, titles, c, warmup=max(2 * c, 4), floor_runs=0, timeout_s=args.phase_timeout)
        subjects = [Subject("raw Playwright", raw.per_s, len(urls), cpu.finish())]
        d = session.daemon(c, f"pool-{c}")
        start_daemon(d)
        d.deploy("bench", {"api/title.py": TITLE_API}, {"replication": {"maxConcurrentRequests": c}})
        for save_trace in (False, True):
            log(f"intunedd, saveTrace {str(save_trace).lower()}, pool of {c}")
            trio.run(partial(warm_up, d, urls, titles, c, save_trace=save_trace))
            subjects.append(trio.run(_daemon_pass, d, urls, titles, save_trace, args.phase_timeout))
        d.stop()
    header = "| CPU ms per page | " + " | ".join(s.label for s in subjects) + " |"
    lines = [
        f"CPU per page by kind of process: {args.runs} local pages, concurrency {c}, a new context per page",
        "",
        header,
        "|---|" + "---:|" * len(subjects),
    ]
    for kind in KINDS:
        if any(s.split[kind] for s in subjects):
            lines.append(f"| {kind} | " + " | ".join(f"{s.ms_per_page(kind):.1f}" for s in subjects) + " |")
    lines.append("| **total of the kinds** | " + " | ".join(f"**{s.total_ms:.0f}**" for s in subjects) + " |")
    lines.append("| whole machine busy | " + " | ".join(f"{s.machine_ms:.0f}" for s in subjects) + " |")
    lines.append("| pages (runs) per second | " + " | ".join(f"{s.per_s:.2f}" for s in subjects) + " |")
    lines += ["", *machine_table(machine_info(source_revision()))]
    data = {
        "concurrency": c,
        "subjects": [
            {"label": s.label, "per_s": s.per_s, "ms_per_page": {k: s.ms_per_page(k) for k in (*KINDS, MACHINE)}}
            for s in subjects
        ],
    }
    return Report("\n".join(lines), data, failed=False)


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__ or "", phase_timeout=900)
    p.add_argument("--runs", type=int, default=300, help="pages / runs per pass")
    p.add_argument("--concurrency", type=int, default=2)
    args = p.parse_args(argv)
    return run(args, "intunedd-bench-cpu-split-", lambda session: measure(session, args))


if __name__ == "__main__":
    sys.exit(main())
