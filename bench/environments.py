"""Per-project environments: deploy time, and the runtime-contract path against the built-in one.

1. Deploy time of an Intuned-style project (beautifulsoup4, pydantic, httpx, Intuned's packages):
   cold (empty uv cache), a new environment from a warm cache, a redeploy with unchanged
   dependencies, and a second project whose dependencies resolve to the same set.
2. The same page-load API (and the same trivial API for latency) through the built-in path
   (intunedd's own modules) and through Intuned's own runtime (its platform contract), in the
   same run: throughput at the pool's concurrency and p50 latency of sequential runs on an idle
   warm pool. Part 2's runtime side needs a Python of 3.12 or newer; without one it is skipped
   and the report says so.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import trio

from bench.common import (
    ECHO_API,
    Report,
    Session,
    fmt_ms,
    log,
    machine_info,
    machine_table,
    parser,
    run,
    source_revision,
    start_daemon,
)
from bench.pages import PageServer, page_title
from bench.throughput import TITLE_API, daemon_latency, daemon_throughput
from intunedd.environments.interpreters import available
from intunedd.harness import DaemonProcess
from tests.intuned_project import intuned_pyproject


def _project(name: str, *extra: str) -> dict[str, str]:
    return {
        "pyproject.toml": intuned_pyproject(name, "httpx", *extra),
        "api/title.py": TITLE_API,
        "api/echo.py": ECHO_API,
    }


def _deploy_s(d: DaemonProcess, name: str, files: dict[str, str]) -> tuple[float, dict[str, Any]]:
    t0 = time.perf_counter()
    answer = d.deploy(name, files, {"replication": {"maxConcurrentRequests": 8}})
    return time.perf_counter() - t0, answer


def deploy_times(session: Session, runtime: bool) -> list[tuple[str, float, dict[str, Any]]]:
    cache = str(session.state / "uv-cache")
    environments = {"intuned_runtime": runtime, "uv_cache_dir": cache}
    first = session.daemon(2, "deploy-cold", environments=environments)
    start_daemon(first)
    rows = [("cold: empty uv cache, new environment", *_deploy_s(first, "p1", _project("p1")))]
    rows.append(("redeploy, dependencies unchanged", *_deploy_s(first, "p1", _project("p1"))))
    rows.append(("another project, same resolved set", *_deploy_s(first, "p2", _project("p2", "six>=0"))))
    second = session.daemon(2, "deploy-warm", environments=environments)
    start_daemon(second)
    rows.append(("new state dir, warm uv cache", *_deploy_s(second, "p1", _project("p1"))))
    return rows


async def path_figures(
    d: DaemonProcess, urls: list[str], titles: list[str], args: argparse.Namespace
) -> dict[str, Any]:
    warm = max(4, 2 * args.concurrency)
    await daemon_throughput(
        d, "p", urls[:warm], titles[:warm], save_trace=False, submitters=1, label="warm-up", timeout_s=300
    )
    main = await daemon_throughput(
        d, "p", urls, titles, save_trace=False, submitters=2, label="throughput", timeout_s=args.phase_timeout
    )
    await daemon_latency(d, "p", 2 * args.concurrency, save_trace=False, gap_s=0.3, label="warm-up", timeout_s=300)
    latency = await daemon_latency(
        d,
        "p",
        args.latency_runs,
        save_trace=False,
        gap_s=args.latency_gap_ms / 1000,
        label="latency",
        timeout_s=args.phase_timeout,
    )
    return {"per_s": main.per_s, "verified": main.verified, "runs": main.runs, "latency": latency.summary()}


def measure(session: Session, args: argparse.Namespace) -> Report:
    revision = source_revision()
    has_312 = any(i.version >= (3, 12) for i in available([]))
    deploys = deploy_times(session, runtime=False)
    for label, seconds, answer in deploys:
        log(f"deploy {label}: {seconds:.2f} s (reused={answer['environmentReused']})")
    paths: dict[str, dict[str, Any]] = {}
    with PageServer(args.runs) as site:
        urls = [site.url(i) for i in range(args.runs)]
        titles = [page_title(i) for i in range(args.runs)]
        for label, runtime in (("built-in (intunedd's modules)", False), ("Intuned's runtime (contract)", True)):
            if runtime and not has_312:
                log("no Python >= 3.12 here: the runtime-contract path is skipped")
                continue
            d = session.daemon(
                args.concurrency,
                f"path-{runtime}",
                environments={"intuned_runtime": runtime, "uv_cache_dir": str(session.state / "uv-cache")},
            )
            start_daemon(d)
            answer = d.deploy("p", _project("p"), {"replication": {"maxConcurrentRequests": args.concurrency}})
            assert answer["environment"]["runtime"] == ("intuned" if runtime else "intunedd"), answer
            log(f"{label}: {args.runs} page loads at concurrency {args.concurrency}, {args.latency_runs} sequential")
            paths[label] = trio.run(path_figures, d, urls, titles, args)
            log(f"  {paths[label]['per_s']:.2f} runs/s, p50 {paths[label]['latency']['p50_ms']:.1f} ms")
    lines = ["| Deploy | Seconds | Environment reused |", "|---|---:|---|"]
    lines += [f"| {label} | {seconds:.2f} | {answer['environmentReused']} |" for label, seconds, answer in deploys]
    lines += ["", "| Path | Page loads/s | Latency (trivial API, idle warm pool) |", "|---|---:|---|"]
    lines += [f"| {label} | {p['per_s']:.2f} | {fmt_ms(p['latency'])} |" for label, p in paths.items()]
    if len(paths) == 2:
        built, runtime = paths.values()
        lines.append(
            f"| **runtime / built-in** | **{runtime['per_s'] / built['per_s']:.2f}×** | "
            f"**p50 {runtime['latency']['p50_ms'] - built['latency']['p50_ms']:+.1f} ms** |"
        )
    else:
        lines.append("| Intuned's runtime | skipped: no Python >= 3.12 on this host | |")
    lines += ["", *machine_table(machine_info(revision))]
    failed = any(p["verified"] != p["runs"] for p in paths.values())
    data = {
        "deploys": [(label, seconds) for label, seconds, _ in deploys],
        "paths": paths,
        "median_deploy_s": statistics.median(s for _, s, _ in deploys),
    }
    return Report("\n".join(lines), data, failed)


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__ or "", phase_timeout=900)
    p.add_argument("--runs", type=int, default=200, help="page loads per path")
    p.add_argument("--concurrency", type=int, default=2, help="pool size")
    p.add_argument("--latency-runs", type=int, default=50)
    p.add_argument("--latency-gap-ms", type=float, default=300.0)
    args = p.parse_args(argv)
    return run(args, "intunedd-bench-env-", lambda session: measure(session, args))


if __name__ == "__main__":
    raise SystemExit(main())
