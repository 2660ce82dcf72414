"""The dashboard end to end: a real daemon, real Chromium through Playwright, a real webhook receiver.

Screenshots of the main pages are saved under the pytest tmp dir; with
``INTUNEDD_DASHBOARD_SCREENSHOTS=DIR`` (the README's are made with ``docs/screenshots``) they are
copied there too.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect
from websockets.typing import Origin

from intunedd.harness import create_key
from intunedd.workers.browser import find_browser

from .conftest import Daemon, DaemonFactory, Receiver

pytestmark = pytest.mark.e2e

PROJECT = "dash"
APIS = {
    "api/echo.py": """\
        import asyncio

        async def automation(page, params, **kwargs):
            print("hello from the automation")
            await page.set_content("<h1>dashboard</h1>")
            await asyncio.sleep(params.get("seconds", 0))
            return params
        """,
    "api/boom.py": """\
        async def automation(page, params, **kwargs):
            raise ValueError("boom for the dashboard")
        """,
}
WAIT_MS = 30_000


@pytest.fixture(scope="module")
def dash(daemon_factory: DaemonFactory) -> Daemon:
    daemon = daemon_factory(
        sinks__first_retry_s=0.2, sinks__max_retry_s=0.4, sinks__webhook_window_s=2.0, sinks__webhook_timeout_s=1.0,
        runs__record_video=True, collections__allowed_networks=["127.0.0.0/8"],
    )
    daemon.deploy(PROJECT, APIS)
    return daemon


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=find_browser("auto", True), headless=True)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("dashboard-screenshots")
    yield folder
    if target := os.environ.get("INTUNEDD_DASHBOARD_SCREENSHOTS"):
        Path(target).mkdir(parents=True, exist_ok=True)
        for shot in folder.glob("*.png"):
            shutil.copy(shot, Path(target) / shot.name)


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    ctx.set_default_timeout(WAIT_MS)
    yield ctx
    ctx.close()


def sign_in(page: Page, daemon: Daemon, target: str = "/") -> None:
    page.goto(f"{daemon.url}{target}")
    expect(page).to_have_url(re.compile(r"/sign-in\?next="))
    page.get_by_label("API key").fill(daemon.key)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{daemon.url}{target}")


def post_sign_in(client: httpx.Client, key: str) -> httpx.Response:
    """Sign in as a form does: the sign-in page's token (in its cookie and the form) goes with the key."""
    page = client.get("/sign-in")
    token = re.search(r'name="sign_in_token" value="([^"]+)"', page.text)
    assert token, page.text
    return client.post("/sign-in", data={"key": key, "next": "/", "sign_in_token": token.group(1)})


def shot(page: Page, folder: Path, name: str) -> None:
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def test_pages_need_the_session(dash: Daemon, context: BrowserContext) -> None:
    page = context.new_page()
    for path in ("/", "/runs", f"/projects/{PROJECT}/runs/nope", "/deliveries"):
        page.goto(f"{dash.url}{path}")
        expect(page).to_have_url(re.compile(r"/sign-in\?next="))
    with httpx.Client(base_url=dash.url, timeout=60) as anonymous:
        refused = anonymous.post(f"/projects/{PROJECT}/runs", data={"api": "echo", "parameters": "{}"})
        assert refused.status_code == 403
        bad = post_sign_in(anonymous, "ind_not-a-key")
        assert bad.status_code == 401 and "intunedd_session" not in bad.headers.get("set-cookie", "")
        # Signing in from another site's form: the key is right, but the sign-in cookie does not come along.
        anonymous.cookies.clear()
        forged = anonymous.post("/sign-in", data={"key": dash.key, "next": "/", "sign_in_token": "x" * 43})
        assert forged.status_code == 403 and "intunedd_session" not in forged.headers.get("set-cookie", "")


