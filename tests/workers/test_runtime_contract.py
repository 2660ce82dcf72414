"""Attempts run through Intuned's own, unmodified ``intuned-runtime`` by the real worker child.

Intuned's runtime needs Python >= 3.12, so the worker child runs in a 3.12+ environment built here
(once, cached in pytest's cache directory) with ``intuned-runtime`` and the daemon's versions of the
worker's dependencies, and intunedd's source made importable by a ``.pth`` file, as a per-project
environment does it.
"""

from __future__ import annotations

import fcntl
import glob
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import zipfile
from functools import partial
from pathlib import Path
from typing import Any

import hypercorn.config
import hypercorn.trio
import pytest
import trio

from intunedd.config import PoolSettings
from intunedd.functions_token import expiring, mint
from intunedd.workers.protocol import Abort, Done, Start
from tests.http.test_functions import NOW, SECRET, functions_app

from .test_child import ATTEMPT_TIMEOUT_S, WorkerClient, make_project, make_start

pytestmark = pytest.mark.chromium

RUNTIME_VERSION = "1.3.49"
SOURCE_ROOT = Path(__file__).resolve().parents[2]
BUILD_TIMEOUT_S = 600
# What the worker child imports, at the daemon's versions (the rest of intunedd runs only in the daemon).
WORKER_DEPENDENCIES = (
    "playwright", "msgspec", "psutil", "beautifulsoup4", "python-dateutil", "jsonschema", "markdownify",
)  # fmt: skip

PROJECT = {
    "Intuned.json": '{"projectName": "rt", "authSessions": {"enabled": false}}',
    "api/title.py": """
        async def automation(page, params, **_kwargs):
            await page.set_content(f"<title>{params['title']}</title>")
            return {"title": await page.title()}
    """,
    "api/payloads.py": """
        import time
        from intuned_runtime import extend_payload, extend_timeout

        async def automation(page, params=None, **_kwargs):
            extend_payload({"api": "title", "parameters": {"title": "next"}})
            # The runtime sends at most one extend a minute, counted from its start: move its clock on
            # (for good: the process serves this attempt only).
            real = time.time
            time.time = lambda: real() + 120
            extend_timeout()
            print("payload extended")
            return "ok"
    """,
    "api/slow.py": """
        import asyncio
        from pathlib import Path

        async def automation(page, params=None, **_kwargs):
            Path("started").touch()  # the runtime runs in the project directory
            await asyncio.sleep(3600)
    """,
    "api/boom.py": """
        async def automation(page, params=None, **_kwargs):
            raise ValueError("boom")
    """,
    "api/stop.py": """
        from intuned_runtime import NonRetryableError

        async def automation(page, params=None, **_kwargs):
            raise NonRetryableError("stop here")
    """,
    "api/sync.py": """
        def automation(page, params=None, **_kwargs):
            return 1
    """,
    "api/count.py": """
        from intuned_runtime import persistent_store

        async def automation(page, params=None, **_kwargs):
            before = await persistent_store.get("count")
            await persistent_store.set("count", (before or 0) + 1)
            return {"before": before, "after": await persistent_store.get("count")}
    """,
    "api/crash.py": """
        import os

        async def automation(page, params=None, **_kwargs):
            print("going down", flush=True)
            os._exit(3)
    """,
    "api/cookie.py": """
        async def automation(page, params=None, **_kwargs):
            before = [c["name"] for c in await page.context.cookies()]
            await page.context.add_cookies([{"name": "seen", "value": "1", "url": "http://example.com"}])
            return before
    """,
    "api/big.py": """
        async def automation(page, params=None, **_kwargs):
            return "x" * 2048
    """,
}


def _python_312() -> str | None:
    candidates = [shutil.which(f"python3.{minor}") for minor in range(12, 16)]
    candidates += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.1[2-9]*/bin/python3.1[2-9]")))
    return next((c for c in candidates if c and _runs_312(c)), None)


def _runs_312(python: str) -> bool:
    """A pyenv shim is on PATH even where it has no such version to run, so try it."""
    probe = [python, "-c", "import sys; sys.exit(sys.version_info < (3, 12))"]
    return subprocess.run(probe, capture_output=True, timeout=30, check=False).returncode == 0


