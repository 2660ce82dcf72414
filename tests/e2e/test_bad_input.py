"""Bad input gets a 4xx with Intuned's error body naming the field, and nothing is lost."""

from __future__ import annotations

import httpx
import pytest

from .conftest import Daemon, api_error

pytestmark = pytest.mark.e2e

ECHO = {"api/echo.py": "async def automation(page, params, **kwargs):\n    return params\n"}


@pytest.fixture(scope="module")
def project(daemon: Daemon) -> str:
    daemon.deploy("bad-input", ECHO)
    return "bad-input"



@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (b"{not json", "body"),
        (b"", "body"),
        (b'{"parameters": {}}', "api"),
        (b'{"api": "echo"}', "parameters"),
        (b'{"api": 5, "parameters": {}}', "api"),
        (b'{"api": "echo", "parameters": []}', "parameters"),
        (b'{"api": "echo", "parameters": {}, "requestTimeout": "soon"}', "requestTimeout"),
        (b'{"api": "echo", "parameters": {}, "requestTimeout": 0}', "requestTimeout"),
        (b'{"api": "echo", "parameters": {}, "retry": {"maximumAttempts": 0}}', "retry.maximumAttempts"),
        (b'{"api": "echo", "parameters": {}, "proxy": "not a url"}', None),
        (b'{"api": "missing", "parameters": {}}', "api"),
    ],
)
def test_bad_run_start_body(daemon: Daemon, project: str, payload: bytes, field: str | None) -> None:
    with daemon.client() as c:
        response = c.post(daemon.path(project, "/run/start"), content=payload)
    body = api_error(response, 400)
    assert body["code"] == "bad-request"
    assert body["category"] == "user"
    if field is not None:
        assert body["details"]["field"] == field


def test_missing_and_wrong_key(daemon: Daemon, project: str) -> None:
    path = daemon.path(project, "/run/start")
    assert api_error(httpx.post(daemon.url + path, json={}), 401)["details"]["field"] == "x-api-key"
    wrong = httpx.post(daemon.url + path, json={}, headers={"x-api-key": "ind_wrong"})
    assert api_error(wrong, 401)["code"] == "unauthorized"


def test_wrong_workspace(daemon: Daemon, project: str) -> None:
    with daemon.client() as c:
        response = c.post(f"/api/v1/workspace/not-mine/projects/{project}/run/start", json={})
    assert api_error(response, 403)["details"]["field"] == "workspaceId"


def test_unknown_project_and_run(daemon: Daemon, project: str) -> None:
    with daemon.client() as c:
        assert api_error(c.post(daemon.path("nope", "/run/start"), json={"api": "x", "parameters": {}}), 404)
        assert api_error(c.get(daemon.path(project, "/run/AAAAAAAAAAAAAAAAAAAAA/result")), 404)
        assert api_error(c.get("/api/v1/nothing-here"), 404)


def test_huge_body_is_refused(daemon: Daemon, project: str) -> None:
    huge = b'{"api": "echo", "parameters": {"x": "' + b"a" * (51 * 1024 * 1024) + b'"}}'
    with daemon.client() as c:
        assert api_error(c.post(daemon.path(project, "/run/start"), content=huge), 413)["details"]["field"] == "body"


def test_bad_deploy_archive(daemon: Daemon) -> None:
    with daemon.client() as c:
        response = c.post(daemon.path("broken", "/deploy"), content=b"not a tarball")
    assert api_error(response, 400)["details"]["field"] == "archive"


def test_accepted_runs_survive_bad_input(daemon: Daemon, project: str) -> None:
    run_id = daemon.start_run(project, {"api": "echo", "parameters": {"kept": True}})
    with daemon.client() as c:
        c.post(daemon.path(project, "/run/start"), content=b"{garbage")
    assert daemon.wait_for(project, run_id)["result"] == {"kept": True}
