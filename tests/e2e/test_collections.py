"""The /v1 collections API end to end, through the official ``scrapingpros`` SDK pointed at the
daemon, against pages served on 127.0.0.1 (spec §10)."""

from __future__ import annotations

import base64
import json
import time
import warnings
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from scrapingpros import SyncClient
from scrapingpros.exceptions import APIError, JobNotFound

from intunedd.clock import parse_iso
from intunedd.collections import signing

from ..collections.site import Site, serve_site
from .conftest import Daemon, DaemonFactory, Receiver

pytestmark = pytest.mark.e2e
SECRET = "test-callback-secret"
SETTINGS = {
    "collections__allowed_networks": ["127.0.0.0/8"],
    "collections__callback_secret": SECRET,
    "collections__request_timeout_s": 5.0,
}


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    with serve_site() as served:
        yield served


@pytest.fixture(scope="module")
def sp_daemon(daemon_factory: DaemonFactory) -> Daemon:
    return daemon_factory(**SETTINGS)


def _client(daemon: Daemon) -> SyncClient:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return SyncClient(daemon.key, base_url=daemon.url, max_retries=0)


@pytest.fixture
def client(sp_daemon: Daemon) -> Iterator[SyncClient]:
    with _client(sp_daemon) as c:
        yield c


def _wait_run(client: SyncClient, collection_id: str, run_id: str, timeout: float = 90) -> Any:
    deadline = time.monotonic() + timeout
    while (run := client.get_run(collection_id, run_id)).status != "completed":
        assert time.monotonic() < deadline, f"run still {run.status}: {run}"
        time.sleep(0.2)
    return run


def test_a_sync_scrape_returns_html_markdown_extracts_and_actions(client: SyncClient, site: Site) -> None:
    page = client.scrape(
        f"{site.url}/page", extract={"title": "css:h1", "items": {"selector": "li.item", "multiple": True}}
    )
    assert page.statusCode == 200
    assert "Kettles" in (page.html or "")
    assert page.extracted_data == {"title": "Kettles & more", "items": ["Kettle", "Toaster"]}
    markdown = client.scrape(f"{site.url}/page", format="markdown", browser=True, screenshot=True)
    assert "| Product | Price |" in (markdown.markdown or "")
    assert base64.b64decode(markdown.screenshot or "")[:8] == b"\x89PNG\r\n\x1a\n"
    actions = [
        {"type": "input", "selector": "css:#q", "text": "kettle"},
        {"type": "select", "selector": "#size", "value": "l"},
        {"type": "click", "selector": "css:#go"},
        {"type": "evaluate", "script": "document.getElementById('out').textContent"},
    ]
    acted = client.scrape(f"{site.url}/form", browser=True, actions=actions)  # type: ignore[arg-type]
    assert acted.evaluate_results == ["kettle/l"]


def test_bad_requests_are_refused_as_that_api_does(sp_daemon: Daemon, client: SyncClient) -> None:
    with pytest.raises(APIError) as refused:
        client.scrape("http://127.0.0.1:1/x", screenshot=True)  # a screenshot needs a browser
    assert refused.value.status_code == 422
    with httpx.Client(base_url=sp_daemon.url, timeout=60) as anonymous:
        assert anonymous.post("/v1/sync/scrape", json={"url": "x"}).status_code == 401
    # A new connection: the 401 above answered before reading its body.
    with httpx.Client(base_url=sp_daemon.url, timeout=60) as raw:
        bad = raw.post("/v1/sync/scrape", json={"nope": 1}, headers={"Authorization": f"Bearer {sp_daemon.key}"})
        assert bad.status_code == 422
        assert bad.json()["detail"][0]["loc"][:2] == ["body", "url"]
        assert "X-RateLimit-Remaining" in bad.headers
        assert raw.get("/v1/health").json()["status"] == "ok"


def test_a_collection_runs_pages_its_jobs_and_keeps_results(client: SyncClient, site: Site) -> None:
    requests = [{"url": f"{site.url}/page", "custom_id": f"c{n}", "extract": {"title": "css:h1"}} for n in range(7)]
    requests.append({"url": f"{site.url}/page", "custom_id": "c0"})  # a duplicate of the first
    requests.append({"url": "http://10.1.2.3/secret"})  # a private address
    requests.append({"url": "ftp://example.com/x"})
    requests.append({"url": f"{site.url}/form", "browser": True, "actions": [{"type": "bogus"}]})
    created = client.create_collection("paged", requests, idempotency_key="paged-1")
    assert created.duplicates_skipped == 1
    assert {b.reason for b in created.blocked_urls} == {"private_ip", "invalid_protocol"}
    assert [i.index for i in created.invalid_items] == [10]
    replay = client.create_collection("paged", requests, idempotency_key="paged-1")
    assert replay.id == created.id
    run = client.create_run(created.id)
    assert (run.status, run.total_requests) == ("in_progress", 7)
    done = _wait_run(client, created.id, run.run_id)
    assert (done.success_requests, done.failed_requests, done.timeout_requests) == (7, 0, 0)
    seen, cursor = [], None
    while True:
        page = client.get_run_jobs(created.id, run.run_id, cursor=cursor, limit=3)
        seen += page.items
        if not page.has_more:
            break
        cursor = page.cursor_next
    assert sorted(j.custom_id for j in seen) == [f"c{n}" for n in range(7)]
    assert len({j.job_public_id for j in seen}) == 7
    result = client.get_job_result(created.id, run.run_id, seen[0].job_public_id)
    assert result.extracted_data == {"title": "Kettles & more"}
    with pytest.raises(JobNotFound):
        client.get_job_result(created.id, run.run_id, "00000000-0000-0000-0000-000000000000")
    runs = client.list_runs(created.id)
    assert [r.run_id for r in runs.items] == [run.run_id]


