"""Unmodified Intuned projects: their declared dependencies installed per project version with
uv, shared and reused; Intuned's packages replaced by ours on intunedd's own path."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import trio
from intuned_client import IntunedClient
from trio_websocket import open_websocket_url

from intunedd.environments.interpreters import available
from tests.intuned_project import intuned_pyproject

from .conftest import Daemon, DaemonFactory, api_error, project_archive

pytestmark = pytest.mark.e2e

# An Intuned project as Intuned's examples are written: Intuned's packages and a Playwright pin
# in pyproject.toml (tests/intuned_project.py), Python 3.12, params typed as a pydantic model,
# Intuned.jsonc version 2.0.
APIS = {
    "api/title.py": """
        from bs4 import BeautifulSoup
        from pydantic import BaseModel
        from intuned_browser import go_to_url


        class Params(BaseModel):
            url: str


        async def automation(page, params: Params, **_kwargs):
            await go_to_url(page, Params.model_validate(params).url)
            soup = BeautifulSoup(await page.content(), "html.parser")
            return {"title": soup.title.string, "heading": soup.h1.get_text()}
    """,
    "api/markdown.py": """
        from intuned_browser import extract_markdown, go_to_url


        async def automation(page, params, **_kwargs):
            await go_to_url(page, params["url"])
            return await extract_markdown(page)
    """,
    "api/count.py": """
        from intuned_runtime import persistent_store


        async def automation(page, params, **_kwargs):
            seen = (await persistent_store.get("seen")) or 0
            await persistent_store.set("seen", seen + 1)
            return seen + 1
    """,
    "api/fanout.py": """
        from intuned_runtime import extend_payload


        async def automation(page, params, **_kwargs):
            for i in range(params["children"]):
                extend_payload({"api": "markdown", "parameters": {"url": params["url"] + f"/child-{i}"}})
            return "parent"
    """,
}
INTUNED_JSONC = """{
  // Intuned's newer settings format
  "version": "2.0",
  "apiAccess": {"enabled": true},
  "replication": {"maxCount": 2, "minCount": 1, "size": "standard"},
  "authSessions": {"enabled": false},
  "headful": false
}
"""


def _current_version(daemon: Daemon, project: str) -> int:
    with daemon.client() as c:
        return int(c.get(daemon.path(project)).json()["version"])


def _project(name: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    return {"pyproject.toml": intuned_pyproject(name), "Intuned.jsonc": INTUNED_JSONC, **APIS, **(extra or {})}


@pytest.fixture(scope="module")
def uv_cache(tmp_path_factory: pytest.TempPathFactory) -> str:
    # Shared by the module's daemons, so only the first build downloads anything.
    return str(tmp_path_factory.mktemp("uv-cache"))


HAS_PYTHON_312 = any(i.version >= (3, 12) for i in available([]))


@pytest.fixture(scope="module", params=["intunedd", "intuned"])
def path(request: pytest.FixtureRequest) -> str:
    """Both paths run the same tests: intunedd's own modules, and Intuned's runtime where it can."""
    if request.param == "intuned" and not HAS_PYTHON_312:
        pytest.skip("no Python >= 3.12 on this host for Intuned's runtime: its path is not tested here")
    return str(request.param)


@pytest.fixture(scope="module")
def ours(daemon_factory: DaemonFactory, uv_cache: str, path: str) -> Daemon:
    return daemon_factory(environments__intuned_runtime=path == "intuned", environments__uv_cache_dir=uv_cache)


@pytest.fixture(scope="module")
def deployed(ours: Daemon) -> dict[str, Any]:
    return ours.deploy("soup", _project("soup"))


def test_an_intuned_project_deploys_into_its_own_environment_and_says_how_it_runs(
    deployed: dict[str, Any], path: str
) -> None:
    environment = deployed["environment"]
    assert environment["runtime"] == path
    assert environment["python"].startswith("3.12." if HAS_PYTHON_312 else "3.")
    assert deployed["environmentReused"] is False
    if path == "intunedd":
        assert any("turned off" in w for w in deployed["warnings"]) == HAS_PYTHON_312
    assert deployed["maxConcurrentRequests"] == 2  # replication.maxCount of Intuned.jsonc 2.0


def test_its_apis_run_unchanged_with_their_third_party_packages(
    ours: Daemon, deployed: dict[str, Any], site: str
) -> None:
    run_id = ours.start_run("soup", {"api": "title", "parameters": {"url": f"{site}/soup"}})
    result = ours.wait_for("soup", run_id)
    assert (result["status"], result.get("result")) == ("completed", {"title": "page soup", "heading": "soup"}), result


def test_intuned_browser_helpers_work_inside_the_automation(ours: Daemon, deployed: dict[str, Any], site: str) -> None:
    run_id = ours.start_run("soup", {"api": "markdown", "parameters": {"url": f"{site}/helpers"}})
    result = ours.wait_for("soup", run_id)
    assert result["status"] == "completed", result
    assert "helpers" in result["result"] and result["result"].lstrip().startswith("#")


def test_persistent_store_survives_across_runs(ours: Daemon, deployed: dict[str, Any]) -> None:
    counts = [
        ours.wait_for("soup", ours.start_run("soup", {"api": "count", "parameters": {}}))["result"] for _ in range(2)
    ]
    assert counts[1] == counts[0] + 1


def test_extend_payload_fans_out_inside_a_job_run(ours: Daemon, deployed: dict[str, Any], site: str) -> None:
    body = {
        "id": "fan",
        "payload": [{"apiName": "fanout", "parameters": {"children": 2, "url": site}}],
        "configuration": {},
    }
    with IntunedClient(
        api_key=ours.key, workspace_id=ours.workspace, base_url=f"{ours.url}/api/v1/workspace"
    ) as client:
        client.projects.jobs.create(project_name="soup", body=body)
        job_run_id = client.projects.jobs.trigger(project_name="soup", job_id="fan").job_run_id
        deadline = time.monotonic() + 120
        while (
            job_run := client.projects.jobs.runs.get(project_name="soup", job_id="fan", job_run_id=job_run_id).job_run
        ).status not in {"COMPLETED", "FAILURE", "TERMINATED"}:
            assert time.monotonic() < deadline, job_run.status
            time.sleep(0.1)
    assert (job_run.status, job_run.payloads, job_run.successful_runs) == ("COMPLETED", 3, 3)


def test_a_redeploy_with_the_same_dependencies_reuses_the_environment(ours: Daemon, deployed: dict[str, Any]) -> None:
    again = ours.deploy(
        "soup", _project("soup", {"api/extra.py": "async def automation(page, params):\n    return 1\n"})
    )
    assert again["version"] == deployed["version"] + 1
    assert (again["environment"], again["environmentReused"]) == (deployed["environment"], True)


def test_two_projects_with_the_same_dependencies_share_one_environment(ours: Daemon, deployed: dict[str, Any]) -> None:
    other = ours.deploy("soup-twin", _project("soup-twin"))
    assert other["environment"]["key"] == deployed["environment"]["key"]


def test_a_dependency_that_does_not_exist_is_refused_and_the_old_version_still_answers(
    ours: Daemon, deployed: dict[str, Any], site: str
) -> None:
    before = _current_version(ours, "soup")
    broken = {**_project("soup"), "pyproject.toml": intuned_pyproject("soup", "intunedd-no-such-package-zq>=1")}
    with ours.client() as c:
        response = c.post(ours.path("soup", "/deploy"), content=project_archive(broken), timeout=300)
    error = api_error(response, 400)
    assert "intunedd-no-such-package-zq" in error["message"]
    assert error["details"]["field"] == "dependencies"
    assert _current_version(ours, "soup") == before
    run_id = ours.start_run("soup", {"api": "title", "parameters": {"url": f"{site}/still"}})
    assert ours.wait_for("soup", run_id)["result"]["heading"] == "still"
    partial = [p for p in (ours.state_dir / "environments").iterdir() if p.name.endswith(".partial")]
    assert partial == []


def test_a_project_without_dependencies_runs_in_the_daemons_own_environment(ours: Daemon) -> None:
    plain = ours.deploy("plain", {"api/a.py": "async def automation(page, params):\n    return 'plain'\n"})
    assert plain["environment"] is None
    assert ours.wait_for("plain", ours.start_run("plain", {"api": "a", "parameters": {}}))["result"] == "plain"


async def test_deploy_progress_is_reported_as_events(ours: Daemon) -> None:
    url = ours.url.replace("http", "ws") + f"/api/v1/workspace/{ours.workspace}/events?project=progress"
    files = {
        "requirements.txt": "six\n",
        "api/a.py": "import six\n\nasync def automation(page, params):\n    return 1\n",
    }
    with trio.fail_after(300):
        async with open_websocket_url(url, extra_headers=[("x-api-key", ours.key)]) as ws:
            await trio.to_thread.run_sync(ours.deploy, "progress", files)
            steps = []
            while not steps or steps[-1] != "project.deploy.ready":
                event = json.loads(await ws.get_message())
                if event["type"].startswith("project.deploy."):
                    steps.append(event["type"])
    assert steps == ["project.deploy.resolving", "project.deploy.installing", "project.deploy.ready"]


def test_the_cli_shows_the_deploys_progress_and_warnings(ours: Daemon, tmp_path: Path) -> None:
    (tmp_path / "api").mkdir()
    (tmp_path / "api" / "a.py").write_text("import idna\n\nasync def automation(page, params):\n    return 1\n")
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\nrequires-python = ">=3.99"\ndependencies = ["idna"]\n'
    )
    done = ours.cli("projects", "deploy", str(tmp_path), "--name", "cli-progress")
    assert done.returncode == 0, done.stderr
    assert ["... resolving", "... installing", "... ready"] == [
        line for line in done.stderr.splitlines() if line.startswith("... ")
    ]
    assert "warning: requires-python '>=3.99' cannot be satisfied" in done.stderr
