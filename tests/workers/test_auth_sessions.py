"""AuthSessions in the worker (spec §5.3): auth-sessions/create.py and check.py against a real login site,
with real Chromium, on our own path and through Intuned's runtime (where a Python >= 3.12 exists)."""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest
import trio

from intunedd.workers.protocol import Done, RunContext, Start
from tests.login_site import AUTH_FILES, LoginSite

from .test_child import WorkerClient, make_project
from .test_runtime_contract import runtime_python  # noqa: F401  # the fixture, for request.getfixturevalue

pytestmark = pytest.mark.chromium

PROJECT = {
    "Intuned.json": '{"projectName": "auth", "authSessions": {"enabled": true, "type": "API"}}',
    **AUTH_FILES,
    "api/private.py": """
        from intuned_runtime import get_auth_session_parameters, run_info

        async def automation(page, params=None, **_kwargs):
            parameters = await get_auth_session_parameters()
            await page.goto(parameters["url"] + "/private")
            return {
                "user": await page.locator("#user").text_content() if await page.locator("#user").count() else None,
                "token": await page.locator("#token").text_content(),
                "tab": await page.locator("#tab").text_content(),
                "parameters": parameters,
                "authSessionId": run_info().auth_session_id,
            }
    """,
}
CHECKS = {
    "not_bool": """
        async def check(page, **_kwargs):
            return "yes"
    """,
    "raises": """
        async def check(page, **_kwargs):
            raise ValueError("check broke")
    """,
    "named_automation": """
        async def automation(page, **_kwargs):
            return True
    """,
}
EMPTY_STATE: dict[str, Any] = {"cookies": [], "origins": []}


@pytest.fixture
def site() -> Iterator[LoginSite]:
    with LoginSite.serving() as site:
        yield site


@pytest.fixture(params=["intunedd", "intuned"])
def runtime(request: pytest.FixtureRequest) -> tuple[str, str]:
    """Which runtime runs the attempt, and the Python its worker runs on."""
    if request.param == "intunedd":
        return "intunedd", sys.executable
    return "intuned", str(request.getfixturevalue("runtime_python"))


@dataclass
class Project:
    worker: WorkerClient
    runtime: str
    path: Path
    site: LoginSite

    async def run(
        self, function: Literal["api", "auth-create", "auth-check"], api: str = "private", **fields: Any
    ) -> Done:
        context = RunContext(
            run_id="run-1", project_name="auth", api_name=api, attempt_number=1, auth_session_id="as-1"
        )
        start = Start(
            attempt_id="attempt-1",
            project_dir=str(self.path),
            api=api,
            parameters=None,
            context=context,
            log_path=str(self.path.parent / "logs" / f"{function}.jsonl"),
            runtime="intuned" if self.runtime == "intuned" else "intunedd",
            function=function,
            **fields,
        )
        done, _ = await self.worker.run(start)
        return done

    async def create(self, **fields: Any) -> Done:
        return await self.run("auth-create", auth_parameters=self.site.credentials, **fields)

    async def check(self, state: Any) -> Done:
        return await self.run("auth-check", auth_state=state, auth_parameters=self.site.credentials)


@asynccontextmanager
async def _project(
    nursery: trio.Nursery, runtime: tuple[str, str], root: Path, site: LoginSite
) -> AsyncIterator[Project]:
    name, python = runtime
    worker = await WorkerClient.spawn(nursery, python=python)
    await worker.wait_ready()
    yield Project(worker, name, make_project(root / "auth", PROJECT), site)
    assert await worker.close() == 0


@pytest.fixture
async def project(
    nursery: trio.Nursery, runtime: tuple[str, str], tmp_path: Path, site: LoginSite
) -> AsyncIterator[Project]:
    async with _project(nursery, runtime, tmp_path, site) as project:
        yield project


@pytest.fixture
async def own(nursery: trio.Nursery, tmp_path: Path, site: LoginSite) -> AsyncIterator[Project]:
    """A project on intunedd's own path, for what Intuned's runtime decides itself."""
    async with _project(nursery, ("intunedd", sys.executable), tmp_path, site) as project:
        yield project


def _items(entries: list[dict[str, Any]], origin: str, key: str) -> dict[str, str]:
    return {item["name"]: item["value"] for entry in entries if entry["origin"] == origin for item in entry[key]}


