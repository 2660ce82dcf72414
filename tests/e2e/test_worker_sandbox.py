"""Workers run as ``pool.worker_user``: an automation cannot read the daemon's database or list its
state directory, does not inherit the daemon's environment, and cannot get the database served by
replacing its own log with a link to it; a normal run still leaves a downloadable log, trace and
video."""

from __future__ import annotations

import os
import pwd
import subprocess
import sys
import tempfile
import zipfile
from io import BytesIO
from pathlib import Path
from typing import Any

import httpx
import pytest

from .conftest import Daemon, DaemonFactory

pytestmark = pytest.mark.e2e

WORKER_USER = "intunedd-worker"
SECRET_VARIABLE = "AWS_SECRET_ACCESS_KEY"
SQLITE_MAGIC = b"SQLite format 3"

APIS = {
    "api/probe.py": """
        import os

        def attempt(action):
            try:
                action()
                return "allowed"
            except OSError as e:
                return type(e).__name__

        def read(path):
            with open(path, "rb") as f:
                f.read(16)

        async def automation(page, params, **kwargs):
            print("hello from the sandbox")
            await page.set_content("<title>sandboxed</title>")
            return {
                "uid": os.getuid(),
                "cwd": os.getcwd(),
                "relative": attempt(lambda: read("../../../intunedd.db")),
                "absolute": attempt(lambda: read(params["db"])),
                "wal": attempt(lambda: read(params["db"] + "-wal")),
                "state": attempt(lambda: os.listdir(params["state"])),
                "projects": attempt(lambda: os.listdir(params["state"] + "/projects")),
                "artifacts": attempt(lambda: os.listdir(params["state"] + "/artifacts")),
                "secret_variable": params["variable"] in os.environ,
            }
    """,
    "api/swap_log.py": """
        import os

        async def automation(page, params, **kwargs):
            # The attempt's log is open in this process: find it, and leave a link to the database
            # in its place for the daemon to serve.
            for fd in os.listdir("/proc/self/fd"):
                target = os.readlink(f"/proc/self/fd/{fd}")
                if target.endswith("/log.jsonl"):
                    os.unlink(target)
                    os.symlink(params["db"], target)
                    return target
            raise RuntimeError("no attempt log open")
    """,
}


def _worker_can_run_python(user: pwd.struct_passwd) -> bool:
    try:
        check = subprocess.run(
            [sys.executable, "-c", "import intunedd.workers.child"],
            user=user.pw_uid, group=user.pw_gid, extra_groups=[], cwd="/", capture_output=True, timeout=60,
        )  # fmt: skip
    except PermissionError:  # exec refused: the interpreter is out of its reach
        return False
    return check.returncode == 0


@pytest.fixture(scope="module")
def worker() -> pwd.struct_passwd:
    if os.geteuid() != 0:
        pytest.skip("running workers as another user needs root (CI runs the e2e tests as root)")
    try:
        user = pwd.getpwnam(WORKER_USER)
    except KeyError:
        # scripts/install creates it when run as root; be robust when it was not.
        subprocess.run(
            ["useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
             "--shell", "/usr/sbin/nologin", WORKER_USER],
            check=True, timeout=60,
        )  # fmt: skip
        user = pwd.getpwnam(WORKER_USER)
    if not _worker_can_run_python(user):
        pytest.skip(f"{WORKER_USER} cannot run {sys.executable} (a folder above it is private, e.g. /root)")
    return user


@pytest.fixture(scope="module")
def sandboxed(
    worker: pwd.struct_passwd, daemon_factory: DaemonFactory, tmp_path_factory: pytest.TempPathFactory
) -> Daemon:
    # pytest keeps its temporary folders 0700; the worker must traverse them to its project folder.
    base = tmp_path_factory.getbasetemp()  # under xdist one level deeper: …/pytest-N/popen-gwK
    top = Path(tempfile.gettempdir())
    for folder in [base, *base.parents]:
        if folder == top or top not in folder.parents:
            break
        folder.chmod(folder.stat().st_mode | 0o001)
    os.environ[SECRET_VARIABLE] = "sandbox-test-secret"
    try:
        daemon = daemon_factory(pool__worker_user=WORKER_USER, runs__record_video=True)
    finally:
        del os.environ[SECRET_VARIABLE]
    daemon.deploy("sandbox", APIS)
    return daemon


def _params(daemon: Daemon) -> dict[str, Any]:
    state = daemon.state_dir.resolve()
    return {"db": str(state / "intunedd.db"), "state": str(state), "variable": SECRET_VARIABLE}


def _run(daemon: Daemon, api: str) -> tuple[dict[str, Any], dict[str, Any]]:
    body = {"api": api, "parameters": _params(daemon), "retry": {"maximumAttempts": 1}}
    run_id = daemon.start_run("sandbox", body)
    result = daemon.wait_for("sandbox", run_id)
    assert result["status"] == "completed", result
    return result, daemon.detail("sandbox", run_id)["attempts"][0]


def test_automation_cannot_reach_the_daemons_secrets(sandboxed: Daemon, worker: pwd.struct_passwd) -> None:
    result, _ = _run(sandboxed, "probe")
    seen = result["result"]
    assert seen["uid"] == worker.pw_uid
    assert Path(seen["cwd"]).parent.parent == sandboxed.state_dir.resolve() / "projects"
    assert seen["relative"] == "PermissionError"
    assert seen["absolute"] == "PermissionError"
    assert seen["wal"] in {"PermissionError", "FileNotFoundError"}
    assert seen["state"] == "PermissionError"
    assert seen["projects"] == "PermissionError"
    assert seen["artifacts"] == "PermissionError"
    assert seen["secret_variable"] is False


def test_sandboxed_run_keeps_its_log_trace_and_video(sandboxed: Daemon) -> None:
    _, attempt = _run(sandboxed, "probe")
    log = httpx.get(attempt["logUrl"], timeout=30)
    assert log.status_code == 200
    assert "hello from the sandbox" in log.text
    trace = httpx.get(attempt["traceUrl"], timeout=30)
    assert trace.status_code == 200
    assert zipfile.ZipFile(BytesIO(trace.content)).namelist()
    video = httpx.get(attempt["videoUrl"], timeout=30)
    assert video.status_code == 200
    assert video.content[:4] == b"\x1a\x45\xdf\xa3"  # the EBML magic of a WebM file


def test_log_swapped_for_a_link_to_the_database_is_not_served(sandboxed: Daemon) -> None:
    result, attempt = _run(sandboxed, "swap_log")
    assert Path(result["result"]).is_symlink()
    log = httpx.get(attempt["logUrl"], timeout=30)
    assert SQLITE_MAGIC not in log.content
    assert log.status_code == 404
