"""``intunedd dev run``: the project in a folder, run on this host, no daemon.

The same environment rules as a deploy (its dependencies installed by uv, on the path the
deploy would choose) and the same worker, started for this one command. ``persistent_store``
keeps its values in a JSON file per project under the state directory, so a value set by one dev
run is there for the next, as on a deployed project. AuthSessions live where Intuned's CLI keeps
them: ``auth-sessions-instances/<id>/auth-session.json`` (the storage state) and ``metadata.json``.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import trio

from .config import Settings
from .environments.builder import worker_env
from .environments.service import Environments, Prepared
from .workers import protocol
from .workers.attempt import AttemptOutcome, attempt_limits, run_attempt
from .workers.browser import worker_config
from .workers.process import Lease, Verdict, WorkerProcess, spawn_worker

Progress = Callable[[str], Awaitable[None]]
INSTANCES = "auth-sessions-instances"


class DevResult(msgspec.Struct, frozen=True):
    outcome: AttemptOutcome
    log_path: Path
    trace_path: Path | None


class FileKeyValue:
    """persistent_store for dev runs: one JSON object in a file, rewritten on every set."""

    def __init__(self, path: Path) -> None:
        self._path = path

    def _load(self) -> dict[str, Any]:
        try:
            data = json.loads(self._path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    async def get(self, key: str) -> Any:
        return self._load().get(key)

    async def set(self, key: str, value: Any) -> None:
        data = self._load()
        data[key] = value
        self._path.parent.mkdir(parents=True, exist_ok=True)
        self._path.write_text(json.dumps(data))


class DevWorker:
    """A worker in the project's environment for the attempts of one command (a new one after an
    attempt that left it unusable, a timeout say)."""

    def __init__(self, settings: Settings, project_dir: Path, prepared: Prepared) -> None:
        self.settings = settings
        self.project_dir = project_dir
        self.prepared = prepared
        self._worker: WorkerProcess | None = None
        self._returned, _ = trio.open_memory_channel[Verdict](1)
        self._attempts = 0

    async def ready(self) -> WorkerProcess:
        if self._worker is None:
            command = worker_env(self.settings.environments_path, self.prepared.environment).command
            self._worker = await spawn_worker(
                worker_config(self.settings.pool), {}, start_timeout_s=self.settings.pool.start_timeout_s,
                command=command,
            )  # fmt: skip
        return self._worker

    async def close(self) -> None:
        if self._worker is not None:
            await self._worker.close()

    async def run(self, api: str, parameters: Any, *, trace: bool, **fields: Any) -> DevResult:
        """One attempt of ``api`` (or, with ``function=``, of an auth-sessions file)."""
        self._attempts += 1
        run_dir = self.settings.artifacts_path / f"{api.replace('/', '-')}-{time.strftime('%Y%m%dT%H%M%S')}"
        run_dir.mkdir(parents=True, exist_ok=True)
        trace_path = run_dir / "trace.zip" if trace else None
        start = protocol.Start(
            attempt_id=f"dev/{self._attempts}",
            project_dir=str(self.project_dir),
            api=api,
            parameters=parameters,
            context=protocol.RunContext(
                run_id="dev",
                project_name=self.project_dir.name,
                api_name=api,
                attempt_number=self._attempts,
                auth_session_id=fields.pop("auth_session_id", None),
            ),  # fmt: skip
            log_path=str(run_dir / "log.jsonl"),
            trace_path=str(trace_path) if trace_path else None,
            headless=self.settings.pool.headless,
            max_result_bytes=self.settings.runs.max_result_bytes,
            limits=attempt_limits(self.settings.runs),
            runtime=self.prepared.environment.runtime if self.prepared.environment else "intunedd",
            **fields,
        )
        lease = Lease(await self.ready(), self._returned)
        outcome = await run_attempt(
            lease,
            start,
            timeout_s=self.settings.runs.default_request_timeout_s,
            abort_grace_s=self.settings.pool.abort_grace_s,
            kv=FileKeyValue(self.settings.state_path / "persistent-store" / f"{self.project_dir.name}.json"),
        )
        if not lease.verdict.reusable and self._worker is not None:
            await self._worker.kill(lease.verdict.reason)
            self._worker = None
        return DevResult(outcome, run_dir / "log.jsonl", trace_path)


@asynccontextmanager
async def dev_worker(settings: Settings, project_dir: Path, progress: Progress) -> AsyncIterator[DevWorker]:
    project_dir = project_dir.resolve()
    prepared = await Environments(settings).prepare(project_dir, progress)
    worker = DevWorker(settings, project_dir, prepared)
    try:
        await progress("starting the browser")
        await worker.ready()
        await progress("running")
        yield worker
    finally:
        await worker.close()


# -- auth sessions, kept in the project folder as Intuned's CLI keeps them ------------------------


class LocalSession(msgspec.Struct, frozen=True):
    state: Any
    parameters: Any


def load_session(project_dir: Path, session_id: str) -> LocalSession | None:
    folder = project_dir / INSTANCES / session_id
    try:
        state = json.loads((folder / "auth-session.json").read_text())
        metadata = json.loads((folder / "metadata.json").read_text())
    except (OSError, ValueError):
        return None
    return LocalSession(state, metadata.get("authSessionInput") if isinstance(metadata, dict) else None)


def save_session(project_dir: Path, session_id: str, state: Any, parameters: Any) -> None:
    folder = project_dir / INSTANCES / session_id
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC).isoformat()
    metadata_path = folder / "metadata.json"
    try:
        created = json.loads(metadata_path.read_text()).get("createdAt", now)
    except (OSError, ValueError, AttributeError):
        created = now
    (folder / "auth-session.json").write_text(json.dumps(state, indent=2))
    metadata = {"createdAt": created, "updatedAt": now, "authSessionInput": parameters,
                "authSessionId": session_id, "authSessionType": "API"}  # fmt: skip
    metadata_path.write_text(json.dumps(metadata, indent=2))


async def create_session(worker: DevWorker, session_id: str, parameters: Any, *, trace: bool) -> DevResult:
    done = await worker.run(
        "auth-sessions/create", None, trace=trace, function="auth-create", auth_parameters=parameters,
        auth_session_id=session_id,
    )  # fmt: skip
    if done.outcome.status == "completed" and done.outcome.session is not None:
        save_session(worker.project_dir, session_id, done.outcome.session, parameters)
    return done


async def check_session(worker: DevWorker, session_id: str, session: LocalSession, *, trace: bool) -> DevResult:
    return await worker.run(
        "auth-sessions/check", None, trace=trace, function="auth-check", auth_state=session.state,
        auth_parameters=session.parameters, auth_session_id=session_id,
    )  # fmt: skip