async def test_create_captures_cookie_and_storage(project: Project) -> None:
    done = await project.create()
    assert done.success, done.error
    session, url = done.session, project.site.url
    sid = {c["name"]: c["value"] for c in session["cookies"]}["sid"]
    assert _items(session["origins"], url, "localStorage") == {"token": f"tok-{sid}"}
    assert _items(session["sessionStorage"], url, "sessionStorage") == {"tab": f"tab-{sid}"}
    assert project.site.logins == 1


async def test_check_is_true_only_with_a_live_session(project: Project) -> None:
    created = await project.create()
    assert created.success, created.error
    for state, expected in ((created.session, True), (EMPTY_STATE, False)):
        done = await project.check(state)
        assert (done.success, done.result) == (True, expected), done.error
    project.site.expire_all()
    done = await project.check(created.session)
    assert (done.success, done.result) == (True, False), done.error


async def test_an_api_with_the_state_is_logged_in(project: Project) -> None:
    created = await project.create()
    assert created.success, created.error
    sid = {c["name"]: c["value"] for c in created.session["cookies"]}["sid"]
    done = await project.run("api", auth_state=created.session, auth_parameters=project.site.credentials)
    assert done.success, done.error
    assert done.result == {
        "user": "alice",
        "token": f"tok-{sid}",
        "tab": f"tab-{sid}",
        "parameters": project.site.credentials,
        "authSessionId": "as-1",
    }
    assert done.session is None


async def test_the_setup_context_hook_runs_before_auth_functions(project: Project) -> None:
    hook = """
        import json
        from pathlib import Path

        async def setup_context(*, cdp_url, api_name, api_parameters):
            with Path("hook-calls.jsonl").open("a") as calls:  # the function runs in the project directory
                calls.write(json.dumps([api_name, api_parameters]) + "\\n")
    """
    make_project(project.path, {"hooks/setup_context.py": hook})
    created = await project.create()
    assert created.success, created.error
    checked = await project.check(created.session)
    assert (checked.success, checked.result) == (True, True), checked.error
    calls = [json.loads(line) for line in (project.path / "hook-calls.jsonl").read_text().splitlines()]
    assert calls == [["auth-sessions/create", project.site.credentials], ["auth-sessions/check", None]]


async def test_wrong_credentials_fail_create(project: Project) -> None:
    wrong = {**project.site.credentials, "password": "nope"}
    done = await project.run("auth-create", auth_parameters=wrong)
    assert not done.success and done.error is not None and done.session is None
    assert (done.error.code, done.error.message) == ("script-execution-exception", "login failed")
    assert project.site.logins == 0


@pytest.mark.parametrize("check", ["not_bool", "raises"])
async def test_a_check_that_returns_no_bool_or_raises_fails(project: Project, check: str) -> None:
    make_project(project.path, {"auth-sessions/check.py": CHECKS[check]})
    done = await project.check(EMPTY_STATE)
    assert not done.success and done.error is not None
    assert done.error.code == "script-execution-exception"
    if check == "not_bool":
        assert "must return a bool, it returned str" in done.error.message and not done.error.retryable
    else:
        assert done.error.message == "check broke"


async def test_check_may_be_named_automation(own: Project) -> None:
    make_project(own.path, {"auth-sessions/check.py": CHECKS["named_automation"]})
    done = await own.check(None)
    assert (done.success, done.result) == (True, True), done.error


async def test_a_missing_auth_file_is_an_unexpected_error(own: Project) -> None:
    (own.path / "auth-sessions" / "create.py").unlink()
    done = await own.create()
    assert done.error is not None
    assert (done.error.code, done.error.retryable) == ("script-unexpected-error", False)
    assert "auth-sessions/create.py" in done.error.message


async def test_a_malformed_state_is_an_unexpected_error(own: Project) -> None:
    done = await own.check({"cookies": [{"name": "sid"}]})
    assert done.error is not None
    assert (done.error.code, done.error.retryable) == ("script-unexpected-error", False)
    assert "auth_state" in done.error.message


async def test_a_session_bigger_than_a_result_may_be_is_too_big(own: Project) -> None:
    done = await own.create(max_result_bytes=64)
    assert done.error is not None and done.error.code == "result-too-big-error"
    assert done.error.details["maxSizeInBytes"] == 64 and done.session is None


async def test_get_auth_session_parameters_without_a_session_fails(own: Project) -> None:
    done = await own.run("api")
    assert done.error is not None and done.error.code == "script-execution-exception"
    assert "no AuthSession" in done.error.message
