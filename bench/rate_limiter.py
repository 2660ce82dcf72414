"""How precisely the rate limiter paces a queue: a limit of one item per 20 ms (50 items/s) for
about 10 s, on the real clock with the admissions in a real SQLite file.

The consumer does what the queue runner does: ask ``next_start``, sleep until its ``at``, say
``admitted`` (which returns once the admission is committed). With one item per window, the
next ``at`` is the admission's own time plus 20 ms, so each admission's time is read back
exactly from the answer that follows it. Lateness = admission − the ``at`` it waited for: the
sleep's wake-up, the trip to the actor, and whatever the previous commit still held it up.
"""

from __future__ import annotations

import argparse
import random
import time
from datetime import timedelta
from functools import partial
from typing import Any

import trio

from bench.common import (
    Report,
    Session,
    fmt_ms,
    log,
    machine_info,
    machine_table,
    parser,
    run,
    source_revision,
    summarize,
)
from intunedd.actors.bus import run_bus
from intunedd.actors.rate_limiter import run_rate_limiter, sleep_until
from intunedd.actors.store import run_store
from intunedd.clock import SystemClock
from intunedd.policy.rate_limits import Wait, parse_config
from intunedd.store.db import open_db

KEY = "bench"
WARMUP = 20


async def _pace(session: Session, items: int, period_ms: int, timeout_s: float) -> dict[str, Any]:
    clock = SystemClock()
    db = open_db(session.state / "state.db")
    config = parse_config([{"limit": 1, "duration": period_ms}], None, None)
    period = timedelta(milliseconds=period_ms)
    waits: list[Wait] = []
    round_trips: list[float] = []
    cpu0 = time.process_time()
    try:
        with trio.fail_after(timeout_s):
            async with trio.open_nursery() as nursery:
                bus = await nursery.start(partial(run_bus, buffer=100))
                store = await nursery.start(partial(run_store, db, bus.publisher(), clock=clock))
                limiter = await nursery.start(partial(run_rate_limiter, store, clock=clock, rng=random.Random(0)))
                await limiter.configure(KEY, config)
                for _ in range(WARMUP + items + 1):
                    wait = await limiter.next_start(KEY)
                    waits.append(wait)
                    await sleep_until(clock, wait.at)
                    t0 = time.perf_counter()
                    await limiter.admitted(KEY)
                    round_trips.append((time.perf_counter() - t0) * 1000)
                nursery.cancel_scope.cancel()
    finally:
        db.conn.close()
    cpu_s = time.process_time() - cpu0
    measured = waits[WARMUP:]
    # Admission k happened at the next answer's ``at`` minus one period.
    admissions = [following.at - period for following in measured[1:]]
    pairs = zip(admissions, measured[:-1], strict=True)
    lateness = [(admitted - wait.at).total_seconds() * 1000 for admitted, wait in pairs]
    span_s = (admissions[-1] - admissions[0]).total_seconds()
    ideal = [admissions[0] + k * period for k in range(len(admissions))]
    return {
        "items": len(admissions),
        "period_ms": period_ms,
        "waited": sum(1 for w in measured[:-1] if w.reason == "rate_limit"),
        "lateness": summarize(lateness),
        "admitted_round_trip": summarize(round_trips[WARMUP:]),
        "per_s": (len(admissions) - 1) / span_s,
        "target_per_s": 1000 / period_ms,
        "drift_ms": (admissions[-1] - ideal[-1]).total_seconds() * 1000,
        "cpu_ms_per_item": cpu_s * 1000 / (WARMUP + items),
    }


async def _bare_sleeps(items: int, period_ms: int) -> dict[str, float]:
    """The reference: how late trio itself wakes from ``sleep_until``. epoll counts whole
    milliseconds, rounding up, so the sleeps (as the consumer's) are not whole milliseconds long."""
    rng = random.Random(0)
    overshoot = []
    for _ in range(items):
        deadline = trio.current_time() + (period_ms - rng.random()) / 1000
        await trio.sleep_until(deadline)
        overshoot.append((trio.current_time() - deadline) * 1000)
    return summarize(overshoot)


def measure(session: Session, args: argparse.Namespace) -> Report:
    revision = source_revision()
    log(f"reference: {args.items} bare sleeps of {args.period_ms} ms")
    bare = trio.run(_bare_sleeps, args.items, args.period_ms)
    log(f"{args.items} admissions, one per {args.period_ms} ms")
    f = trio.run(_pace, session, args.items, args.period_ms, args.phase_timeout)
    log(f"  lateness {fmt_ms(f['lateness'], 'max')}; {f['per_s']:.2f}/s")
    lines = [
        "| Measurement | Result |",
        "|---|---|",
        f"| Items, limit 1 per {f['period_ms']} ms (target {f['target_per_s']:.0f}/s) | {f['items']} "
        f"({f['waited']} waited for the window) |",
        f"| **Lateness** of each admission after the `at` it was given (aim p99 < 5 ms) "
        f"| **{fmt_ms(f['lateness'], 'max')}** |",
        f"| Reference: how late trio wakes from a bare `sleep_until` | {fmt_ms(bare, 'max')} |",
        f"| `admitted` round trip (actor + SQLite commit) | {fmt_ms(f['admitted_round_trip'], 'max')} |",
        f"| Achieved rate; drift from the ideal schedule over the run | {f['per_s']:.2f}/s; {f['drift_ms']:.0f} ms |",
        f"| CPU per item (limiter, store and consumer, one process) | {f['cpu_ms_per_item']:.2f} ms |",
        "",
        *machine_table(machine_info(revision)),
    ]
    failed = f["lateness"]["p99_ms"] >= args.aim_p99_ms
    return Report("\n".join(lines), {"figures": f, "bare_sleep": bare}, failed=failed)


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__ or "", phase_timeout=120)
    p.add_argument("--items", type=int, default=500)
    p.add_argument("--period-ms", type=int, default=20)
    p.add_argument("--aim-p99-ms", type=float, default=5.0, help="exit 1 if the p99 lateness is not below this")
    args = p.parse_args(argv)
    return run(args, "intunedd-bench-ratelimit-", lambda session: measure(session, args))


if __name__ == "__main__":
    raise SystemExit(main())
