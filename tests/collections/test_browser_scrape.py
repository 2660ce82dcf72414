"""``scrape_in_page`` on real Chromium against pages served on 127.0.0.1.

``scrape_in_page`` is asyncio code (Playwright's async API), so it runs on the Chromium driver of
tests/workers/test_intuned_browser.py: one browser in an asyncio loop on its own thread.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest

from intunedd.collections.browser_scrape import context_options, scrape_in_page
from intunedd.collections.outcome import ScrapeOutcome
from intunedd.collections.request import decode_request

from ..workers.test_intuned_browser import Chromium
from .site import Site, serve_site

pytestmark = pytest.mark.chromium

# /page's script fetches /api/data after the page starts loading: this waits for its answer to be shown.
FETCHED = [{"type": "wait-for-selector", "selector": "css:#fetched:not(:empty)", "time": 5000}]


class ScrapingChromium(Chromium):
    def scrape(self, raw: dict[str, Any], *, timeout_s: float = 10) -> ScrapeOutcome:
        """``raw`` decoded as the API does, scraped in a fresh context as the worker does."""
        request = decode_request({"browser": True, **raw})

        async def run() -> ScrapeOutcome:
            assert self._browser is not None
            context = await self._browser.new_context(**context_options(request))
            try:
                return await scrape_in_page(context, request, timeout_s=timeout_s)
            finally:
                await context.close()

        return self.call(run())


@pytest.fixture(scope="module")
def chromium() -> Iterator[ScrapingChromium]:
    browser = ScrapingChromium()
    try:
        browser.start()
        yield browser
    finally:
        browser.stop()


@pytest.fixture
def site() -> Iterator[Site]:
    with serve_site() as served:
        yield served


def _ok(outcome: ScrapeOutcome) -> None:
    response = outcome.response
    assert response.guidance is not None and response.guidance.success, response.message
    assert response.status_code == 200 and not outcome.timed_out


def test_html_with_status_time_and_custom_id(chromium: ScrapingChromium, site: Site) -> None:
    outcome = chromium.scrape({"url": f"{site.url}/page", "custom_id": "row-1", "actions": FETCHED})
    _ok(outcome)
    response = outcome.response
    assert response.html is not None and "fetched-word" in response.html  # the page's script ran
    assert response.markdown is None and response.custom_id == "row-1" and response.url == f"{site.url}/page"
    assert response.execution_time is not None and response.execution_time > 0
    assert response.content_type == "text/html; charset=utf-8"


def test_markdown(chromium: ScrapingChromium, site: Site) -> None:
    response = chromium.scrape({"url": f"{site.url}/page", "format": "markdown"}).response
    assert response.html is None and response.markdown is not None
    assert "# Kettles & more" in response.markdown
    assert "[Kettle](/p/1)" in response.markdown and "| Product | Price |" in response.markdown


def test_extract_css_and_xpath_single_and_multiple(chromium: ScrapingChromium, site: Site) -> None:
    extract = {
        "title": "css:h1",
        "first_item": "xpath://li[@class='item']",
        "items": {"selector": "css:li.item", "multiple": True},
        "hrefs": {"selector": "xpath://li/a/@href", "multiple": True},
        "first_href": {"selector": "css:li a", "attribute": "href"},
        "missing": "css:.nope",
        "none_of_many": {"selector": "css:.nope", "multiple": True},
    }
    response = chromium.scrape({"url": f"{site.url}/page", "extract": extract}).response
    assert response.extracted_data == {
        "title": "Kettles & more",
        "first_item": "Kettle",
        "items": ["Kettle", "Toaster"],
        "hrefs": ["/p/1", "/p/2"],
        "first_href": "/p/1",
        "missing": None,
        "none_of_many": [],
    }


def test_input_select_click_and_key_press(chromium: ScrapingChromium, site: Site) -> None:
    actions = [
        {"type": "input", "selector": "css:#q", "text": "kettle"},
        {"type": "select", "selector": "xpath://select[@id='size']", "value": "l"},
        {"type": "click", "selector": "#go"},
        {"type": "wait-for-selector", "selector": "css:#out:not(:empty)", "time": 5000},
        {"type": "collect", "extract": {"after_click": "css:#out"}},
        {"type": "click", "selector": "css:#enter"},
        {"type": "key-press", "key": "Enter"},
        {"type": "collect", "extract": {"after_key": "css:#out"}},
        {"type": "click", "selector": "css:.absent", "optional": True},
        {"type": "wait-for-timeout", "time": 10},
    ]
    outcome = chromium.scrape({"url": f"{site.url}/form", "actions": actions})
    _ok(outcome)
    assert outcome.response.extracted_data == {"after_click": ["kettle/l"], "after_key": ["entered"]}


def test_click_waiting_for_navigation(chromium: ScrapingChromium, site: Site) -> None:
    actions = [{"type": "click", "selector": "css:#next", "wait_for_navigation": True}]
    response = chromium.scrape({"url": f"{site.url}/form", "actions": actions, "extract": {"h": "css:h1"}}).response
    assert response.extracted_data == {"h": "Kettles & more"}


def test_failing_action_is_reported_not_raised(chromium: ScrapingChromium, site: Site) -> None:
    actions = [{"type": "wait-for-selector", "selector": "css:.never", "time": 200}]
    response = chromium.scrape({"url": f"{site.url}/form", "actions": actions}).response
    assert response.guidance is not None and not response.guidance.success
    assert response.message.startswith("actions[0] (wait-for-selector) failed")
    assert response.status_code == 200 and response.html is not None


def test_while_stops_when_condition_fails(chromium: ScrapingChromium, site: Site) -> None:
    loop = {
        "type": "while",
        "condition": {"type": "selector-visible", "selector": "css:#more"},
        "actions": [{"type": "click", "selector": "css:#more"}, {"type": "evaluate", "script": "1"}],
        "max_iterations": 10,
    }
    response = chromium.scrape({"url": f"{site.url}/more", "actions": [loop], "extract": {"n": "css:#list"}}).response
    assert response.evaluate_results == [1, 1, 1]  # the button hides after the third click
    assert response.extracted_data == {"n": "item 0 item 1 item 2 item 3"}


def test_while_bounded_by_max_iterations_and_collect_accumulates(chromium: ScrapingChromium, site: Site) -> None:
    loop = {
        "type": "while",
        "condition": {"type": "selector-invisible", "selector": "css:#never-there-so-always-invisible"},
        "actions": [
            {"type": "collect", "extract": {"items": {"selector": "css:#list li", "multiple": True}, "h": "css:h1"}},
            {"type": "click", "selector": "css:#more", "optional": True},
        ],
        "max_iterations": 2,
    }
    response = chromium.scrape({"url": f"{site.url}/more", "actions": [loop]}).response
    assert response.extracted_data == {"items": ["item 0", "item 0", "item 1"], "h": [None, None]}


def test_evaluate_results(chromium: ScrapingChromium, site: Site) -> None:
    actions = [
        {"type": "evaluate", "script": "document.title"},
        {"type": "evaluate", "script": "() => ({n: document.querySelectorAll('li').length, ok: true})"},
    ]
    response = chromium.scrape({"url": f"{site.url}/page", "actions": actions}).response
    assert response.evaluate_results == ["Shop", {"n": 2, "ok": True}]


def test_evaluate_timeout_is_an_action_failure(chromium: ScrapingChromium, site: Site) -> None:
    actions = [{"type": "evaluate", "script": "() => new Promise(() => {})", "timeout": 200}]
    outcome = chromium.scrape({"url": f"{site.url}/page", "actions": actions})
    assert outcome.response.message == "actions[0] (evaluate) timed out after 0.2 s" and not outcome.timed_out


def test_screenshot_is_a_png(chromium: ScrapingChromium, site: Site) -> None:
    response = chromium.scrape({"url": f"{site.url}/page", "screenshot": True}).response
    assert response.screenshot is not None
    assert base64.b64decode(response.screenshot).startswith(b"\x89PNG\r\n\x1a\n")


def test_block_resources_blocks_images(chromium: ScrapingChromium, site: Site) -> None:
    _ok(chromium.scrape({"url": f"{site.url}/page", "block_resources": ["image", "stylesheet"], "actions": FETCHED}))
    assert site.hits("/pixel.png") == [] and site.hits("/style.css") == []
    assert len(site.hits("/api/data")) == 1


def test_block_requests_by_url_substring(chromium: ScrapingChromium, site: Site) -> None:
    _ok(chromium.scrape({"url": f"{site.url}/page", "block_requests": ["TRACKER"]}))
    assert site.hits("/tracker/pixel.png") == [] and len(site.hits("/pixel.png")) == 1


def test_network_capture_with_bodies(chromium: ScrapingChromium, site: Site) -> None:
    capture = {"resource_types": ["fetch", "xhr"], "url_pattern": "*/api/*", "listen_after_load_ms": 50}
    response = chromium.scrape({"url": f"{site.url}/page", "network_capture": capture, "actions": FETCHED}).response
    assert response.network_requests == [
        {
            "url": f"{site.url}/api/data",
            "method": "GET",
            "status": 200,
            "resource_type": "fetch",
            "content_type": "application/json",
            "body_truncated": False,
            "body": '{"word": "fetched-word"}',
        }
    ]


def test_network_capture_truncates_bodies(chromium: ScrapingChromium, site: Site) -> None:
    capture = {"url_pattern": "*/api/big"}
    fetched = [{"type": "wait-for-selector", "selector": "css:body#done", "time": 5000, "state": "attached"}]
    response = chromium.scrape(
        {"url": f"{site.url}/fetch-big", "network_capture": capture, "actions": fetched}
    ).response
    assert response.network_requests is not None
    [entry] = [entry for entry in response.network_requests if entry["url"].endswith("/api/big")]
    assert entry["body_truncated"] is True and entry["body"] == "é" * (64 * 1024 // 2)
    assert [e["resource_type"] for e in response.network_requests] == ["document", "fetch"]


def test_post_payload_reaches_the_server(chromium: ScrapingChromium, site: Site) -> None:
    json_post = {"method": "post", "payload": {"q": "kettle", "n": 2}}
    response = chromium.scrape({"url": f"{site.url}/echo", "http_method": json_post, "extract": {"e": "css:#echo"}})
    echoed = json.loads(response.response.extracted_data["e"])  # type: ignore[index]
    assert echoed["method"] == "POST" and json.loads(echoed["body"]) == {"q": "kettle", "n": 2}
    assert echoed["headers"]["content-type"] == "application/json"
    form_post = {"method": "post", "payload": {"q": "a b"}, "content_type": "form"}
    chromium.scrape({"url": f"{site.url}/echo", "http_method": form_post})
    last = site.hits("/echo")[-1]
    assert (last.method, last.body) == ("POST", b"q=a+b")
    assert last.headers["content-type"] == "application/x-www-form-urlencoded"


def test_headers_cookies_and_language_reach_the_server(chromium: ScrapingChromium, site: Site) -> None:
    raw = {
        "url": f"{site.url}/page",
        "headers": {"X-Scrape": "yes"},
        "cookies": {"sid": "abc", "n": 3},
        "language": "es-AR",
    }
    _ok(chromium.scrape(raw))
    [document] = site.hits("/page")
    assert document.headers["x-scrape"] == "yes" and document.headers["accept-language"] == "es-AR"
    assert sorted(document.headers["cookie"].split("; ")) == ["n=3", "sid=abc"]


@pytest.mark.parametrize(("window_size", "width"), [("", 1920), ("desktop", 1920), ("mobile", 390)])
def test_window_size(chromium: ScrapingChromium, site: Site, window_size: str, width: int) -> None:
    actions = [{"type": "evaluate", "script": "screen.width"}]  # mobile lays a page without a viewport tag out at 980
    response = chromium.scrape({"url": f"{site.url}/page", "window_size": window_size, "actions": actions}).response
    assert response.evaluate_results == [width]


def test_403_retried_on_block_then_reported(chromium: ScrapingChromium, site: Site) -> None:
    outcome = chromium.scrape({"url": f"{site.url}/forbidden", "retry_on_block": True})
    assert len(site.hits("/forbidden")) == 4 and outcome.retries == 3 and outcome.block_reason == "http_403"
    response = outcome.response
    assert response.status_code == 403 and response.guidance is not None and not response.guidance.success
    assert response.message == "Blocked (http_403)"


def test_403_without_retry_on_block_is_tried_once(chromium: ScrapingChromium, site: Site) -> None:
    outcome = chromium.scrape({"url": f"{site.url}/forbidden"})
    assert len(site.hits("/forbidden")) == 1 and outcome.retries == 0 and outcome.response.status_code == 403


def test_captcha_marker_is_a_block(chromium: ScrapingChromium, site: Site) -> None:
    outcome = chromium.scrape({"url": f"{site.url}/captcha", "retry_on_block": True})
    assert outcome.block_reason == "captcha:recaptcha" and len(site.hits("/captcha")) == 4
    assert outcome.response.potentially_blocked_by_captcha is True and outcome.response.status_code == 200


def test_timeout_is_distinguishable(chromium: ScrapingChromium, site: Site) -> None:
    outcome = chromium.scrape({"url": f"{site.url}/hang"}, timeout_s=1)
    assert outcome.timed_out and outcome.response.status_code == 504
    assert outcome.response.message == "Timed out after 1 s"


def test_unreachable_target_is_a_failure_not_an_exception(chromium: ScrapingChromium) -> None:
    outcome = chromium.scrape({"url": "http://127.0.0.1:9/"})
    assert not outcome.timed_out and outcome.response.status_code == 502
    assert outcome.response.message.startswith("Could not load http://127.0.0.1:9/")
