"""intunedd's own ``intuned_browser`` helpers, on real Chromium against pages served here.

The helpers are asyncio code (Playwright's async API) while these tests run under pytest-trio, so one
Chromium lives in an asyncio loop on its own thread and each test hands it coroutines to run.
"""

from __future__ import annotations

import ast
import asyncio
import http.server
import importlib
import importlib.metadata
import socket
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Awaitable, Callable, Iterator
from datetime import date, datetime
from pathlib import Path
from textwrap import dedent
from typing import Any, TypeVar

import pytest
import trio
from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.provisional import urls
from playwright.async_api import Browser, Page, Playwright, async_playwright
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from intunedd.workers.attempt import run_attempt
from intunedd.workers.browser import find_browser
from intunedd.workers.child import CHROMIUM_ARGS
from intunedd.workers.process import Lease, Verdict, spawn_worker
from intunedd.workers.protocol import RunContext, Start, WorkerConfig
from intunedd.workers.shim import intuned_browser
from intunedd.workers.shim.intuned_browser import (
    Attachment,
    NotProvidedError,
    ValidationError,
    click_until_exhausted,
    download_file,
    extract_markdown,
    filter_empty_values,
    go_to_url,
    process_date,
    resolve_url,
    sanitize_html,
    save_file_to_s3,
    scroll_to_load_content,
    upload_file_to_s3,
    validate_data_using_schema,
    wait_for_dom_settled,
    wait_for_network_settled,
)
from intunedd.workers.shim.intuned_browser.ai import extract_structured_data, is_page_loaded
from intunedd.workers.shim.intuned_browser.requirements import RUNTIME_REQUIREMENTS

from ..conftest import serving

T = TypeVar("T")

PACKAGE_DIR = Path(intuned_browser.__file__).parent
REPO = Path(__file__).parents[2]
SCENARIO_TIMEOUT_S = 20
SPAWN_TIMEOUT_S = 30

ARTICLE = """<html><head><title>Article</title><style>h1 { color: red }</style></head><body>
<h1>Books</h1>
<p>Some <b>bold</b> text and <a href="/next">a link</a>.</p>
<ul><li>One</li><li>Two</li></ul>
<script>document.title = "changed";</script>
<div id="card"><h2>Card</h2><p>Inside</p></div>
</body></html>"""

# Ten 200 px rows; reaching the bottom adds ten more, up to fifty.
INFINITE_SCROLL = """<html><body style="margin: 0"><div id="list"></div><script>
const list = document.getElementById("list");
function add(n) {
    for (let i = 0; i < n; i++) {
        const row = document.createElement("div");
        row.className = "row";
        row.style.height = "200px";
        row.textContent = "row " + list.children.length;
        list.appendChild(row);
    }
}
add(10);
window.addEventListener("scroll", () => {
    const bottom = window.innerHeight + window.scrollY >= document.documentElement.scrollHeight - 10;
    if (bottom && list.children.length < 50) add(10);
});
</script></body></html>"""

# "#more" fetches, then adds three rows, and hides itself after its fourth click; "#stuck" adds one
# row on each of its first two clicks and nothing after.
LOAD_MORE = """<html><body><ul id="items"></ul>
<button id="more">Load more</button><button id="stuck">Stuck</button><script>
const items = document.getElementById("items");
function add(n) {
    for (let i = 0; i < n; i++) {
        const item = document.createElement("li");
        item.textContent = "item";
        items.appendChild(item);
    }
}
add(3);
let more = 0;
document.getElementById("more").addEventListener("click", async () => {
    await (await fetch("/api/rows")).text();
    add(3);
    if (++more === 4) document.getElementById("more").style.display = "none";
});
let stuck = 0;
document.getElementById("stuck").addEventListener("click", () => { if (++stuck <= 2) add(1); });
</script></body></html>"""

# "#fetch" shows a slow answer; "#grow" adds five items 100 ms apart; "#churn" never stops changing.
SETTLING = """<html><body><div id="out"></div><ul id="list"></ul>
<button id="fetch">Fetch</button><button id="grow">Grow</button><button id="churn">Churn</button><script>
const out = document.getElementById("out");
const list = document.getElementById("list");
document.getElementById("fetch").addEventListener("click", () => {
    fetch("/api/slow").then((r) => r.text()).then((text) => { out.textContent = text; });
});
document.getElementById("grow").addEventListener("click", () => {
    let n = 0;
    const timer = setInterval(() => {
        list.appendChild(document.createElement("li"));
        if (++n === 5) clearInterval(timer);
    }, 100);
});
document.getElementById("churn").addEventListener("click", () => {
    setInterval(() => { out.textContent = String(Math.random()); }, 50);
});
</script></body></html>"""