def _build(env: Path, python: str) -> None:
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    assert uv is not None, "uv is needed to build the runtime's environment"
    run_env = {**os.environ, "UV_SYSTEM_CERTS": "1"}
    subprocess.run([uv, "venv", "--python", python, str(env)], check=True, env=run_env, timeout=BUILD_TIMEOUT_S)
    pins = [f"{name}=={importlib.metadata.version(name)}" for name in WORKER_DEPENDENCIES]
    subprocess.run(
        [uv, "pip", "install", "--python", str(env / "bin" / "python"), f"intuned-runtime=={RUNTIME_VERSION}", *pins],
        check=True, env=run_env, timeout=BUILD_TIMEOUT_S,
    )  # fmt: skip
    purelib = subprocess.run(
        [str(env / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    (Path(purelib) / "intunedd_source.pth").write_text(f"{SOURCE_ROOT}\n")


@pytest.fixture(scope="session")
def runtime_python(request: pytest.FixtureRequest) -> str:
    """The Python of an environment with Intuned's runtime; built once per cache."""
    python = _python_312()
    if python is None:
        pytest.skip("no Python >= 3.12 on this host for Intuned's runtime")
    env = request.config.cache.mkdir(f"intuned-runtime-{RUNTIME_VERSION}")
    stamp = env / "built"
    # Each xdist worker has this session fixture: one builds while the others wait, or one would
    # delete the environment another is installing into.
    with (env.parent / f"{env.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not stamp.exists():
            shutil.rmtree(env)
            _build(env, python)
            stamp.write_text(python)
    return str(env / "bin" / "python")


@pytest.fixture
async def runtime_worker(nursery: trio.Nursery, runtime_python: str) -> Any:
    client = await WorkerClient.spawn(nursery, python=runtime_python)
    await client.wait_ready()
    yield client
    assert await client.close() == 0


def _start(tmp_path: Path, api: str, parameters: Any = None, **overrides: Any) -> Start:
    project = make_project(tmp_path / "rt", PROJECT)
    return make_start(project, api, parameters, runtime="intuned", **overrides)


def _log(start: Start) -> list[dict[str, Any]]:
    path = Path(start.log_path)
    return [json.loads(line) for line in path.read_text().splitlines() if line] if path.exists() else []


async def test_result_and_trace(runtime_worker: WorkerClient, tmp_path: Path) -> None:
    trace = tmp_path / "traces" / "a.zip"
    done, _ = await runtime_worker.run(_start(tmp_path, "title", {"title": "Hello"}, trace_path=str(trace)))
    assert done.success, done.error
    assert done.result == {"title": "Hello"}
    assert "trace.trace" in zipfile.ZipFile(trace).namelist()


async def test_attempts_run_one_after_another_on_fresh_browsers(runtime_worker: WorkerClient, tmp_path: Path) -> None:
    for title in ("one", "two"):
        done, _ = await runtime_worker.run(_start(tmp_path, "title", {"title": title}))
        assert done.success and done.result == {"title": title}, done.error
    for _ in range(2):
        done, _ = await runtime_worker.run(_start(tmp_path, "cookie"))
        assert done.success and done.result == [], done.error


async def test_extend_payload_and_extend_timeout(runtime_worker: WorkerClient, tmp_path: Path) -> None:
    start = _start(tmp_path, "payloads")
    done, extends = await runtime_worker.run(start)
    assert done.success, done.error
    assert [(p.api, p.parameters) for p in done.extended_payloads] == [("title", {"title": "next"})]
    assert extends == 1
    assert {"stream": "stdout", "message": "payload extended"}.items() <= _log(start)[0].items()


async def test_abort_stops_the_attempt(runtime_worker: WorkerClient, tmp_path: Path) -> None:
    start = _start(tmp_path, "slow")
    with trio.fail_after(ATTEMPT_TIMEOUT_S):
        await runtime_worker.send(start)
        await runtime_worker.send(Abort())
        frame = await runtime_worker.next_frame()
    assert isinstance(frame, Done) and frame.aborted and not frame.success
    # The worker still serves attempts afterwards.
    done, _ = await runtime_worker.run(_start(tmp_path, "title", {"title": "after"}))
    assert done.success, done.error


async def test_abort_while_running(runtime_worker: WorkerClient, tmp_path: Path) -> None:
    start = _start(tmp_path, "slow")
    with trio.fail_after(ATTEMPT_TIMEOUT_S):
        await runtime_worker.send(start)
        while not (Path(start.project_dir) / "started").exists():
            await trio.sleep(0.05)
    # Within the daemon's grace period, or the daemon would give up on the worker.
    with trio.fail_after(PoolSettings().abort_grace_s):
        await runtime_worker.send(Abort())
        frame = await runtime_worker.next_frame()
    assert isinstance(frame, Done) and frame.aborted


async def test_exception_is_script_execution_exception(runtime_worker: WorkerClient, tmp_path: Path) -> None:
    done, _ = await runtime_worker.run(_start(tmp_path, "boom"))
    assert not done.success and done.error is not None
    assert (done.error.code, done.error.message, done.error.retryable) == ("script-execution-exception", "boom", True)
    assert done.error.details["name"] == "ValueError" and "boom" in done.error.details["stack"]


async def test_non_retryable_error(runtime_worker: WorkerClient, tmp_path: Path) -> None:
    done, _ = await runtime_worker.run(_start(tmp_path, "stop"))
    assert done.error is not None
    assert (done.error.code, done.error.message, done.error.retryable) == (
        "script-execution-exception",
        "stop here",
        False,
    )


@pytest.mark.parametrize("api", ["missing", "sync"])
async def test_unrunnable_apis_are_unexpected_errors(runtime_worker: WorkerClient, tmp_path: Path, api: str) -> None:
    done, _ = await runtime_worker.run(_start(tmp_path, api))
    assert done.error is not None
    assert (done.error.code, done.error.retryable) == ("script-unexpected-error", False)


async def test_a_runtime_that_dies_without_done_is_no_valid_output(
    runtime_worker: WorkerClient, tmp_path: Path
) -> None:
    start = _start(tmp_path, "crash")
    done, _ = await runtime_worker.run(start)
    assert done.error is not None and done.error.code == "script-no-valid-output-received"
    assert "exit code 3" in done.error.message
    assert any(line.get("message") == "going down" for line in _log(start))


async def test_result_too_big(runtime_worker: WorkerClient, tmp_path: Path) -> None:
    done, _ = await runtime_worker.run(_start(tmp_path, "big", max_result_bytes=1024))
    assert done.error is not None and done.error.code == "result-too-big-error"
    assert done.error.details["maxSizeInBytes"] == 1024


@pytest.fixture
async def functions_domain(nursery: trio.Nursery, tmp_path: Path) -> str:
    """The daemon's HTTP app, with a real store, served on a free port."""
    config = hypercorn.config.Config()
    config.bind = ["127.0.0.1:0"]
    app = await functions_app(nursery, tmp_path)
    serve = partial(hypercorn.trio.serve, app, config, shutdown_trigger=trio.sleep_forever)
    binds: list[str] = await nursery.start(serve)
    return binds[0]


async def test_persistent_store_reaches_the_daemon(
    runtime_worker: WorkerClient, tmp_path: Path, functions_domain: str
) -> None:
    token = mint(SECRET, expiring("rt", "run-1", NOW, 3600))
    fields = {"functions_domain": functions_domain, "functions_token": token, "workspace_id": "ws"}
    results = []
    for _ in range(2):
        done, _ = await runtime_worker.run(_start(tmp_path, "count", **fields))
        assert done.success, done.error
        results.append(done.result)
    assert results == [{"before": None, "after": 1}, {"before": 1, "after": 2}]


async def test_persistent_store_with_a_bad_token_fails_the_attempt(
    runtime_worker: WorkerClient, tmp_path: Path, functions_domain: str
) -> None:
    token = mint(SECRET, expiring("another-project", "run-1", NOW, 3600))
    fields = {"functions_domain": functions_domain, "functions_token": token, "workspace_id": "ws"}
    done, _ = await runtime_worker.run(_start(tmp_path, "count", **fields))
    assert done.error is not None and done.error.code == "script-execution-exception"
    assert "403" in done.error.message
