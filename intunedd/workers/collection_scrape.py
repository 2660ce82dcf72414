"""A collection's ``browser: true`` scrape on the worker: ``Start(function="collection-scrape")``.

No project code runs: the worker's warm browser scrapes the request in a fresh context (a request's
window size needs options only a new context takes) and answers with the ``ScrapeOutcome``. Every
failure of the page is an outcome with a message; only a Start that does not decode fails the attempt.
"""

from __future__ import annotations

from typing import Any

import msgspec
from playwright.async_api import Browser

from intunedd.collections.browser_scrape import context_options, scrape_in_page
from intunedd.collections.job import outcome_result, read_job
from intunedd.workers.protocol import AttemptError, Done, Start


async def scrape(browser: Browser, start: Start, options: dict[str, Any]) -> Done:
    """``options``: the worker's own context options for ``start`` (its proxy, its video)."""
    try:
        job = read_job(start.parameters)
    except msgspec.ValidationError as e:
        message = f"collection-scrape: the job does not decode: {e}"
        return Done(success=False, error=AttemptError("script-unexpected-error", message, retryable=False))
    context = await browser.new_context(**{**options, **context_options(job.request)})
    try:
        outcome = await scrape_in_page(context, job.request, timeout_s=job.timeout_s)
    finally:
        await context.close()
    return Done(success=True, result=outcome_result(outcome))
