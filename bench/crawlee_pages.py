"""Crawlee-Python's PlaywrightCrawler over the benchmark's pages: the baseline a user would glue
together instead of intunedd. Run by ``bench/crawlee_baseline.py`` inside a venv of its own (Crawlee
is not a dependency of intunedd); prints one JSON object.

    python bench/crawlee_pages.py URLS_FILE TITLES_FILE --concurrency N --executable CHROMIUM

A fresh (incognito) context per page, as intunedd and the raw baseline use; retries off. The time
runs from the first handler's start to the last one's end: the browser's start is not counted (as
for the others, which warm up first), nor the first page's load (a fraction of a second in favour
of Crawlee).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

from crawlee import ConcurrencySettings  # type: ignore[import-not-found]
from crawlee.crawlers import PlaywrightCrawler, PlaywrightCrawlingContext  # type: ignore[import-not-found]


async def crawl(urls: list[str], titles: list[str], concurrency: int, executable: str, args: list[str]) -> dict:
    seen: dict[str, str] = {}
    spans: list[tuple[float, float]] = []
    crawler = PlaywrightCrawler(
        concurrency_settings=ConcurrencySettings(
            min_concurrency=concurrency, desired_concurrency=concurrency, max_concurrency=concurrency
        ),
        headless=True,
        browser_type="chromium",
        browser_launch_options={"executable_path": executable, "args": args},
        use_incognito_pages=True,
        max_request_retries=0,
        configure_logging=False,
    )

    @crawler.router.default_handler
    async def handler(context: PlaywrightCrawlingContext) -> None:
        start = time.perf_counter()
        seen[context.request.url] = await context.page.title()
        spans.append((start, time.perf_counter()))

    await crawler.run(urls)
    elapsed = max(end for _, end in spans) - min(start for start, _ in spans)
    wrong = sum(seen.get(url) != title for url, title in zip(urls, titles, strict=True))
    return {"pages": len(seen), "elapsed_s": elapsed, "wrong_titles": wrong}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("urls_file")
    p.add_argument("titles_file")
    p.add_argument("--concurrency", type=int, required=True)
    p.add_argument("--executable", required=True)
    p.add_argument("--arg", action="append", default=[])
    a = p.parse_args()
    urls = json.loads(Path(a.urls_file).read_text())
    titles = json.loads(Path(a.titles_file).read_text())
    print(json.dumps(asyncio.run(crawl(urls, titles, a.concurrency, a.executable, a.arg))))


if __name__ == "__main__":
    main()