FILES = '<html><body><a id="report" href="/files/report.csv">Report</a></body></html>'
REPORT = b"name,value\nalpha,1\n"
SLOW_ANSWER = "slow answer"


# --- the site and the browser ----------------------------------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    pages = {
        "/article.html": ARTICLE,
        "/scroll.html": INFINITE_SCROLL,
        "/more.html": LOAD_MORE,
        "/settling.html": SETTLING,
        "/files.html": FILES,
    }

    def do_GET(self) -> None:
        if self.path in self.pages:
            self._send(self.pages[self.path].encode(), "text/html")
        elif self.path == "/api/rows":
            self._send(b"[]", "application/json")
        elif self.path == "/api/slow":
            time.sleep(0.5)  # the server being slow is what these tests are about
            self._send(SLOW_ANSWER.encode(), "text/plain")
        elif self.path == "/hang":
            time.sleep(2)
            self._send(b"<html><body>late</body></html>", "text/html")
        elif self.path == "/files/report.csv":
            self._send(REPORT, "text/csv", {"Content-Disposition": 'attachment; filename="report.csv"'})
        else:
            self.send_error(404)

    def _send(self, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    with serving(_Handler) as url:
        yield url


class Chromium:
    """One Chromium driven from an asyncio loop on its own thread."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._playwright: Playwright | None = None
        self._browser: Browser | None = None

    def call(self, coroutine: Awaitable[T]) -> T:
        async def wrapped() -> T:
            return await coroutine

        future = asyncio.run_coroutine_threadsafe(wrapped(), self._loop)
        try:
            return future.result(SCENARIO_TIMEOUT_S)
        finally:
            future.cancel()

    def on_page(self, scenario: Callable[[Page], Awaitable[T]]) -> T:
        """``scenario`` run with a page of its own, in a fresh context."""

        async def run() -> T:
            assert self._browser is not None
            context = await self._browser.new_context()
            try:
                return await scenario(await context.new_page())
            finally:
                await context.close()

        return self.call(run())

    def start(self) -> None:
        async def launch() -> None:
            self._playwright = await async_playwright().start()
            executable = find_browser("auto", True)
            self._browser = await self._playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)

        self.call(launch())

    def stop(self) -> None:
        async def close() -> None:
            if self._browser is not None:
                await self._browser.close()
            if self._playwright is not None:
                await self._playwright.stop()

        try:
            self.call(close())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(SCENARIO_TIMEOUT_S)
            self._loop.close()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Chromium]:
    browser = Chromium()
    try:
        browser.start()
        yield browser
    finally:
        browser.stop()


def _closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}/"


# --- navigation and reading ------------------------------------------------------------------


@pytest.mark.chromium
def test_go_to_url_then_extract_markdown(chromium: Chromium, site: str) -> None:
    async def scenario(page: Page) -> tuple[str, str]:
        await go_to_url(page, f"{site}/article.html")
        return await extract_markdown(page), await extract_markdown(page.locator("#card"))

    whole, card = chromium.on_page(scenario)
    assert whole == "# Books\n\nSome **bold** text and [a link](/next).\n\n- One\n- Two\n\n## Card\n\nInside"
    assert card == "## Card\n\nInside"


@pytest.mark.chromium
def test_go_to_url_failures(chromium: Chromium, site: str) -> None:
    async def scenario(page: Page) -> None:
        closed = _closed_port_url()
        tries: list[str] = []
        page.on("request", lambda request: tries.append(request.url))
        with pytest.raises(PlaywrightError, match="ERR_CONNECTION_REFUSED"):
            await go_to_url(page, closed, retries=2)
        assert tries == [closed, closed]
        # A timeout is tolerated unless asked otherwise: the automation goes on with the page as it is.
        await go_to_url(page, f"{site}/hang", timeout_s=1)
        with pytest.raises(PlaywrightTimeoutError):
            await go_to_url(page, f"{site}/hang", timeout_s=1, throw_on_timeout=True)
        with pytest.raises(NotProvidedError, match="go_to_url.*hosted AI"):
            await go_to_url(page, f"{site}/article.html", wait_for_load_using_ai=True)

    chromium.on_page(scenario)


@pytest.mark.chromium
def test_resolve_url_against_the_page(chromium: Chromium, site: str) -> None:
    async def scenario(page: Page) -> tuple[str, str]:
        await page.goto(f"{site}/article.html")
        return await resolve_url(url="a b/c", page=page), await resolve_url(url=page.locator("a"))

    assert chromium.on_page(scenario) == (f"{site}/a%20b/c", f"{site}/next")


# --- loading more ------------------------------------------------------------------------------


@pytest.mark.chromium
def test_scroll_to_load_content(chromium: Chromium, site: str) -> None:
    async def scenario(page: Page) -> tuple[int, int, int]:
        await page.goto(f"{site}/scroll.html")
        await scroll_to_load_content(page, max_scrolls=2)
        bounded = await page.locator(".row").count()
        progress: list[None] = []
        await scroll_to_load_content(page, on_scroll_progress=lambda: progress.append(None))
        return bounded, await page.locator(".row").count(), len(progress)

    bounded, everything, scrolls = chromium.on_page(scenario)
    assert bounded == 30
    assert everything == 50
    assert scrolls == 3  # two that loaded rows, one that found no more


@pytest.mark.chromium
def test_click_until_exhausted(chromium: Chromium, site: str) -> None:
    async def scenario(page: Page) -> tuple[int, int, int, int]:
        await page.goto(f"{site}/more.html")
        clicks: list[None] = []
        await click_until_exhausted(page, page.locator("#more"), lambda: clicks.append(None), click_delay=0.05)
        until_hidden = (len(clicks), await page.locator("li").count())
        clicks.clear()
        await click_until_exhausted(
            page,
            page.locator("#stuck"),
            lambda: clicks.append(None),
            container_locator=page.locator("#items"),
            max_clicks=10,
            click_delay=0.05,
        )
        return (*until_hidden, len(clicks), await page.locator("li").count())

    assert chromium.on_page(scenario) == (4, 15, 3, 17)


# --- waiting for the page to settle ------------------------------------------------------------


@pytest.mark.chromium
def test_wait_for_network_settled_as_call_and_decorator(chromium: Chromium, site: str) -> None:
    @wait_for_network_settled
    async def fetch(page: Page) -> str:
        await page.click("#fetch")
        return "clicked"

    @wait_for_network_settled(timeout_s=10, max_inflight_requests=0)
    async def fetch_with_options(*, page: Page) -> None:
        await page.click("#fetch")

    async def scenario(page: Page) -> list[str | None]:
        seen = []
        await page.goto(f"{site}/settling.html")
        await page.click("#fetch")
        seen.append(await page.text_content("#out"))  # without waiting, the answer is not there yet
        for action in (
            lambda: fetch(page),
            lambda: fetch_with_options(page=page),
            lambda: wait_for_network_settled(page=page, func=lambda: page.click("#fetch"), timeout_s=10),
        ):
            await page.reload()
            seen.append(await action())
            seen.append(await page.text_content("#out"))
        return seen

    assert chromium.on_page(scenario) == ["", "clicked", SLOW_ANSWER, None, SLOW_ANSWER, None, SLOW_ANSWER]


@pytest.mark.chromium
def test_wait_for_dom_settled_as_call_and_decorator(chromium: Chromium, site: str) -> None:
    @wait_for_dom_settled
    async def grow(page: Page) -> None:
        await page.click("#grow")

    @wait_for_dom_settled(settle_duration=0.3, timeout_s=10)
    async def grow_with_options(source: Page) -> None:
        await source.click("#grow")

    async def scenario(page: Page) -> list[object]:
        seen: list[object] = []
        await page.goto(f"{site}/settling.html")
        seen.append(await wait_for_dom_settled(page))
        await page.click("#grow")
        seen.append(await page.locator("li").count())  # without waiting, the list is still growing
        actions: list[Callable[[], Awaitable[object]]] = [
            lambda: grow(page),
            lambda: grow_with_options(page),
            lambda: wait_for_dom_settled(source=page.locator("#list"), func=lambda: page.click("#grow")),
        ]
        for action in actions:
            await page.reload()
            await action()
            seen.append(await page.locator("li").count())
        await page.click("#churn")
        with pytest.raises(TimeoutError):
            await wait_for_dom_settled(page, settle_duration=0.3, timeout_s=1)
        return seen

    seen = chromium.on_page(scenario)
    assert seen[0] is True
    assert isinstance(seen[1], int) and seen[1] < 5
    assert seen[2:] == [5, 5, 5]


# --- files -------------------------------------------------------------------------------------


@pytest.mark.chromium
def test_download_file_by_url_locator_and_callback(chromium: Chromium, site: str) -> None:
    async def scenario(page: Page) -> list[tuple[str, bytes]]:
        await page.goto(f"{site}/files.html")
        got = []
        for trigger in ("files/report.csv", page.locator("#report"), lambda p: p.click("#report")):
            download = await download_file(page, trigger)
            got.append((download.suggested_filename, Path(await download.path()).read_bytes()))
        with pytest.raises(PlaywrightTimeoutError):
            await download_file(page, "/article.html", timeout_s=1)  # a page, not a file
        # A URL that fails to load fails at once, not after waiting out the download's timeout.
        with pytest.raises(PlaywrightError, match="ERR_CONNECTION_REFUSED"):
            async with asyncio.timeout(5):
                await download_file(page, _closed_port_url(), timeout_s=15)
        with pytest.raises(NotProvidedError, match="save_file_to_s3"):
            await save_file_to_s3(page, "files/report.csv")
        return got

    assert chromium.on_page(scenario) == [("report.csv", REPORT)] * 3


async def test_hosted_helpers_name_themselves() -> None:
    for name, call in (
        ("extract_structured_data", lambda: extract_structured_data(data_schema={})),
        ("is_page_loaded", lambda: is_page_loaded(None)),  # type: ignore[arg-type]
        ("upload_file_to_s3", lambda: upload_file_to_s3(b"data")),
    ):
        with pytest.raises(NotProvidedError, match=f"^{name} needs Intuned's hosted"):
            await call()


# --- pure helpers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("22/11/2024", date(2024, 11, 22)),
        ("01/17/2025", date(2025, 1, 17)),
        ("8/16/2019", date(2019, 8, 16)),
        ("22/11/2024 21:19:05", date(2024, 11, 22)),
        ("12/09/2024 9:00 AM", date(2024, 12, 9)),
        ("12/19/2024 - 2:00 PM", date(2024, 12, 19)),
        ("10/23/2024 12:06 PM CST", date(2024, 10, 23)),
        ("01/17/2025 3:00:00 PM CT", date(2025, 1, 17)),
        ("5 Dec 2024 8:00 AM PST", date(2024, 12, 5)),
        ("November 14, 2024", date(2024, 11, 14)),
        ("January 31, 2025, 5:00 pm", date(2025, 1, 31)),
        ("invalid date", None),
        ("May", None),  # no day or year: not a date, though dateutil would complete it
        ("", None),
        ("1" * 1000, None),
    ],
)
def test_process_date_examples(text: str, expected: date | None) -> None:
    result = process_date(text)
    if expected is None:
        assert result is None
    else:
        assert result == datetime(expected.year, expected.month, expected.day)


@given(
    st.dates(min_value=date(1900, 1, 1), max_value=date(2200, 12, 31)),
    st.sampled_from(["%d %b %Y", "%B %d, %Y", "%Y-%m-%d", "%m/%d/%Y %I:%M %p", "%d %B %Y %H:%M:%S"]),
)
def test_process_date_reads_what_strftime_writes(day: date, layout: str) -> None:
    assert process_date(datetime(day.year, day.month, day.day, 13, 45).strftime(layout)) == datetime(
        day.year, day.month, day.day
    )


@given(urls(), urls())
def test_resolve_url_of_an_absolute_url_is_itself(url: str, base: str) -> None:
    assert asyncio.run(resolve_url(url=url, base_url=base)) == url


@given(st.lists(st.text("abc é/?", min_size=1, max_size=5), max_size=4))
def test_resolve_url_of_a_relative_path_stays_under_its_base(segments: list[str]) -> None:
    relative = "/".join(["page", *(s.strip("/?") or "x" for s in segments)])
    resolved = asyncio.run(resolve_url(url=relative, base_url="https://example.com/dir/"))
    assert resolved.startswith("https://example.com/dir/")
    assert " " not in resolved and resolved.isascii()
    assert asyncio.run(resolve_url(url=resolved, base_url="https://other.example/")) == resolved


def test_sanitize_html_example() -> None:
    long_value = "y" * 600
    html = f"""<div class="a {long_value}" data-x="{long_value}" id="keep">
        <!-- note --><script>alert(1)</script><style>p {{}}</style>
        <p>  Hello
           <b>world</b> </p><span> </span><img src="x.png"><svg><path/></svg><pre>  kept  </pre></div>"""
    assert sanitize_html(html) == (
        f'<div class="a {long_value}" id="keep"><p> Hello <b>world</b></p><img src="x.png"/><pre>  kept  </pre></div>'
    )
    assert "<!-- note -->" in sanitize_html(html, remove_comments=False)
    assert "<span>" in sanitize_html(html, remove_empty_tags=False)


_TAGS = st.sampled_from(["div", "p", "span", "b", "script", "style", "svg", "img", "ul", "li"])
_HTML = st.recursive(
    st.text(" \nab<&>", max_size=8).map(lambda s: s.replace("<", "&lt;").replace("&", "&amp;")) | st.just("<!-- c -->"),
    lambda inner: st.builds(
        lambda tag, attribute, children: f'<{tag} title="{attribute}">{"".join(children)}</{tag}>',
        _TAGS,
        st.text("xy", max_size=12),
        st.lists(inner, max_size=3),
    ),
    max_leaves=12,
)


@given(_HTML)
@example('<div title="">&amp;lt; <!-- c --> &amp;lt;</div>')  # a removed comment left two strings side by side
def test_sanitize_html_drops_what_it_should_and_is_stable(html: str) -> None:
    clean = sanitize_html(html, max_attribute_length=8)
    for unwanted in ("<script", "<style", "<svg", "<!--", 'title="xxxxxxxxx'):
        assert unwanted not in clean
    assert sanitize_html(clean, max_attribute_length=8) == clean


def test_validate_data_using_schema() -> None:
    attachment = {"file_name": "a.pdf", "key": "docs/a.pdf", "suggested_file_name": "A.pdf", "bucket": None}
    schema = {
        "type": "object",
        "required": ["file", "name"],
        "properties": {"file": {"type": "attachment"}, "name": {"type": "string", "minLength": 1}},
    }
    validate_data_using_schema({"file": attachment, "name": "n"}, schema)
    validate_data_using_schema({"file": Attachment.from_dict(attachment), "name": "n"}, schema)
    validate_data_using_schema([{"file": attachment, "name": "n"}], {"type": "array", "items": schema})
    bad = {"file": {"file_name": "a.pdf"}, "name": ""}
    with pytest.raises(ValidationError) as caught:
        validate_data_using_schema(bad, schema)
    assert caught.value.data is bad
    assert "$['file']: " in caught.value.message and "$['name']: " in caught.value.message
    with pytest.raises(ValidationError, match="email"):
        validate_data_using_schema({"email": "nobody"}, {"properties": {"email": {"format": "email"}}})
    with pytest.raises(ValidationError, match="Invalid schema"):
        validate_data_using_schema({}, {"type": "no-such-type"})


@given(st.dictionaries(st.text(max_size=5), st.integers()), st.text(max_size=5))
def test_validate_data_using_schema_names_the_failing_key(data: dict[str, int], key: str) -> None:
    schema = {"type": "object", "additionalProperties": {"type": "integer"}}
    validate_data_using_schema(data, schema)
    with pytest.raises(ValidationError) as caught:
        validate_data_using_schema({**data, key: "not a number"}, schema)
    assert f"$[{key!r}]: 'not a number' is not of type 'integer'" in caught.value.message


_JSON = st.recursive(
    st.none() | st.text(" a", max_size=3) | st.integers(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text("ab", max_size=2), inner, max_size=4),
    max_leaves=15,
)


def _children(value: object) -> list[object]:
    if isinstance(value, dict):
        return list(value.values())
    return list(value) if isinstance(value, list) else []


def _has_empty(value: object) -> bool:
    if value is None or (isinstance(value, str) and not value.strip()) or value in ([], {}):
        return True
    return any(_has_empty(child) for child in _children(value))


@given(_JSON)
def test_filter_empty_values_leaves_nothing_empty(data: object) -> None:
    filtered = filter_empty_values(data)
    assert not any(_has_empty(child) for child in _children(filtered))
    assert filter_empty_values(filtered) == filtered


def test_filter_empty_values_example() -> None:
    assert filter_empty_values({"users": [{"name": ""}, {"name": "John"}], "a": [1, "", None, [2, " "]]}) == {
        "users": [{"name": "John"}],
        "a": [1, [2]],
    }


# --- the package as projects and installers see it ---------------------------------------------


def test_every_public_name_and_submodule_imports_under_intuned_browser() -> None:
    modules = intuned_browser.top_level_modules()
    for name in ("intuned_browser", "intuned_browser.helpers", "intuned_browser.ai", "intuned_browser.ai.types"):
        module = modules[name]
        assert module.__all__
        for public in module.__all__:
            assert getattr(module, public) is not None, f"{name}.{public}"
    assert modules["intuned_browser.helpers.types"].ValidationError is ValidationError


def test_runtime_requirements_cover_every_third_party_import() -> None:
    imported: set[str] = set()
    for path in PACKAGE_DIR.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    third_party = imported - set(sys.stdlib_module_names) - {"intunedd", "__future__"}
    distributions = importlib.metadata.packages_distributions()
    needed = {dist for module in third_party for dist in distributions[module]}
    assert needed - {"playwright"} <= set(RUNTIME_REQUIREMENTS)
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())
    dependencies = " ".join(declared["project"]["dependencies"])
    assert all(name in dependencies for name in RUNTIME_REQUIREMENTS)
    packaged = declared["tool"]["setuptools"]["package-data"]["intunedd"]
    for path in PACKAGE_DIR.rglob("*.py"):
        relative = path.relative_to(REPO / "intunedd")
        assert any(relative.match(pattern) for pattern in packaged), relative


# --- through the real worker -------------------------------------------------------------------


class _NoStore:
    async def get(self, key: str) -> None:
        return None

    async def set(self, key: str, value: object) -> None:
        pass


@pytest.mark.chromium
async def test_a_project_imports_intuned_browser_in_the_worker(tmp_path: Path, site: str) -> None:
    project = tmp_path / "p"
    (project / "api").mkdir(parents=True)
    (project / "api" / "read.py").write_text(
        dedent(
            """
            from intuned_browser import extract_markdown, go_to_url
            from intuned_browser.ai import extract_structured_data

            async def automation(page, params, **_kwargs):
                await go_to_url(page, params["url"])
                try:
                    await extract_structured_data(source=page, data_schema={})
                except NotImplementedError as e:
                    ai = str(e)
                return {"markdown": await extract_markdown(page.locator("#card")), "ai": ai}
            """
        )
    )
    start = Start(
        attempt_id="run-1/1",
        project_dir=str(project),
        api="read",
        parameters={"url": f"{site}/article.html"},
        context=RunContext(run_id="run-1", project_name="p", api_name="read", attempt_number=1),
        log_path=str(tmp_path / "log.jsonl"),
    )
    config = WorkerConfig(fd=-1, browser_executable=find_browser("auto", True))
    with trio.fail_after(SPAWN_TIMEOUT_S):
        worker = await spawn_worker(config, {}, start_timeout_s=SPAWN_TIMEOUT_S)
    try:
        returned_send, _returned = trio.open_memory_channel[Verdict](1)
        with trio.fail_after(SCENARIO_TIMEOUT_S):
            outcome = await run_attempt(
                Lease(worker, returned_send), start, timeout_s=SCENARIO_TIMEOUT_S, abort_grace_s=1, kv=_NoStore()
            )
    finally:
        await worker.kill("test over")
    assert outcome.error is None
    assert outcome.result == {
        "markdown": "## Card\n\nInside",
        "ai": "extract_structured_data needs Intuned's hosted AI services, which intunedd does not provide",
    }


def test_registering_the_package_loads_none_of_the_helpers_heavy_libraries() -> None:
    """Every worker registers it at start; a project that never calls these helpers must not pay for them."""
    heavy = ("bs4", "markdownify", "jsonschema", "dateutil")
    code = (
        "import sys\n"
        "from intunedd.workers.shim import intuned_browser\n"
        "intuned_browser.top_level_modules()\n"
        f"print(sorted(m for m in {heavy!r} if m in sys.modules))\n"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert loaded.stdout.strip() == "[]"
