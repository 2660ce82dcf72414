"""AuthSessions end to end: the daemon as users start it, real Chromium, a login site the test serves."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from intunedd.environments.interpreters import available
from tests.login_site import AUTH_FILES, LoginSite

from .conftest import Daemon, DaemonFactory, api_error

pytestmark = pytest.mark.e2e

PROJECT = {
    **AUTH_FILES,
    "api/rotate.py": """
        async def automation(page, params, **_kwargs):
            await page.goto(params["url"] + "/rotate-password")
            return "rotated"
    """,
    "api/hold.py": """
        async def automation(page, params, **_kwargs):
            await page.goto(params["url"] + "/held/private", timeout=120_000)
            return await page.locator("#user").count()
    """,
    "api/private.py": """
        from intuned_runtime import run_info

        async def automation(page, params, **_kwargs):
            await page.goto(params["url"] + "/private")
            user = page.locator("#user")
            return {
                "user": await user.text_content() if await user.count() else None,
                "token": await page.locator("#token").text_content(),
                "session": run_info().auth_session_id,
            }
    """,
}
TERMINAL = {"done", "failed", "canceled"}


@pytest.fixture(scope="module")
def site() -> Iterator[LoginSite]:
    with LoginSite.serving() as served:
        yield served


@pytest.fixture(scope="module")
def daemon(daemon_factory: DaemonFactory) -> Daemon:
    d = daemon_factory(pool__size=2)
    settings = {"authSessions": {"enabled": True, "type": "API"}, "replication": {"maxConcurrentRequests": 2}}
    d.deploy("auth", PROJECT, settings)
    return d


def _sessions(daemon: Daemon, rest: str = "") -> str:
    return daemon.path("auth", f"/auth-sessions{rest}")


def _operation(daemon: Daemon, start: str, result: str, body: dict[str, Any]) -> dict[str, Any]:
    with daemon.client() as c:
        started = c.post(_sessions(daemon, start), json=body)
        assert started.status_code == 201, started.text
        operation = started.json()["operationId"]
        deadline = time.monotonic() + 120
        while (answer := c.get(_sessions(daemon, result.format(op=operation))).json())["status"] not in TERMINAL:
            assert time.monotonic() < deadline, answer
            time.sleep(0.1)
    return dict(answer)


def _create(daemon: Daemon, session_id: str, parameters: dict[str, Any]) -> dict[str, Any]:
    return _operation(daemon, "/create", "/create/{op}/result", {"id": session_id, "parameters": parameters})


def _run(daemon: Daemon, site: LoginSite, session: dict[str, Any]) -> dict[str, Any]:
    run_id = daemon.start_run("auth", {"api": "private", "parameters": {"url": site.url}, "authSession": session})
    return daemon.wait_for("auth", run_id, timeout=180)


def test_a_created_session_logs_runs_in_and_its_secrets_stay_hidden(daemon: Daemon, site: LoginSite) -> None:
    created = _create(daemon, "alice", site.credentials)
    assert created == {"status": "done", "authSessionId": "alice"}
    result = _run(daemon, site, {"id": "alice"})
    assert result["status"] == "completed", result
    assert result["result"]["user"] == "alice" and result["result"]["token"].startswith("tok-")
    assert result["result"]["session"] == "alice"
    with daemon.client() as c:
        shown = c.get(_sessions(daemon, "/alice")).json()
        listed = c.get(_sessions(daemon)).text
    assert (shown["id"], shown["type"], shown["status"]) == ("alice", "CREDENTIALS", "READY")
    secret = site.credentials["password"]
    assert secret not in str(shown) and secret not in listed
    logs = "".join(p.read_text(errors="replace") for p in daemon.state_dir.rglob("*.jsonl"))
    assert secret not in logs and secret not in daemon.log_tail()
    assert secret.encode() not in (daemon.state_dir / "intunedd.db").read_bytes()


def test_each_validation_is_a_run_of_its_own_linked_to_the_run_it_served(daemon: Daemon, site: LoginSite) -> None:
    assert _create(daemon, "visible", site.credentials)["status"] == "done"
    site.expire_all()
    served = _run(daemon, site, {"id": "visible"})
    assert served["status"] == "completed", served
    with daemon.client() as c:
        listed = c.get(daemon.path("auth", "/runs"), params={"filter": "run_type=AUTH_SESSION", "limit": 500}).json()
    details = [daemon.detail("auth", r["id"]) for r in listed["items"]]
    mine = [r for r in details if r["parameters"].get("parentRunId") == served["runId"]]
    assert len(mine) == 1 and mine[0]["parameters"]["authSessionId"] == "visible"
    validation = mine[0]
    assert (validation["status"], validation["apiName"]) == ("completed", "auth-sessions/validate")
    # The stored state had expired: a failed check, then a creation and the check after it.
    assert [a["status"] for a in validation["attempts"]] == ["completed"] * len(validation["attempts"])
    assert len(validation["attempts"]) >= 3
    assert site.credentials["password"] not in str(validation)


def test_an_expired_session_is_recreated_once_for_twenty_runs(daemon: Daemon, site: LoginSite) -> None:
    assert _create(daemon, "shared", site.credentials)["status"] == "done"
    site.expire_all()
    before = site.logins
    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(lambda _: _run(daemon, site, {"id": "shared"}), range(20)))
    assert [r["status"] for r in results] == ["completed"] * 20
    assert {r["result"]["user"] for r in results} == {"alice"}
    assert site.logins == before + 1


def test_wrong_credentials_fail_the_creation_and_runs_on_it_are_canceled(daemon: Daemon, site: LoginSite) -> None:
    wrong = {**site.credentials, "password": "not-it"}
    failed = _operation(
        daemon, "/create", "/create/{op}/result", {"id": "wrong", "parameters": wrong, "createAttempts": 2}
    )
    assert failed["status"] == "failed" and failed["error"]["code"] == "create-attempts-failed"
    result = _run(daemon, site, {"id": "wrong", "createAttempts": 1, "checkAttempts": 1})
    assert result["status"] == "canceled"
    assert result["reason"]["type"] == "auth-session-validate-dependency-failed"
    with daemon.client() as c:
        assert c.get(_sessions(daemon, "/wrong")).json()["status"] == "EXPIRED"


def test_a_runtime_session_takes_its_credentials_with_the_run(daemon: Daemon, site: LoginSite) -> None:
    result = _run(daemon, site, {"id": "per-run", "runtimeInput": site.credentials})
    assert result["status"] == "completed" and result["result"]["user"] == "alice", result
    detail = daemon.detail("auth", result["runId"])
    assert site.credentials["password"] not in str(detail)


def test_a_session_that_does_not_exist_cancels_the_run(daemon: Daemon, site: LoginSite) -> None:
    result = _run(daemon, site, {"id": "nobody"})
    assert (result["status"], result["reason"]["type"]) == ("canceled", "auth-session-validate-dependency-failed")


def test_deleting_a_session_cancels_its_creation_and_the_run_waiting_on_it(daemon: Daemon, site: LoginSite) -> None:
    with site.holding():
        held = {**site.credentials, "url": site.url + "/held"}
        with daemon.client() as c:
            started = c.post(_sessions(daemon, "/create"), json={"id": "doomed", "parameters": held})
            operation = started.json()["operationId"]
        site.wait_held(1)  # the creation is logging in
        waiting = daemon.start_run(
            "auth", {"api": "private", "parameters": {"url": site.url}, "authSession": {"id": "doomed"}}
        )
        with daemon.client() as c:
            assert c.delete(_sessions(daemon, "/doomed")).status_code == 204
            answer = c.get(_sessions(daemon, f"/create/{operation}/result")).json()
        assert (answer["status"], answer["reason"]["message"]) == ("canceled", "The AuthSession was deleted")
        result = daemon.wait_for("auth", waiting, timeout=120)  # while the login page is still held
    assert (result["status"], result["reason"]["type"]) == ("canceled", "auth-session-validate-dependency-failed")
    assert result["reason"]["details"]["code"] == "auth-session-not-found"


def test_an_exclusive_run_is_refused_while_another_run_uses_its_session(daemon: Daemon, site: LoginSite) -> None:
    assert _create(daemon, "solo", site.credentials)["status"] == "done"
    with site.holding():
        shared = daemon.start_run(
            "auth", {"api": "hold", "parameters": {"url": site.url}, "authSession": {"id": "solo"}}
        )
        site.wait_held(1)  # the shared run is in its attempt, using the session
        refused = _run(daemon, site, {"id": "solo", "exclusive": True})
    assert (refused["status"], refused["reason"]["type"]) == ("canceled", "auth-session-already-in-use")
    assert "'solo'" in refused["reason"]["message"]
    assert daemon.wait_for("auth", shared, timeout=120)["status"] == "completed"
    alone = _run(daemon, site, {"id": "solo", "exclusive": True})
    assert alone["status"] == "completed" and alone["result"]["user"] == "alice", alone


def test_validate_rechecks_and_recreates_on_demand(daemon: Daemon, site: LoginSite) -> None:
    assert _create(daemon, "checked", site.credentials)["status"] == "done"
    site.expire_all()
    before = site.logins
    done = _operation(daemon, "/checked/validate/start", "/checked/validate/{op}/result", {})
    assert done["status"] == "done" and site.logins == before + 1


def test_a_run_of_an_auth_project_must_name_a_session(daemon: Daemon, site: LoginSite) -> None:
    with daemon.client() as c:
        refused = c.post(daemon.path("auth", "/run/start"), json={"api": "private", "parameters": {"url": site.url}})
    assert api_error(refused, 400)["details"]["field"] == "authSession"


def test_a_creation_cut_by_kill_9_finishes_after_the_restart(daemon_factory: DaemonFactory, site: LoginSite) -> None:
    d = daemon_factory(pool__size=1)
    d.deploy("auth", PROJECT, {"authSessions": {"enabled": True, "type": "API"}})
    with d.client() as c:
        started = c.post(_sessions(d, "/create"), json={"id": "killed", "parameters": site.credentials})
        operation = started.json()["operationId"]
        waiting = d.start_run(
            "auth", {"api": "private", "parameters": {"url": site.url}, "authSession": {"id": "killed"}}
        )
    d.kill9()
    d.start()
    deadline = time.monotonic() + 120
    with d.client() as c:
        while (answer := c.get(_sessions(d, f"/create/{operation}/result")).json())["status"] not in TERMINAL:
            assert time.monotonic() < deadline, answer
            time.sleep(0.1)
        assert answer == {"status": "done", "authSessionId": "killed"}
        assert c.get(_sessions(d, "/killed")).json()["status"] == "READY"
    result = d.wait_for("auth", waiting, timeout=180)
    assert result["status"] == "completed" and result["result"]["user"] == "alice", result
    with d.client() as c:
        validations = c.get(d.path("auth", "/runs"), params={"filter": "run_type=AUTH_SESSION"}).json()["items"]
    assert {r["status"] for r in validations} <= {"completed", "failed"}  # none left running by the kill


def test_a_job_run_uses_its_jobs_session(daemon: Daemon, site: LoginSite) -> None:
    assert _create(daemon, "for-jobs", site.credentials)["status"] == "done"
    body = {
        "id": "logged-in",
        "payload": [{"apiName": "private", "parameters": {"url": site.url}} for _ in range(3)],
        "configuration": {},
        "auth_session": {"id": "for-jobs"},
    }
    with daemon.client() as c:
        assert c.post(daemon.path("auth", "/jobs"), json=body).status_code == 201, "job create"
        job_run_id = c.post(daemon.path("auth", "/jobs/logged-in/trigger")).json()["jobRunId"]
        deadline = time.monotonic() + 180
        path = daemon.path("auth", f"/jobs/logged-in/runs/{job_run_id}")
        while (job_run := c.get(path).json()["jobRun"])["status"] not in {"COMPLETED", "FAILURE", "TERMINATED"}:
            assert time.monotonic() < deadline, job_run
            time.sleep(0.2)
        assert (job_run["status"], job_run["successful_runs"]) == ("COMPLETED", 3), job_run
        runs = c.get(daemon.path("auth", "/runs"), params={"filter": f"job_run_id={job_run_id}"}).json()["items"]
    users = {daemon.result("auth", r["id"])["result"]["user"] for r in runs}
    assert users == {"alice"}


RUNTIME_PYPROJECT = """
[project]
name = "auth"
version = "0.1.0"
requires-python = ">=3.12,<3.13"
dependencies = ["intuned-runtime", "intuned-browser"]
"""


def test_on_intuneds_runtime_a_session_is_created_checked_and_used(
    daemon_factory: DaemonFactory, site: LoginSite
) -> None:
    if not any(i.version >= (3, 12) for i in available([])):
        pytest.skip("no Python >= 3.12 on this host for Intuned's runtime: its path is not tested here")
    d = daemon_factory(pool__size=1)
    deployed = d.deploy("auth", {**PROJECT, "pyproject.toml": RUNTIME_PYPROJECT}, {"authSessions": {"enabled": True}})
    assert deployed["environment"]["runtime"] == "intuned"
    assert _create(d, "alice", site.credentials) == {"status": "done", "authSessionId": "alice"}
    site.expire_all()
    before = site.logins
    result = _run(d, site, {"id": "alice"})
    assert result["status"] == "completed" and result["result"]["user"] == "alice", result
    assert site.logins == before + 1


def test_a_job_of_an_auth_project_must_name_a_session(daemon: Daemon, site: LoginSite) -> None:
    body = {
        "id": "anonymous",
        "payload": [{"apiName": "private", "parameters": {"url": site.url}}],
        "configuration": {},
    }
    with daemon.client() as c:
        refused = c.post(daemon.path("auth", "/jobs"), json=body)
    assert api_error(refused, 400)["details"]["field"] == "auth_session"


def test_a_session_lost_mid_job_pauses_the_job_run_until_the_job_is_resumed(daemon: Daemon, site: LoginSite) -> None:
    assert _create(daemon, "mid-job", site.credentials)["status"] == "done"
    item = {"apiName": "private", "parameters": {"url": site.url}}
    body = {
        "id": "loses-its-login",
        # One at a time: the first item changes the password, so the next ones' session is lost.
        "payload": [{"apiName": "rotate", "parameters": {"url": site.url}}, item, item],
        "configuration": {"maxConcurrentRequests": 1},
        "auth_session": {"id": "mid-job", "checkAttempts": 1, "createAttempts": 1},
    }
    password = site.password
    with daemon.client() as c:
        assert c.post(daemon.path("auth", "/jobs"), json=body).status_code == 201
        try:
            job_run_id = c.post(daemon.path("auth", "/jobs/loses-its-login/trigger")).json()["jobRunId"]
            path = daemon.path("auth", f"/jobs/loses-its-login/runs/{job_run_id}")
            job_run = _job_run_until(c, path, {"PAUSED", "COMPLETED", "CANCELED", "TERMINATED"})
            assert (job_run["status"], job_run["reason"]["type"]) == ("PAUSED", "auth-session-invalid-mid-job")
        finally:
            site.password = password  # the user fixes the login (the stored credentials work again)
        assert c.post(daemon.path("auth", "/jobs/loses-its-login/resume")).status_code == 200
        job_run = _job_run_until(c, path, {"COMPLETED", "FAILURE", "TERMINATED"})
    assert (job_run["status"], job_run["successful_runs"]) == ("COMPLETED", 3), job_run


def test_a_job_run_whose_session_cannot_be_validated_is_canceled_before_any_item(
    daemon: Daemon, site: LoginSite
) -> None:
    wrong = {**site.credentials, "password": "not-it"}
    assert (
        _operation(daemon, "/create", "/create/{op}/result", {"id": "never", "parameters": wrong})["status"] == "failed"
    )
    body = {
        "id": "cannot-start",
        "payload": [{"apiName": "private", "parameters": {"url": site.url}}],
        "configuration": {},
        "auth_session": {"id": "never", "checkAttempts": 1, "createAttempts": 1},
    }
    with daemon.client() as c:
        assert c.post(daemon.path("auth", "/jobs"), json=body).status_code == 201
        job_run_id = c.post(daemon.path("auth", "/jobs/cannot-start/trigger")).json()["jobRunId"]
        path = daemon.path("auth", f"/jobs/cannot-start/runs/{job_run_id}")
        job_run = _job_run_until(c, path, {"CANCELED", "COMPLETED", "TERMINATED"})
        runs = c.get(daemon.path("auth", "/runs"), params={"filter": f"job_run_id={job_run_id}"}).json()["items"]
    assert (job_run["status"], job_run["reason"]["type"]) == ("CANCELED", "auth-session-validate-dependency-failed")
    assert [(r["status"], r["attemptsCount"]) for r in runs] == [("canceled", 0)]


def _job_run_until(c: Any, path: str, statuses: set[str]) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while (job_run := c.get(path).json()["jobRun"])["status"] not in statuses:
        assert time.monotonic() < deadline, job_run
        time.sleep(0.1)
    return dict(job_run)