def test_sign_in_cookie_and_csrf(dash: Daemon, context: BrowserContext, shots: Path) -> None:
    page = context.new_page()
    page.goto(f"{dash.url}/sign-in")
    shot(page, shots, "sign-in")
    sign_in(page, dash)
    (cookie,) = [c for c in context.cookies() if c["name"] == "intunedd_session"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert len(cookie["value"]) >= 40
    # A form without its CSRF token is refused, though the session cookie goes with it.
    no_token = page.request.post(f"{dash.url}/projects/{PROJECT}/runs", form={"api": "echo", "parameters": "{}"})
    assert no_token.status == 403
    wrong = page.request.post(
        f"{dash.url}/projects/{PROJECT}/runs", form={"api": "echo", "parameters": "{}", "csrf": "x" * 43}
    )
    assert wrong.status == 403
    # The cookie is the dashboard's: the JSON API still wants its key.
    assert page.request.get(f"{dash.url}/api/v1/workspace/{dash.workspace}/projects").status == 401
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{dash.url}/sign-in")
    page.goto(f"{dash.url}/runs")
    expect(page).to_have_url(re.compile(r"/sign-in\?next="))


def test_start_a_run_and_watch_it_live(dash: Daemon, context: BrowserContext, shots: Path) -> None:
    page = context.new_page()
    sign_in(page, dash, "/projects")
    page.get_by_text(re.compile(r"Versions \(\d+ latest\)")).first.click()
    expect(page.locator("details table tbody tr").first).to_contain_text("echo")
    shot(page, shots, "projects")
    form = page.locator("form.run-form").first
    form.get_by_label("API").select_option("echo")
    form.get_by_label("Parameters (a JSON object)").fill('{"seconds": 3, "from": "the dashboard"}')
    form.get_by_role("button", name="Start run").click()
    expect(page).to_have_url(re.compile(rf"/projects/{PROJECT}/runs/[\w-]+$"))
    page.evaluate("window.notReloaded = true")
    status = page.locator("#run-status")
    expect(status).to_have_text(re.compile("pending|started"))
    expect(status).to_have_text("completed")
    assert page.evaluate("window.notReloaded") is True  # the page updated itself
    expect(page.locator("#run-result")).to_contain_text('"from": "the dashboard"')
    video = page.locator("video")
    expect(video).to_have_attribute("src", re.compile(r"/attempts/1/video\?expires=\d+&signature="))
    page.wait_for_function("document.querySelector('video').readyState >= 1", timeout=WAIT_MS)  # it plays
    shot(page, shots, "run")

    page.get_by_role("link", name="Log").first.click()
    expect(page.locator("#log-lines")).to_contain_text("hello from the automation")
    search = page.get_by_label("Search the log")
    search.fill("no line says this")
    expect(page.locator("#log-count")).to_have_text(re.compile(r"^0 of \d+ lines$"))
    search.fill("hello from")
    expect(page.locator("#log-count")).to_have_text(re.compile(r"^1 of \d+ lines$"))
    shot(page, shots, "log")
    page.go_back()

    with context.expect_page() as opened:
        page.get_by_role("link", name=re.compile("Trace")).first.click()
    viewer = opened.value
    expect(viewer).to_have_url(re.compile(r"/trace-viewer/index\.html\?trace="))
    expect(viewer.get_by_text(re.compile("set.?content", re.IGNORECASE)).first).to_be_visible()


def test_runs_table_updates_live_and_filters(dash: Daemon, context: BrowserContext, shots: Path) -> None:
    failed = dash.start_run(PROJECT, {"api": "boom", "parameters": {}})
    dash.wait_for(PROJECT, failed)
    page = context.new_page()
    sign_in(page, dash, f"/runs?project={PROJECT}")
    run_id = dash.start_run(PROJECT, {"api": "echo", "parameters": {"seconds": 1}})
    row = page.locator(f'tr[data-run="{run_id}"]')
    expect(row).to_be_visible()  # prepended, no reload
    expect(row).to_contain_text("completed")
    shot(page, shots, "runs")
    page.get_by_label("Status").select_option("failed")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator(f'tr[data-run="{failed}"]')).to_be_visible()
    expect(page.locator(f'tr[data-run="{run_id}"]')).to_have_count(0)
    page.locator(f'tr[data-run="{failed}"] a').first.click()
    expect(page.locator("pre.traceback").first).to_contain_text("ValueError: boom for the dashboard")