def test_a_request_that_hangs_is_counted_as_a_timeout(client: SyncClient, site: Site) -> None:
    created = client.create_collection("slow", [{"url": f"{site.url}/hang"}, {"url": f"{site.url}/page"}])
    run = client.create_run(created.id)
    done = _wait_run(client, created.id, run.run_id)
    assert (done.success_requests, done.timeout_requests) == (1, 1)


def test_the_completion_callback_is_signed(client: SyncClient, site: Site, receiver: Receiver) -> None:
    created = client.create_collection("called", [{"url": f"{site.url}/page"}], callback_url=f"{receiver.url}/ok/cb")
    run = client.create_run(created.id)
    (call,) = receiver.wait_for("/ok/cb", 1, timeout=60)
    body = json.loads(call["body"])
    assert (body["event"], body["run_id"], body["collection_id"]) == ("run.completed", run.run_id, created.id)
    headers = {k.lower(): v for k, v in call["headers"].items()}
    assert signing.verify(SECRET, headers["x-sp-timestamp"], headers["x-sp-signature"], call["body"], int(time.time()))
    assert not signing.verify(
        "wrong", headers["x-sp-timestamp"], headers["x-sp-signature"], call["body"], int(time.time())
    )
    assert _wait_run(client, created.id, run.run_id).callback_status == "sent"


def test_a_restart_in_the_middle_of_a_run_completes_it_with_right_counts(
    daemon_factory: DaemonFactory, site: Site
) -> None:
    daemon = daemon_factory(**SETTINGS)
    requests = [{"url": f"{site.url}/page", "custom_id": str(n), "browser": n % 2 == 0} for n in range(12)]
    with _client(daemon) as client:
        created = client.create_collection("restart", requests)
        run = client.create_run(created.id)
        deadline = time.monotonic() + 60
        while client.get_run(created.id, run.run_id).success_requests < 2:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    daemon.kill9()
    daemon.start()
    with _client(daemon) as client:
        done = _wait_run(client, created.id, run.run_id)
        assert (done.total_requests, done.success_requests, done.failed_requests) == (12, 12, 0)
        jobs = client.get_run_jobs(created.id, run.run_id)
        assert sorted(int(j.custom_id) for j in jobs.items) == list(range(12))
        assert all(j.status == "completed" for j in jobs.items)


def test_the_cli_creates_runs_and_reads_a_collection(sp_daemon: Daemon, site: Site) -> None:
    def cli(*args: str) -> Any:
        done = sp_daemon.cli("collections", *args, "--json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    body = json.dumps({"name": "from-cli", "requests": [{"url": f"{site.url}/page", "custom_id": "x"}]})
    created = cli("create", body)
    assert created["name"] == "from-cli"
    assert created["id"] in [c["id"] for c in cli("list")]
    assert cli("get", created["id"])["name"] == "from-cli"
    run = cli("run", created["id"])
    deadline = time.monotonic() + 60
    while cli("runs", created["id"], run["run_id"])["status"] != "completed":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert [r["run_id"] for r in cli("runs", created["id"])["items"]] == [run["run_id"]]
    (job,) = cli("jobs", created["id"], run["run_id"])["items"]
    assert cli("result", created["id"], run["run_id"], job["job_public_id"])["custom_id"] == "x"
    missing = sp_daemon.cli("collections", "get", "00000000-0000-0000-0000-000000000000")
    assert missing.returncode != 0 and "not found" in missing.stderr.lower()


def test_collection_jobs_start_no_faster_than_the_rate_limits(daemon_factory: DaemonFactory, site: Site) -> None:
    daemon = daemon_factory(**SETTINGS, collections__rate_limits=[{"limit": 2, "duration": "1s"}])
    with _client(daemon) as client:
        created = client.create_collection(
            "paced", [{"url": f"{site.url}/page", "custom_id": str(n)} for n in range(6)]
        )
        run = client.create_run(created.id)
        assert _wait_run(client, created.id, run.run_id).success_requests == 6
        jobs = client.get_run_jobs(created.id, run.run_id).items
    starts = sorted(parse_iso(str(j.started_at)).timestamp() for j in jobs)
    for earlier, later in zip(starts, starts[2:], strict=False):
        # Never a third start within a second of two others. A start is recorded a little after the
        # limiter admits it, by as much as a busy machine takes: hence the slack.
        assert later - earlier >= 0.75


def test_an_update_keeps_the_callback_unless_it_names_one(sp_daemon: Daemon, client: SyncClient, site: Site) -> None:
    hook = f"{site.url}/hook"
    created = client.create_collection("hooked", [{"url": f"{site.url}/page"}], callback_url=hook)
    client.update_collection(created.id, "renamed")  # no callback_url: kept
    assert client.get_collection(created.id).name == "renamed"
    kept = client.create_run(created.id)
    assert kept.callback_url == hook
    _wait_run(client, created.id, kept.run_id)
    with httpx.Client(base_url=sp_daemon.url, timeout=60, headers={"x-api-key": sp_daemon.key}) as raw:
        cleared = raw.put(f"/v1/async/collections/{created.id}", json={"name": "renamed", "callback_url": None})
        assert cleared.status_code == 200, cleared.text
        assert raw.put(f"/v1/async/collections/{created.id}", json={"callback_url": 7}).status_code == 422
    assert client.create_run(created.id).callback_url is None
