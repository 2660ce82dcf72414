"""``intunedd dev run api``: a project folder's API run once on this host, as a user runs it."""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest

from intunedd.harness import INTUNEDD
from tests.login_site import AUTH_FILES, LoginSite

pytestmark = pytest.mark.e2e

HELLO = """
import six
from intuned_runtime import extend_payload, persistent_store


async def automation(page, params, **_kwargs):
    await page.set_content("<h1>hello</h1>")
    print("printed by the automation")
    extend_payload({"api": "hello", "parameters": {"next": True}})
    runs = (await persistent_store.get("runs")) or 0
    await persistent_store.set("runs", runs + 1)
    return {"heading": await page.inner_text("h1"), "runs": runs + 1, "params": params, "six": six.PY3}
"""


PRIVATE = """
async def automation(page, params, **_kwargs):
    await page.goto(params["url"] + "/private")
    user = page.locator("#user")
    return await user.text_content() if await user.count() else None
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("project")
    (folder / "api").mkdir()
    (folder / "api" / "hello.py").write_text(textwrap.dedent(HELLO))
    (folder / "requirements.txt").write_text("six\n")
    defaults = folder / ".parameters" / "api" / "hello"
    defaults.mkdir(parents=True)
    (defaults / "default.json").write_text('{"from": "default.json"}')
    return folder


def _dev_run(project: Path, state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return _dev_run_command(project, state, "api", *args)


def _dev_run_command(project: Path, state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*INTUNEDD, "--json", "dev", "run", *args, "--state-dir", str(state)],
        cwd=project, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def _json(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    return dict(json.loads(done.stdout))


def test_dev_run_prints_result_log_and_extended_payloads_and_keeps_the_store(project: Path, tmp_path: Path) -> None:
    first = _dev_run(project, tmp_path, "hello")
    assert first.returncode == 0, first.stderr
    out = _json(first)
    assert out["result"] == {"heading": "hello", "runs": 1, "params": {"from": "default.json"}, "six": True}
    assert "printed by the automation" in out["log"]
    assert out["extendedPayloads"] == [{"api": "hello", "parameters": {"next": True}}]
    assert out["environment"]["environment"]["runtime"] == "intunedd"
    second = _json(_dev_run(project, tmp_path, "hello", '{"given": 1}', "--trace"))
    assert (second["result"]["runs"], second["result"]["params"]) == (2, {"given": 1})
    assert Path(second["trace"][0]).stat().st_size > 0


def test_dev_run_of_a_missing_api_fails_with_its_reason(project: Path, tmp_path: Path) -> None:
    done = _dev_run(project, tmp_path, "nope")
    assert done.returncode == 1
    assert _json(done)["error"]["code"] == "script-unexpected-error"


def test_dev_run_refuses_params_that_are_not_json(project: Path, tmp_path: Path) -> None:
    done = _dev_run(project, tmp_path, "hello", "{not json")
    assert done.returncode == 2 and "not JSON" in done.stderr


def test_dev_run_authsession_create_validate_and_an_api_that_uses_it(tmp_path_factory: pytest.TempPathFactory) -> None:
    project = tmp_path_factory.mktemp("auth-project")
    for name, text in {**AUTH_FILES, "api/private.py": PRIVATE}.items():
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text(textwrap.dedent(text))
    state = tmp_path_factory.mktemp("auth-state")
    with LoginSite.serving() as site:
        (project / "login.json").write_text(json.dumps(site.credentials))
        created = _dev_run_command(project, state, "authsession", "create", "me", "@login.json")
        assert created.returncode == 0, created.stderr
        stored = json.loads((project / "auth-sessions-instances" / "me" / "auth-session.json").read_text())
        assert [c["name"] for c in stored["cookies"]] == ["sid"]
        assert _json(_dev_run_command(project, state, "authsession", "validate", "me"))["valid"] is True
        site.expire_all()
        logins = site.logins
        revalidated = _json(_dev_run_command(project, state, "authsession", "validate", "me"))
        assert revalidated["valid"] is True and site.logins == logins + 1
        used = _dev_run_command(project, state, "api", "private", json.dumps({"url": site.url}), "--auth-session", "me")
        assert _json(used)["result"] == "alice", used.stderr
        refused = _dev_run_command(project, state, "authsession", "validate", "me", "--no-auto-recreate")
        assert refused.returncode == 0  # still valid: nothing expired since
