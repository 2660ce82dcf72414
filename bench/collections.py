#!/usr/bin/env python
"""Collections (the /v1 API) against raw httpx and raw Playwright doing the same pages.

    python -m bench.collections [--requests 1000] [--concurrency 2] [--json out.json]

One collection of ``--requests`` local pages is created and run twice: with ``browser: false``
(fetched by the daemon with httpx) and with ``browser: true`` (a fresh context per request on the
warm pool), each job's html kept as its result. The baselines, in the same run and at the same
concurrency: raw httpx (one AsyncClient, GET and read each page) and raw Playwright (one
browser, a new context per page, goto and read the html). Reported: requests/s of each, and the
collection's figure over its baseline's. The collection's time runs from ``POST …/run`` to the
run seen ``completed`` (polled every 50 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import httpx

from bench.common import (
    CHROMIUM,
    CHROMIUM_ARGS,
    Report,
    Session,
    log,
    machine_info,
    machine_table,
    parser,
    run,
    source_revision,
    start_daemon,
)
from bench.pages import PageServer
from intunedd.harness import DaemonProcess


async def _raw_httpx(urls: list[str], concurrency: int) -> float:
    async with httpx.AsyncClient() as client:
        queue = list(reversed(urls))

        async def worker() -> None:
            while queue:
                response = await client.get(queue.pop())
                assert response.status_code == 200 and response.text

        await asyncio.gather(*(worker() for _ in range(concurrency)))  # warm-up: the connections
        queue = list(reversed(urls))
        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - t0


async def _raw_playwright(urls: list[str], concurrency: int) -> float:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        queue: list[str] = []

        async def worker() -> None:
            while queue:
                url = queue.pop()
                context = await browser.new_context()
                try:
                    page = await context.new_page()
                    await page.goto(url, timeout=30_000)
                    assert await page.content()
                finally:
                    await context.close()

        queue = list(reversed(urls[: 4 * concurrency]))
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        queue = list(reversed(urls))
        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - t0
        await browser.close()
        return elapsed


def _collection(d: DaemonProcess, urls: list[str], browser: bool, timeout_s: float) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {d.key}"}
    with httpx.Client(base_url=d.url, headers=headers, timeout=120) as client:
        requests = [{"url": url, "browser": browser, "custom_id": str(i)} for i, url in enumerate(urls)]
        created = client.post("/v1/async/collections", json={"name": f"bench-{browser}", "requests": requests})
        assert created.status_code == 201, created.text
        collection_id = created.json()["id"]
        t0 = time.perf_counter()
        run_id = client.post(f"/v1/async/collections/{collection_id}/run").json()["run_id"]
        deadline = t0 + timeout_s
        while (got := client.get(f"/v1/async/collections/{collection_id}/runs/{run_id}").json())[
            "status"
        ] != "completed":
            if time.perf_counter() > deadline:
                raise RuntimeError(f"run still {got['status']} after {timeout_s}s")
            time.sleep(0.05)
        elapsed = time.perf_counter() - t0
    return {
        "elapsed_s": elapsed,
        "ok": got["success_requests"],
        "failed": got["failed_requests"] + got["timeout_requests"],
    }


def measure(session: Session, args: argparse.Namespace) -> Report:
    revision = source_revision()
    c = args.concurrency
    figures: dict[str, Any] = {}
    with PageServer(args.requests) as pages:
        urls = [pages.url(i) for i in range(args.requests)]
        d = session.daemon(c, "collections", collections={
            "allowed_networks": ["127.0.0.0/8"], "requests_per_minute": 0, "max_concurrent": c})  # fmt: skip
        start_daemon(d)
        log("warm-up: 20 requests of each kind")
        for browser in (False, True):
            _collection(d, urls[:20], browser, args.phase_timeout)
        for browser in (False, True):
            log(f"collection, browser: {str(browser).lower()}: {args.requests} requests")
            figures[f"collection browser={browser}"] = _collection(d, urls, browser, args.phase_timeout)
        log("raw httpx")
        figures["raw httpx"] = {"elapsed_s": asyncio.run(_raw_httpx(urls, c)), "ok": args.requests}
        log("raw Playwright")
        figures["raw Playwright"] = {"elapsed_s": asyncio.run(_raw_playwright(urls, c)), "ok": args.requests}
    for f in figures.values():
        f["per_s"] = args.requests / f["elapsed_s"]
    lines = [
        f"| {args.requests} local pages, concurrency {c} | Requests/s | Failed | vs its baseline |",
        "|---|---:|---:|---:|",
    ]
    pairs = (("collection browser=False", "`browser: false`", "raw httpx"),
             ("collection browser=True", "`browser: true`", "raw Playwright"))  # fmt: skip
    for label, shown, baseline in pairs:
        f, b = figures[label], figures[baseline]
        ratio = f["per_s"] / b["per_s"]
        lines.append(f"| collection, {shown} | {f['per_s']:.1f} | {f['failed']} | **{ratio:.2f}×** {baseline} |")
        lines.append(f"| {baseline} | {b['per_s']:.1f} | 0 | |")
    lines += ["", *machine_table(machine_info(revision))]
    failed = any(f.get("failed") for f in figures.values())
    return Report("\n".join(lines), figures, failed=failed)


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__ or "", phase_timeout=1800)
    p.add_argument("--requests", type=int, default=1000)
    p.add_argument("--concurrency", type=int, default=2)
    args = p.parse_args(argv)
    return run(args, "intunedd-bench-collections-", lambda session: measure(session, args))


if __name__ == "__main__":
    raise SystemExit(main())