def _job_run_status(daemon: Daemon, job_id: str, job_run_id: str) -> dict[str, Any]:
    with daemon.client() as c:
        r = c.get(daemon.path(PROJECT, f"/jobs/{job_id}/runs/{job_run_id}"))
    return dict(r.raise_for_status().json()["jobRun"])


def test_pause_and_resume_a_job_run(dash: Daemon, context: BrowserContext, shots: Path) -> None:
    job = {
        "id": "nightly",
        "payload": [{"apiName": "echo", "parameters": {"seconds": 1.5, "i": i}} for i in range(3)],
        "configuration": {"maxConcurrentRequests": 1},
    }
    with dash.client() as c:
        assert c.post(dash.path(PROJECT, "/jobs"), json=job).status_code == 201
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    sign_in(page, dash, f"/jobs?project={PROJECT}")
    page.get_by_role("link", name="nightly").click()
    page.get_by_role("button", name="Trigger").click()
    expect(page).to_have_url(re.compile(r"/jobs/nightly/runs/[\w-]+$"))
    job_run_id = page.url.rsplit("/", 1)[1]
    bar = page.locator("#jobrun-progress progress")
    expect(bar).to_have_attribute("value", re.compile(r"^[12]$"))  # the counts move as runs finish
    page.get_by_role("button", name="Pause").click()
    expect(page.locator("#jobrun-status")).to_have_text("PAUSED")
    assert _job_run_status(dash, "nightly", job_run_id)["status"] == "PAUSED"
    shot(page, shots, "job-run-paused")
    page.evaluate("window.notReloaded = true")
    page.get_by_role("button", name="Resume").click()
    expect(bar).to_have_attribute("value", "3")
    expect(page.locator("#jobrun-status")).to_have_text("COMPLETED")
    shot(page, shots, "job-run")
    page.goto(f"{dash.url}/projects/{PROJECT}/jobs/nightly")
    shot(page, shots, "job")
    page.get_by_role("button", name="Delete job").click()  # confirmed by the dialog handler
    expect(page).to_have_url(re.compile(r"/jobs\?project="))
    with dash.client() as c:
        assert c.get(dash.path(PROJECT, "/jobs/nightly")).status_code == 404


def test_retry_a_failed_delivery(dash: Daemon, context: BrowserContext, receiver: Receiver, shots: Path) -> None:
    sink = {"type": "webhook", "url": f"{receiver.url}/toggle"}
    run_id = dash.start_run(PROJECT, {"api": "echo", "parameters": {}, "sink": sink})
    dash.wait_for(PROJECT, run_id)
    deadline = time.monotonic() + 30
    with dash.client() as c:
        while not (items := c.get(f"/api/v1/workspace/{dash.workspace}/deliveries", params={"run": run_id}).json()[
            "items"
        ]) or items[0]["status"] != "failed":
            assert time.monotonic() < deadline, items
            time.sleep(0.05)
    delivery_id = items[0]["id"]
    page = context.new_page()
    sign_in(page, dash, "/")
    expect(page.get_by_role("region", name="Failed deliveries")).to_contain_text(run_id)
    shot(page, shots, "overview")
    page.goto(f"{dash.url}/deliveries?status=failed")
    row = page.locator(f'tr[data-delivery="{delivery_id}"]')
    expect(row).to_contain_text("HTTP 503")
    shot(page, shots, "deliveries")
    receiver.open.set()
    row.get_by_role("button", name="Retry").click()
    expect(page.locator(".notice")).to_have_text("Delivery retried")
    page.goto(f"{dash.url}/deliveries?status=delivered")
    expect(page.locator(f'tr[data-delivery="{delivery_id}"]')).to_contain_text("delivered")
    assert receiver.answer_log("/toggle")[-1] == 200


