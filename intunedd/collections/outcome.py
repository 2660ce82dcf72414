"""How one scrape ended: the ``ScrapeResponse`` to answer with, and what the run's counters need.

Both the browser and the HTTP paths end here, so ``format``, top-level ``extract``, block detection and
the ``guidance`` verdict are worked out once. Status codes for failures without an HTTP answer of their
own: 502 when the target could not be reached (or answered too much), 504 for a timeout.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from .blocking import block_reason, captcha_provider
from .extract import ExtractInvalid, extract_fields
from .markdown import to_markdown
from .request import Guidance, ScrapeRequest, ScrapeResponse

UNREACHABLE = 502
TIMED_OUT = 504


@dataclass(frozen=True)
class ScrapeOutcome:
    """``timed_out`` counts toward a run's ``timeout_requests``; ``retries`` and ``block_reason`` are the
    job's ``retries_attempted`` and ``block_reason``."""

    response: ScrapeResponse
    timed_out: bool = False
    retries: int = 0
    block_reason: str | None = None


@dataclass
class Fetched:
    """What a path got from the target before the response is built."""

    status: int | None
    html: str | None
    content_type: str | None = None
    body_base64: str | None = None  # a binary answer, instead of html
    screenshot: str | None = None
    extracted: dict[str, Any] | None = None  # what ``collect`` actions gathered
    evaluate_results: list[Any] | None = None
    network_requests: list[dict[str, Any]] | None = None
    error: str | None = None  # why the scrape failed after the target answered (an action, say)
    error_type: str = "action_failed"


def elapsed_since(started: float) -> float:
    """Seconds since ``started`` (``time.perf_counter``), as ``executionTime`` reports them."""
    return round(time.perf_counter() - started, 3)


def finish(request: ScrapeRequest, fetched: Fetched, *, started: float) -> ScrapeOutcome:
    """The outcome for what the target answered: formatted, extracted and judged."""
    error, error_type = fetched.error, fetched.error_type
    extracted = fetched.extracted
    if request.extract and fetched.html is not None and error is None:
        try:
            extracted = {**(extracted or {}), **extract_fields(fetched.html, request.extract)}
        except ExtractInvalid as e:
            error, error_type = str(e), "invalid_request"
    blocked = block_reason(fetched.status, fetched.html)
    success = error is None and blocked is None and fetched.status is not None and fetched.status < 400
    if error is not None:
        message = error
    elif blocked is not None:
        message, error_type = f"Blocked ({blocked})", "blocked"
    elif not success:
        message, error_type = f"The target answered HTTP {fetched.status}", "http_error"
    else:
        message = "Request processed successfully."
    html = fetched.html if request.format == "html" else None
    response = ScrapeResponse(
        url=request.url,
        custom_id=request.custom_id,
        html=html,
        markdown=to_markdown(fetched.html) if request.format == "markdown" and fetched.html is not None else None,
        status_code=fetched.status,
        message=message,
        screenshot=fetched.screenshot,
        execution_time=elapsed_since(started),
        extracted_data=extracted,
        evaluate_results=fetched.evaluate_results,
        network_requests=fetched.network_requests,
        potentially_blocked_by_captcha=captcha_provider(fetched.html) is not None,
        guidance=Guidance(success=success, error_type=None if success else error_type, credits_charged=0),
        content_type=fetched.content_type,
        body_base64=fetched.body_base64,
    )
    return ScrapeOutcome(response=response, block_reason=blocked)


def failed(
    request: ScrapeRequest,
    message: str,
    *,
    started: float | None = None,
    status: int = UNREACHABLE,
    timed_out: bool = False,
    error_type: str = "unreachable",
) -> ScrapeOutcome:
    """The outcome of a scrape that got no usable answer; without ``started``, no ``executionTime``."""
    response = ScrapeResponse(
        url=request.url,
        custom_id=request.custom_id,
        status_code=status,
        message=message,
        execution_time=None if started is None else elapsed_since(started),
        guidance=Guidance(success=False, error_type="timeout" if timed_out else error_type, credits_charged=0),
    )
    return ScrapeOutcome(response=response, timed_out=timed_out)


def timed_out(request: ScrapeRequest, timeout_s: float, *, started: float) -> ScrapeOutcome:
    return failed(request, f"Timed out after {timeout_s:g} s", started=started, status=TIMED_OUT, timed_out=True)
