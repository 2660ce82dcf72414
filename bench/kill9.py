"""Kill -9 campaign: does a daemon killed with SIGKILL at a random moment lose or repeat work?

    python -m bench.kill9 [--trials 100] [--seed N] [--lock /tmp/e2e.lock] [--json out.json]

Each trial starts a daemon (pool of 2) on a fresh state dir, deploys a small project (an API
that loads a local page, and one that adds two items to its JobRun with ``extend_payload``),
and then, all at once from another thread: triggers a JobRun of ``--items`` items (every
fourth one extends the payload), and starts standalone runs and runs with a webhook sink
pointing at a receiver in this process, in an order the seeded RNG shuffles. At a random
moment (seeded, recorded) after the first submission the daemon gets SIGKILL; it is restarted
on the same state dir and, within a bound, everything accepted must finish. Counted per trial:

- runs accepted (answered 201, or an item of an accepted JobRun, or an item an accepted item's
  completed run added) and lost: missing, or not terminal once the bound is over;
- duplicated completions: runs with more than one completed attempt (an attempt the kill cut
  short is recorded ``interrupted`` and its retry is expected); attempts that neither completed
  nor were interrupted are counted too (these automations never fail);
- JobRuns not ending COMPLETED with every item (original and extended) successful;
- deliveries: completed runs with a sink whose webhook never reached the receiver (lost), and
  the same ``Idempotency-Key`` received more than once (duplicates: at-least-once allows them);
- orphans: processes of the killed daemon's tree (workers, Chromium) still alive at the end of
  the trial, any process whose command line names the trial's state dir, and workers or
  browsers started during the trial and reparented to pid 1.

Prints a table per trial and a JSON summary (totals, the seed, every kill moment); the exit
status is 1 if any run, JobRun or delivery was lost. With ``--lock FILE`` each trial holds an
exclusive flock on FILE (the e2e tests' lock), so other users of the machine interleave.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import random
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

from bench.common import Report, Session, log, machine_info, parser, run, source_revision, start_daemon, stop_daemon
from bench.pages import PageServer
from bench.receiver import Receiver
from intunedd.harness import TERMINAL, DaemonProcess

PROJECT = "crash"
JOB = "crash-job"
JOB_RUN_ACTIVE = ("PENDING", "PAUSING", "PAUSED", "RESUMING")
ORPHAN_GRACE_S = 5.0
STRAY_MARKS = ("intunedd.workers.child", "chrom", "playwright")
APIS = {
    "api/page.py": """
        import asyncio

        async def automation(page, params, **kwargs):
            await page.goto(params["url"])
            await asyncio.sleep(params["pause"])
            return await page.title()
    """,
    "api/fanout.py": """
        import asyncio
        from intuned_runtime import extend_payload

        async def automation(page, params, **kwargs):
            await page.goto(params["url"])
            await asyncio.sleep(params["pause"])
            for child in params["children"]:
                extend_payload({"api": "page", "parameters": child})
            return await page.title()
    """,
}


@dataclass
class Trial:
    number: int
    kill_at_s: float  # after the first submission
    submitted_at_kill: int = 0  # POSTs answered 201 before the kill
    delivered_at_kill: int = 0  # webhooks at the receiver before the kill
    accepted: int = 0  # runs, items and extended items included
    lost: int = 0
    not_completed: int = 0  # terminal but not completed (these APIs always succeed)
    interrupted: int = 0  # attempts recorded as interrupted
    duplicated: int = 0  # runs with more than one completed attempt
    odd_attempts: int = 0  # attempts neither completed nor interrupted
    job_runs: int = 0
    job_runs_bad: int = 0
    sink_runs: int = 0  # completed runs with a sink
    delivered: int = 0
    deliveries_lost: int = 0
    duplicate_deliveries: int = 0
    orphans: int = 0
    recovery_s: float = 0.0  # restart -> everything accepted finished (or the bound)
    error: str = ""  # the trial itself broke (e.g. the daemon did not come back)
    problems: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return bool(self.lost or self.job_runs_bad or self.deliveries_lost or self.error)

    def problem(self, text: str) -> None:
        if len(self.problems) < 8:
            self.problems.append(text)


# --------------------------------------------------------------------------------------------
# Work


@dataclass
class Work:
    """What the submitting thread got accepted."""

    job_run: str | None = None
    standalone: list[str] = field(default_factory=list)
    sunk: list[str] = field(default_factory=list)
    answered: int = 0
    refused: str = ""  # the first error once the daemon was gone


def page_params(site: PageServer, rng: random.Random, i: int, pause_max_s: float) -> dict[str, Any]:
    return {"url": site.url(i), "pause": round(rng.uniform(0.02, pause_max_s), 3), "i": i}


def job_body(site: PageServer, rng: random.Random, items: int, pause_max_s: float) -> dict[str, Any]:
    payload = []
    for i in range(items):
        params = page_params(site, rng, i, pause_max_s)
        if i % 4 == 3:
            children = [page_params(site, rng, 1000 + 10 * i + k, pause_max_s) for k in range(2)]
            payload.append({"apiName": "fanout", "parameters": {**params, "children": children}})
        else:
            payload.append({"apiName": "page", "parameters": params})
    return {"id": JOB, "payload": payload, "configuration": {"maxConcurrentRequests": 2}}


def submit(d: DaemonProcess, bodies: list[dict[str, Any] | None], work: Work) -> None:
    """In this order, until the daemon is gone: ``None`` triggers the JobRun, a body starts a run."""
    try:
        with d.client() as c:
            for body in bodies:
                if body is None:
                    r = c.post(d.path(PROJECT, f"/jobs/{JOB}/trigger"))
                    work.answered += 1
                    if r.status_code in (200, 201):
                        work.job_run = str(r.json()["jobRunId"])
                    continue
                r = c.post(d.path(PROJECT, "/run/start"), json=body)
                work.answered += 1
                if r.status_code == 201:
                    (work.sunk if "sink" in body else work.standalone).append(str(r.json()["runId"]))
    except httpx.TransportError as e:
        work.refused = f"{type(e).__name__}: {e}"


# --------------------------------------------------------------------------------------------
# After the restart


def get(c: httpx.Client, path: str) -> dict[str, Any] | None:
    r = c.get(path)
    if r.status_code == 404:
        return None
    r.raise_for_status()
    return dict(r.json())


def job_run_runs(d: DaemonProcess, c: httpx.Client, job_run_id: str) -> list[dict[str, Any]]:
    page = get(c, d.path(PROJECT, f"/runs?limit=500&filter=job_run_id={job_run_id}"))
    return list(page["items"]) if page else []


def settled(d: DaemonProcess, work: Work, receiver: Receiver) -> bool:
    """Everything accepted is terminal, the JobRun has ended and every completed sink run's
    webhook has arrived."""
    with d.client() as c:
        for run_id in [*work.standalone, *work.sunk]:
            result = get(c, d.path(PROJECT, f"/run/{run_id}/result"))
            if result is None or result["status"] not in TERMINAL:
                return False
            if run_id in work.sunk and result["status"] == "completed" and run_id not in receiver.by_run:
                return False
        if work.job_run is not None:
            found = get(c, d.path(PROJECT, f"/jobs/{JOB}/runs/{work.job_run}"))
            if found is None or found["jobRun"]["status"] in JOB_RUN_ACTIVE:
                return False
    return True


def wait_settled(d: DaemonProcess, work: Work, receiver: Receiver, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not settled(d, work, receiver):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def check_run(d: DaemonProcess, c: httpx.Client, run_id: str, what: str, t: Trial) -> dict[str, Any] | None:
    """Count one accepted run; its detail if it exists."""
    t.accepted += 1
    detail = get(c, d.path(PROJECT, f"/runs/{run_id}"))
    if detail is None or detail["status"] not in TERMINAL:
        t.lost += 1
        t.problem(f"{what} {run_id} lost: {'missing' if detail is None else detail['status']}")
        return detail
    attempts = [a["status"] for a in detail["attempts"]]
    t.interrupted += attempts.count("interrupted")
    t.odd_attempts += sum(s not in ("completed", "interrupted") for s in attempts)
    if attempts.count("completed") > 1:
        t.duplicated += 1
        t.problem(f"{what} {run_id} completed {attempts.count('completed')} times: {attempts}")
    if detail["status"] != "completed":
        t.not_completed += 1
        t.problem(f"{what} {run_id} ended {detail['status']}: {attempts}")
    return detail


def check_job_run(d: DaemonProcess, c: httpx.Client, job_run_id: str, items: int, t: Trial) -> None:
    t.job_runs += 1
    found = get(c, d.path(PROJECT, f"/jobs/{JOB}/runs/{job_run_id}"))
    runs = job_run_runs(d, c, job_run_id)
    by_item: dict[int, list[str]] = {}
    extended: list[str] = []
    for listed in runs:
        detail = check_run(d, c, listed["id"], "item", t)
        if detail is None:
            continue
        by_item.setdefault(int(detail["parameters"]["i"]), []).append(listed["id"])
        if detail["apiName"] == "fanout" and detail["status"] == "completed":
            result = get(c, d.path(PROJECT, f"/run/{listed['id']}/result")) or {}
            extended += [e["runId"] for e in result.get("extendedPayloads") or []]
    missing_items = [i for i in range(items) if i not in by_item]
    t.accepted += len(missing_items)
    t.lost += len(missing_items)
    if missing_items:
        t.problem(f"JobRun {job_run_id}: items {missing_items} have no run")
    doubled = {i: ids for i, ids in by_item.items() if len(ids) > 1}
    if doubled:
        t.problem(f"JobRun {job_run_id}: items with more than one run {doubled}")
    listed_ids = {r["id"] for r in runs}
    absent = [r for r in extended if r not in listed_ids]
    t.accepted += len(absent)
    t.lost += len(absent)
    if absent:
        t.problem(f"JobRun {job_run_id}: extended runs {absent} missing")
    expected = items + len(extended)
    job_run = found["jobRun"] if found else {}
    got = (job_run.get("status"), job_run.get("payloads"), job_run.get("successful_runs"), len(runs))
    if got != ("COMPLETED", expected, expected, expected) or doubled:
        t.job_runs_bad += 1
        t.problem(f"JobRun {job_run_id}: (status, payloads, successful, runs) {got}, expected {expected}")


def tally(d: DaemonProcess, work: Work, items: int, receiver: Receiver, t: Trial) -> None:
    with d.client() as c:
        for run_id in work.standalone:
            check_run(d, c, run_id, "run", t)
        for run_id in work.sunk:
            detail = check_run(d, c, run_id, "sink run", t)
            if detail is None or detail["status"] != "completed":
                continue
            t.sink_runs += 1
            if run_id in receiver.by_run:
                t.delivered += 1
            else:
                t.deliveries_lost += 1
                deliveries = get(c, f"/api/v1/workspace/{d.workspace}/deliveries?run={run_id}")
                t.problem(f"sink run {run_id}: no webhook arrived; deliveries {deliveries}")
        if work.job_run is not None:
            check_job_run(d, c, work.job_run, items, t)
    t.duplicate_deliveries = receiver.duplicates


# --------------------------------------------------------------------------------------------
# Processes


def tree(d: DaemonProcess) -> list[psutil.Process]:
    assert d.process is not None
    try:
        return psutil.Process(d.process.pid).children(recursive=True)
    except psutil.Error:
        return []


def strays(state_dir: Path, since: float) -> list[psutil.Process]:
    """Processes whose command line names ``state_dir``, and workers or browsers started since
    ``since`` that lost their parent (reparented to pid 1): e.g. a helper a browser daemonized."""
    found = []
    for p in psutil.process_iter(["cmdline", "ppid", "create_time"]):
        line = " ".join(p.info["cmdline"] or [])
        lost = p.info["ppid"] == 1 and (p.info["create_time"] or 0) >= since
        if str(state_dir) in line or (lost and any(m in line for m in STRAY_MARKS)):
            found.append(p)
    return found


def orphans(killed_tree: list[psutil.Process], state_dir: Path, since: float) -> list[str]:
    """What outlived the trial (after a grace for exits under way), described; then killed, so
    the next trial starts clean."""
    _, alive = psutil.wait_procs(killed_tree, timeout=ORPHAN_GRACE_S)
    left = {p.pid: p for p in [*alive, *strays(state_dir, since)] if p.is_running()}
    described = []
    for p in left.values():
        try:
            described.append(f"pid {p.pid} (parent {p.ppid()}): {' '.join(p.cmdline())[:200]}")
            p.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(list(left.values()), timeout=5)
    return described


# --------------------------------------------------------------------------------------------
# One trial


@contextmanager
def locked(path: str | None) -> Iterator[None]:
    if path is None:
        yield
        return
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def trial(
    session: Session, t: Trial, rng: random.Random, site: PageServer, receiver: Receiver, args: argparse.Namespace
) -> None:
    d = session.daemon(2, f"trial-{t.number:03d}", sinks={"allow_networks": ["127.0.0.0/8"], "first_retry_s": 0.2})
    receiver.reset()
    since = time.time()
    start_daemon(d)
    d.deploy(PROJECT, APIS, {"replication": {"maxConcurrentRequests": 2}})
    with d.client() as c:
        c.post(d.path(PROJECT, "/jobs"), json=job_body(site, rng, args.items, args.pause_max)).raise_for_status()
    bodies: list[dict[str, Any] | None] = [None]
    for k in range(2 * args.runs):
        params = page_params(site, rng, 2000 + k, args.pause_max)
        sink = {"sink": {"type": "webhook", "url": receiver.url}} if k % 2 else {}
        bodies.append({"api": "page", "parameters": params, **sink})
    rng.shuffle(bodies)  # which kind of work is queued first varies from trial to trial
    work = Work()
    submitter = threading.Thread(target=submit, args=(d, bodies, work), daemon=True)
    t0 = time.monotonic()
    submitter.start()
    time.sleep(max(0.0, t0 + t.kill_at_s - time.monotonic()))
    killed_tree = tree(d)
    t.delivered_at_kill = len(receiver.by_run)
    d.kill9()
    t.submitted_at_kill = work.answered
    submitter.join(60)
    t_restart = time.monotonic()
    start_daemon(d)
    if not wait_settled(d, work, receiver, args.phase_timeout):
        t.problem(f"not settled within {args.phase_timeout:g}s of the restart")
    t.recovery_s = round(time.monotonic() - t_restart, 2)
    time.sleep(0.3)  # a late duplicate delivery would show here
    tally(d, work, args.items, receiver, t)
    stop_daemon(d)
    left = orphans(killed_tree, d.state_dir, since)
    t.orphans = len(left)
    for orphan in left:
        t.problem(f"orphan {orphan}")


# --------------------------------------------------------------------------------------------
# Report


COLUMNS = (
    ("#", "number"),
    ("kill at (s)", "kill_at_s"),
    ("POSTs answered before", "submitted_at_kill"),
    ("runs accepted", "accepted"),
    ("lost", "lost"),
    ("interrupted attempts", "interrupted"),
    ("completed twice", "duplicated"),
    ("odd attempts", "odd_attempts"),
    ("JobRuns bad", "job_runs_bad"),
    ("sink runs", "sink_runs"),
    ("delivered before kill", "delivered_at_kill"),
    ("deliveries lost", "deliveries_lost"),
    ("duplicate deliveries", "duplicate_deliveries"),
    ("orphans", "orphans"),
    ("recovery (s)", "recovery_s"),
)
SETTINGS = ("trials", "items", "runs", "kill_within", "pause_max", "receiver_delay")
TOTALS = (
    "accepted",
    "lost",
    "not_completed",
    "interrupted",
    "duplicated",
    "odd_attempts",
    "job_runs",
    "job_runs_bad",
    "sink_runs",
    "delivered",
    "deliveries_lost",
    "duplicate_deliveries",
    "orphans",
)


def report(args: argparse.Namespace, seed: int, trials: list[Trial], machine: dict[str, Any]) -> Report:
    totals = {name: sum(getattr(t, name) for t in trials) for name in TOTALS}
    kills = [t.kill_at_s for t in trials]
    lines = [
        f"### intunedd kill -9 campaign ({len(trials)} trials, seed {seed}, receiver delay {args.receiver_delay:g} s)",
        "",
        "| " + " | ".join(title for title, _ in COLUMNS) + " |",
        "|" + "---:|" * len(COLUMNS),
        *("| " + " | ".join(str(getattr(t, name)) for _, name in COLUMNS) + " |" for t in trials),
        "",
        f"- totals: {json.dumps(totals)}",
        f"- kill moments: {min(kills, default=0):.3f} to {max(kills, default=0):.3f} s after the first submission",
        f"- machine: {machine['cpu']}, {machine['cores']} cores, {machine['ram_gib']} GiB, {machine['os']}, "
        f"Python {machine['python']}, Chromium {machine['chromium']}, source {machine['revision']}",
    ]
    lines += [f"- trial {t.number}: {p}" for t in trials for p in t.problems]
    data = {
        "seed": seed,
        "settings": {k: getattr(args, k) for k in SETTINGS},
        "totals": totals,
        "failed_trials": [t.number for t in trials if t.failed],
        "kill_moments_s": kills,
        "machine": machine,
        "trials": [asdict(t) for t in trials],
    }
    print(json.dumps({k: data[k] for k in ("seed", "settings", "totals", "failed_trials")}, indent=2))
    return Report("\n".join(lines), data, failed=any(t.failed for t in trials) or len(trials) < args.trials)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = parser(__doc__, phase_timeout=90.0)  # the bound on a trial's recovery after the restart
    p.add_argument("--trials", type=int, default=100)
    p.add_argument("--seed", type=int, help="of the campaign's RNG (default: from the clock; printed)")
    p.add_argument("--items", type=int, default=20, help="items of each trial's JobRun (every 4th adds 2)")
    p.add_argument("--runs", type=int, default=6, help="standalone runs, and as many runs with a webhook sink")
    p.add_argument("--kill-within", type=float, default=6.0, help="the kill falls in [0, this] s after submission")
    p.add_argument("--pause-max", type=float, default=0.2, help="each run sleeps up to this long after its page")
    p.add_argument("--lock", help="hold an exclusive flock on this file during each trial")
    p.add_argument(
        "--receiver-delay", type=float, default=0.0, help="the receiver answers each webhook after this long (s)"
    )
    args = p.parse_args(argv)
    if args.trials < 1 or args.items < 1 or args.runs < 0:
        p.error("--trials and --items must be positive, --runs not negative")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    seed = args.seed if args.seed is not None else time.time_ns() % 2**32
    rng = random.Random(seed)

    def campaign(session: Session) -> Report:
        revision = source_revision()
        trials: list[Trial] = []
        log(f"kill -9 campaign: {args.trials} trials, seed {seed}, in {session.state}")
        with PageServer(3000) as site, Receiver(args.receiver_delay) as receiver:
            for number in range(1, args.trials + 1):
                t = Trial(number, round(rng.uniform(0, args.kill_within), 3))
                with locked(args.lock):
                    try:
                        trial(session, t, rng, site, receiver, args)
                    except Exception as e:  # noqa: BLE001 - recorded; the campaign goes on
                        t.error = f"{type(e).__name__}: {e}"[:2000]
                        t.problem(t.error)
                        for d in session.daemons[-1:]:
                            log(f"trial {number} broke: {t.error}\n{d.log_tail()}")
                            stop_daemon(d)
                trials.append(t)
                log(
                    f"trial {number}: kill at {t.kill_at_s:.3f}s, {t.accepted} accepted, {t.lost} lost, "
                    f"{t.duplicated} completed twice, {t.deliveries_lost} deliveries lost, "
                    f"{t.duplicate_deliveries} duplicate deliveries, {t.orphans} orphans"
                )
                if not args.keep_state:
                    shutil.rmtree(session.daemons[-1].state_dir, ignore_errors=True)
        return report(args, seed, trials, machine_info(revision))

    return run(args, "intunedd-kill9-", campaign)


if __name__ == "__main__":
    raise SystemExit(main())
