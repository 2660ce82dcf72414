"""``scrape_http`` (``browser: false``) under trio, against pages served on 127.0.0.1."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest
import trio

from intunedd.collections.http_scrape import MAX_BODY_BYTES, USER_AGENT, scrape_http
from intunedd.collections.outcome import ScrapeOutcome
from intunedd.collections.request import decode_request

from .site import BIG_BYTES, PNG, Site, serve_site

TEST_TIMEOUT_S = 20


@pytest.fixture
def site() -> Iterator[Site]:
    with serve_site() as served:
        yield served


async def _scrape(raw: dict[str, Any], *, timeout_s: float = 10) -> ScrapeOutcome:
    with trio.fail_after(TEST_TIMEOUT_S):
        return await scrape_http(decode_request(raw), timeout_s=timeout_s)


async def test_html_extract_and_custom_id(site: Site) -> None:
    extract = {
        "title": "css:h1",
        "items": {"selector": "xpath://li[@class='item']", "multiple": True},
        "href": {"selector": "css:li a", "attribute": "href"},
        "count": "xpath:count(//li)",
    }
    outcome = await _scrape({"url": f"{site.url}/page", "extract": extract, "custom_id": "c1"})
    response = outcome.response
    assert response.guidance is not None and response.guidance.success and not outcome.timed_out
    assert response.status_code == 200 and response.html is not None and "<table>" in response.html
    assert response.extracted_data == {
        "title": "Kettles & more",
        "items": ["Kettle", "Toaster"],
        "href": "/p/1",
        "count": "2.0",
    }
    assert response.custom_id == "c1" and response.execution_time is not None
    assert site.hits("/pixel.png") == []  # no browser: nothing the page refers to is fetched


async def test_markdown(site: Site) -> None:
    response = (await _scrape({"url": f"{site.url}/page", "format": "markdown"})).response
    assert response.html is None and response.markdown is not None
    assert response.markdown.startswith("# Kettles & more") and "- [Toaster](/p/2)" in response.markdown


async def test_headers_cookies_language_and_user_agent(site: Site) -> None:
    raw = {
        "url": f"{site.url}/echo",
        "headers": {"X-Scrape": "yes"},
        "cookies": {"sid": "abc", "on": True},
        "language": "fr",
    }
    await _scrape(raw)
    [seen] = site.hits("/echo")
    assert seen.headers["x-scrape"] == "yes" and seen.headers["accept-language"] == "fr"
    assert seen.headers["user-agent"] == USER_AGENT
    assert sorted(seen.headers["cookie"].split("; ")) == ["on=true", "sid=abc"]
    await _scrape({"url": f"{site.url}/echo", "headers": {"user-agent": "mine"}})
    assert site.hits("/echo")[-1].headers["user-agent"] == "mine"


@pytest.mark.parametrize(
    ("http_method", "body", "content_type"),
    [
        ({"method": "post", "payload": {"q": "kettle"}}, b'{"q":"kettle"}', "application/json"),
        (
            {"method": "post", "payload": {"q": "a b", "n": 2}, "content_type": "form"},
            b"q=a+b&n=2",
            "application/x-www-form-urlencoded",
        ),
    ],
)
async def test_post_payload_reaches_the_server(
    site: Site, http_method: dict[str, Any], body: bytes, content_type: str
) -> None:
    response = (await _scrape({"url": f"{site.url}/echo", "http_method": http_method})).response
    [seen] = site.hits("/echo")
    assert (seen.method, seen.body, seen.headers["content-type"]) == ("POST", body, content_type)
    assert response.status_code == 200


async def test_post_to_another_url(site: Site) -> None:
    http_method = {"method": "post", "url": f"{site.url}/echo", "payload": [1]}
    await _scrape({"url": f"{site.url}/page", "http_method": http_method})
    assert [seen.method for seen in site.hits("/echo")] == ["POST"] and site.hits("/page") == []


async def test_redirects_are_followed(site: Site) -> None:
    response = (await _scrape({"url": f"{site.url}/redirect", "extract": {"h": "css:h1"}})).response
    assert response.status_code == 200 and response.extracted_data == {"h": "Kettles & more"}


async def test_binary_answer_is_base64(site: Site) -> None:
    response = (await _scrape({"url": f"{site.url}/binary"})).response
    assert response.html is None and response.body_base64 is not None
    assert base64.b64decode(response.body_base64) == PNG and response.content_type == "image/png"


@pytest.mark.parametrize("path", ["/big", "/big-stream"])
async def test_oversized_answer_is_refused(site: Site, path: str) -> None:
    assert BIG_BYTES > MAX_BODY_BYTES
    response = (await _scrape({"url": f"{site.url}{path}"})).response
    assert (
        response.status_code == 502
        and response.message == f"The answer from {site.url}{path} is over {MAX_BODY_BYTES} bytes"
    )


async def test_403_retried_on_block_then_reported(site: Site) -> None:
    outcome = await _scrape({"url": f"{site.url}/forbidden", "retry_on_block": True})
    assert len(site.hits("/forbidden")) == 4 and outcome.retries == 3 and outcome.block_reason == "http_403"
    assert outcome.response.status_code == 403 and outcome.response.message == "Blocked (http_403)"
    once = await _scrape({"url": f"{site.url}/forbidden"})
    assert len(site.hits("/forbidden")) == 5 and once.retries == 0


async def test_captcha_page_is_a_block(site: Site) -> None:
    outcome = await _scrape({"url": f"{site.url}/captcha", "retry_on_block": True})
    assert outcome.block_reason == "captcha:recaptcha" and len(site.hits("/captcha")) == 4
    assert outcome.response.potentially_blocked_by_captcha is True
    assert outcome.response.guidance is not None and outcome.response.guidance.error_type == "blocked"


async def test_timeout_is_distinguishable(site: Site) -> None:
    outcome = await _scrape({"url": f"{site.url}/hang"}, timeout_s=0.5)
    assert outcome.timed_out and outcome.response.status_code == 504


async def test_unreachable_and_invalid_targets_are_failures() -> None:
    refused = await _scrape({"url": "http://127.0.0.1:9/"})
    assert refused.response.status_code == 502 and refused.response.message.startswith(
        "Could not load http://127.0.0.1:9/"
    )
    no_scheme = await _scrape({"url": "example.invalid"})
    assert no_scheme.response.status_code == 502 and not no_scheme.timed_out


async def test_not_found_is_reported_with_its_status(site: Site) -> None:
    response = (await _scrape({"url": f"{site.url}/nowhere"})).response
    assert response.status_code == 404 and response.guidance is not None and not response.guidance.success
    assert response.message == "The target answered HTTP 404"
    assert response.extracted_data is None
