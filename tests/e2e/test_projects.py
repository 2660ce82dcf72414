"""Projects: versions, Intuned.json settings, and the CLI against the real daemon."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from .conftest import Daemon

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def _version_api(tag: str) -> dict[str, str]:
    return {
        "api/which.py": f"""
            import asyncio

            async def automation(page, params, **kwargs):
                await asyncio.sleep(params.get("seconds", 0))
                return "{tag}"
        """
    }


def test_a_run_uses_the_version_current_when_it_was_accepted(daemon: Daemon) -> None:
    settings = {"replication": {"maxConcurrentRequests": 1}}
    assert daemon.deploy("versions", _version_api("v1"), settings)["version"] == 1
    first = daemon.start_run("versions", {"api": "which", "parameters": {"seconds": 1}})
    queued = daemon.start_run("versions", {"api": "which", "parameters": {}})
    assert daemon.deploy("versions", _version_api("v2"), settings)["version"] == 2
    after = daemon.start_run("versions", {"api": "which", "parameters": {}})
    assert [daemon.wait_for("versions", r)["result"] for r in (first, queued, after)] == ["v1", "v1", "v2"]


def test_api_access_disabled_rejects_standalone_runs(daemon: Daemon) -> None:
    daemon.deploy("jobs-only", _version_api("x"), {"apiAccess": {"enabled": False}})
    with daemon.client() as c:
        response = c.post(daemon.path("jobs-only", "/run/start"), json={"api": "which", "parameters": {}})
    assert response.status_code == 403
    assert response.json()["details"]["reason"] == "api-access-disabled"


def test_projects_are_listed_with_their_apis(daemon: Daemon) -> None:
    daemon.deploy("listed", {"api/a.py": "async def automation(page, params):\n    return 1\n", "api/b/c.py": ""})
    with daemon.client() as c:
        listed = {p["name"]: p for p in c.get(f"/api/v1/workspace/{daemon.workspace}/projects").json()}
    assert listed["listed"]["apis"] == ["a", "b/c"]


def test_cli_deploys_the_example_and_runs_it(daemon: Daemon, site: str, tmp_path: Path) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return daemon.cli(*args, cwd=tmp_path)

    deployed = cli("--json", "projects", "deploy", str(ROOT / "examples" / "quotes"))
    assert deployed.returncode == 0, deployed.stderr
    assert json.loads(deployed.stdout)["apis"] == ["details/get", "list"]
    body = json.dumps({"api": "list", "parameters": {"url": f"{site}/quotes"}})
    ran = cli("--json", "runs", "start", body, "--project", "quotes", "--wait")
    assert ran.returncode == 0, ran.stderr
    result = json.loads(ran.stdout)
    assert result["status"] == "completed"
    run_id = result["runId"]
    listed = cli("runs", "list", "--project", "quotes", "-f", "status=completed")
    assert run_id in listed.stdout
    log = cli("attempts", "log", run_id, "--project", "quotes", "-o", "-")
    assert log.returncode == 0
    assert all(json.loads(line)["timestamp"] for line in log.stdout.splitlines())
    missing = cli("runs", "get", "A" * 21, "--project", "quotes")
    assert missing.returncode == 1
    assert "not-found" in missing.stderr


def test_an_intuned_version_2_project_with_a_setup_hook_runs(daemon: Daemon, site: str) -> None:
    """Intuned's current project template: a version 2.0 Intuned.json, a setup_context hook that
    reaches the attempt's browser over CDP, and an automation that takes the browser context."""
    settings = {
        "version": "2.0",
        "authSessions": {"enabled": False},
        "replication": {"size": "standard", "maxCount": 3, "minCount": 0},
        "headful": False,
        "region": "us",
        "stealthMode": {"enabled": False},
        "captchaSolver": {"enabled": False},
        "proxy": {"enabled": False},
        "metadata": {"defaultRunPlaygroundInput": {"apiName": "visit", "parameters": {}}},
    }
    files = {
        "hooks/setup_context.py": """
            from playwright.async_api import async_playwright

            async def setup_context(*, cdp_url, api_name, api_parameters):
                async with async_playwright() as playwright:
                    browser = await playwright.chromium.connect_over_cdp(cdp_url)
                    cookie = {"name": "api", "value": api_name.replace("/", "-"), "url": api_parameters["url"]}
                    await browser.contexts[0].add_cookies([cookie])
        """,
        "api/visit.py": """
            from playwright.async_api import BrowserContext, Page

            async def automation(page: Page, params: dict, context: BrowserContext, **kwargs):
                await page.goto(params["url"])
                return {"cookie": await page.evaluate("document.cookie"), "ownContext": context is page.context}
        """,
    }
    assert daemon.deploy("template", files, settings)["maxConcurrentRequests"] == 3
    run_id = daemon.start_run("template", {"api": "visit", "parameters": {"url": site}})
    result = daemon.wait_for("template", run_id)
    assert result["status"] == "completed", result
    assert result["result"] == {"cookie": "api=api-visit", "ownContext": True}
