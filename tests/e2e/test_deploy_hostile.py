"""Hostile deploy archives against the real daemon: each is a 400 naming the problem, nothing is
left on disk, the daemon stays healthy throughout, and a normal deploy and run still work."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from ..hostile_archives import hostile_cases, many_members
from .conftest import Daemon, DaemonFactory

pytestmark = pytest.mark.e2e

ECHO = {"api/echo.py": "async def automation(page, params, **kwargs):\n    return params\n"}
HEALTH_BOUND_S = 5.0


@pytest.fixture(scope="module")
def hostile(daemon_factory: DaemonFactory) -> Iterator[Daemon]:
    daemon = daemon_factory()
    yield daemon
    daemon.stop()


def _healthy(daemon: Daemon) -> None:
    started = time.monotonic()
    assert httpx.get(f"{daemon.url}/health", timeout=HEALTH_BOUND_S).status_code == 200, daemon.log_tail()
    assert time.monotonic() - started < HEALTH_BOUND_S


@pytest.mark.parametrize(("name", "build", "phrase"), list(hostile_cases()), ids=lambda v: v)
def test_hostile_archive_is_a_400(hostile: Daemon, name: str, build: Callable[[], bytes], phrase: str) -> None:
    with hostile.client() as c:
        response = c.post(hostile.path("hostile", "/deploy"), content=build(), timeout=120)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["details"]["field"] == "archive"
    assert phrase in body["message"]
    _healthy(hostile)
    folder = hostile.state_dir / "projects" / "hostile"
    assert not folder.exists() or list(folder.iterdir()) == []


def test_health_answers_while_a_large_archive_is_refused(hostile: Daemon) -> None:
    archive = many_members(100_000)
    answered: list[httpx.Response] = []

    def deploy() -> None:
        with hostile.client() as c:
            answered.append(c.post(hostile.path("hostile", "/deploy"), content=archive, timeout=120))

    thread = threading.Thread(target=deploy)
    thread.start()
    try:
        while thread.is_alive():
            _healthy(hostile)
            time.sleep(0.05)  # pacing between probes, not synchronisation
    finally:
        thread.join(timeout=120)
    assert [r.status_code for r in answered] == [400]


def test_a_normal_deploy_and_run_still_work(hostile: Daemon) -> None:
    deployed = hostile.deploy("hostile", ECHO)
    assert deployed["projectName"] == "hostile"
    run_id = hostile.start_run("hostile", {"api": "echo", "parameters": {"after": "hostile"}})
    result = hostile.wait_for("hostile", run_id)
    assert result["status"] == "completed", result
    assert result["result"] == {"after": "hostile"}
    assert [p.name for p in (hostile.state_dir / "projects" / "hostile").iterdir()] == [str(deployed["version"])]