def test_queues_and_auth_sessions_pages(dash: Daemon, context: BrowserContext, shots: Path) -> None:
    with dash.client() as c:
        created = c.post(dash.path(PROJECT, "/queues"), json={"name": "inbox", "configuration": {}})
        assert created.status_code == 201, created.text
    page = context.new_page()
    sign_in(page, dash, f"/queues?project={PROJECT}")
    expect(page.locator("table")).to_contain_text("inbox")
    shot(page, shots, "queues")
    page.goto(f"{dash.url}/auth-sessions?project={PROJECT}")
    expect(page.locator("main")).to_contain_text("no auth sessions")
    page.set_viewport_size({"width": 390, "height": 844})  # a phone
    page.goto(f"{dash.url}/runs?project={PROJECT}")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways page scroll
    shot(page, shots, "runs-phone")


def test_revoking_the_key_ends_its_sessions(dash: Daemon, context: BrowserContext) -> None:
    key = create_key(dash.config_path, "dashboard-revoked")
    page = context.new_page()
    page.goto(f"{dash.url}/sign-in")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    with dash.client() as c:
        keys = c.get(f"/api/v1/workspace/{dash.workspace}/keys").json()["items"]
        (key_id,) = [k["id"] for k in keys if k["name"] == "dashboard-revoked"]
        assert c.post(f"/api/v1/workspace/{dash.workspace}/keys/{key_id}/revoke").status_code == 200
    deadline = time.monotonic() + 10  # the daemon rechecks a key within KEY_RECHECK_S
    while True:
        page.goto(f"{dash.url}/runs")
        if page.url.startswith(f"{dash.url}/sign-in"):
            break
        assert time.monotonic() < deadline, "the session outlived its revoked key"


def test_the_event_stream_takes_the_cookie_from_the_dashboard_origin_only(dash: Daemon) -> None:
    with httpx.Client(base_url=dash.url, timeout=60) as browserless:
        signed_in = post_sign_in(browserless, dash.key)
        assert signed_in.status_code == 303
        cookie = f"intunedd_session={browserless.cookies['intunedd_session']}"
    stream = f"ws://{dash.url.removeprefix('http://')}/api/v1/workspace/{dash.workspace}/events"
    with connect(stream, additional_headers={"Cookie": cookie}, origin=Origin(dash.url), open_timeout=10) as ws:
        run_id = dash.start_run(PROJECT, {"api": "echo", "parameters": {}})
        while (event := json.loads(ws.recv(timeout=30)))["run_id"] != run_id:
            pass
        assert event["type"] == "run.created"
    for origin in ("http://evil.example", None):
        with pytest.raises(InvalidStatus) as refused:
            connect(stream, additional_headers={"Cookie": cookie}, origin=Origin(origin) if origin else None,
                    open_timeout=10)  # fmt: skip
        assert refused.value.response.status_code == 401


def test_collections_page_starts_a_run_and_shows_its_progress(
    dash: Daemon, context: BrowserContext, site: str, shots: Path
) -> None:
    body = {"name": "docs", "requests": [{"url": f"{site}/one"}, {"url": f"{site}/two"}]}
    with httpx.Client(base_url=dash.url, headers={"Authorization": f"Bearer {dash.key}"}, timeout=30) as v1:
        created = v1.post("/v1/async/collections", json=body)
        assert created.status_code == 201, created.text
    page = context.new_page()
    sign_in(page, dash, "/collections")
    page.get_by_role("link", name="docs").click()
    page.get_by_role("button", name="Start run").click()
    expect(page.locator(".notice")).to_have_text("Run started")
    progress = page.locator("td.progress progress").first
    expect(progress).to_have_attribute("value", "2")  # both requests scraped, the page updated itself
    expect(page.locator("td.progress .counts").first).to_contain_text("2 succeeded")
    shot(page, shots, "collection")
