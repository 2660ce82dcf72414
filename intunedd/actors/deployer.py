"""The deployer actor: turns an uploaded archive into a new project version.

Deploys are serialised here (each takes the next version number) and kept off the runner's
command loop, so a large archive never holds up submits and cancels. Unpacking and reading
the project run in a thread; its Python environment is found or built by uv in a subprocess,
with ``project.deploy.*`` events saying how far it got; the version and its jobs-as-code commit
in one transaction; then the runner hears of the version (and of JobRuns whose code job was
removed) and the scheduler of every job that changed. A deploy refused at any step leaves no
trace: the previous version keeps serving.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any, NoReturn

import msgspec
import trio

from .. import projects
from ..clock import Clock, iso
from ..config import Settings
from ..environments.builder import BuildError
from ..environments.declared import DeclarationError
from ..environments.service import Environments, Prepared
from ..errors import ApiError, BadRequest, disk_full, from_store
from ..messages import BusCommand, DeployOutcome, Event, ProjectVersion, Publish, Reply, ReplySlot, answer
from ..secrets import SecretBox
from ..store import deploys, queries
from ..store.errors import StoreError
from ..workers.sandbox import share_project
from .job_control import JobChanged, check_apis
from .runner import RunnerHandle
from .store import StoreHandle

log = logging.getLogger(__name__)
INBOX_SIZE = 4  # each command holds a whole archive in memory


class _Deploy(msgspec.Struct, frozen=True):
    name: str
    archive: bytes
    reply: ReplySlot


class DeployerHandle:
    def __init__(self, inbox: trio.MemorySendChannel[_Deploy]) -> None:
        self._inbox = inbox

    async def deploy(self, name: str, archive: bytes) -> DeployOutcome:
        send, receive = trio.open_memory_channel[Reply[Any]](1)
        async with receive:
            await self._inbox.send(_Deploy(name, archive, send))
            return (await receive.receive()).unwrap()  # type: ignore[no-any-return]


class _Deployer:
    def __init__(
        self,
        store: StoreHandle,
        runner: RunnerHandle,
        settings: Settings,
        clock: Clock,
        job_changed: JobChanged,
        events: trio.MemorySendChannel[BusCommand],
        secrets: SecretBox,
    ) -> None:
        self.store = store
        self.secrets = secrets  # seals the parameters of sessions-as-code
        self.runner = runner
        self.settings = settings
        self.clock = clock
        self.job_changed = job_changed
        self.events = events
        self.environments = Environments(settings)

    async def _publish(self, name: str, version: int, step: str, **data: Any) -> None:
        event = Event(
            type=f"project.deploy.{step}", at=iso(self.clock.now()), project=name, data={"version": version, **data}
        )
        await self.events.send(Publish(events=[event]))

    async def _environment(self, name: str, version: int, directory: Path) -> Prepared:
        async def progress(step: str) -> None:
            await self._publish(name, version, step)

        try:
            return await self.environments.prepare(directory, progress)
        except DeclarationError as e:
            raise BadRequest(str(e), details={"field": "dependencies"}) from e
        except BuildError as e:
            raise BadRequest(
                f"the project's dependencies cannot be installed: {e}", details={"field": "dependencies"}
            ) from e

    async def deploy(self, name: str, archive: bytes) -> DeployOutcome:
        try:
            name = projects.check_name(name)
        except projects.ProjectError as e:
            raise BadRequest(str(e), details={"field": "projectName"}) from e
        version = await self.store.read(queries.next_project_version, name)
        directory = self.settings.projects_path / name / str(version)
        try:
            prepared = await trio.to_thread.run_sync(projects.prepare_project, archive, directory, self.settings.deploy)
            await trio.to_thread.run_sync(share_project, directory, self.settings.pool.worker_user)
            for job_id, spec in prepared.code_jobs.items():
                try:
                    check_apis(None, name, spec, prepared.apis)
                except BadRequest as e:
                    e.details = {**e.details, "file": f"intuned-resources/jobs/{job_id}"}
                    raise
            prepared_env = await self._environment(name, version, directory)
        except projects.ProjectError as e:
            await trio.to_thread.run_sync(_remove, directory)
            # Unpacking onto a full disk is not the archive's fault: a 503, retried later.
            raise disk_full(e) or BadRequest(str(e), details={"field": "archive"}) from e
        except BaseException as e:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(_remove, directory)
                if isinstance(e, ApiError):
                    await self._publish(name, version, "failed", message=str(e))
            raise
        project = ProjectVersion(
            name=name,
            version=version,
            path=str(directory),
            apis=prepared.apis,
            api_access=prepared.settings.api_access.enabled,
            max_concurrent=prepared.settings.replication.concurrency,
            deployed_at=iso(self.clock.now()),
            default_sink=prepared.settings.default_sink,
            environment=prepared_env.environment,
            auth_required=prepared.settings.auth_sessions.enabled,
        )
        changed, to_terminate = await self.store.write(
            deploys.record,
            project,
            prepared.raw_settings,
            prepared.code_jobs,
            self.secrets,
            prepared.code_auth_sessions,
        )
        await self.runner.project_deployed(project, to_terminate)
        for job_id in changed:
            self.job_changed(name, job_id)
        outcome = DeployOutcome(
            project=project, warnings=list(prepared_env.warnings), environment_reused=prepared_env.reused
        )
        await self._publish(name, version, "ready", environment=project.environment, warnings=outcome.warnings)
        return outcome

    async def handle(self, command: _Deploy) -> None:
        try:
            answer(command.reply, Reply(value=await self.deploy(command.name, command.archive)))
        except ApiError as e:
            answer(command.reply, Reply(error=e))
        except StoreError as e:
            answer(command.reply, Reply(error=from_store(e)))
        except Exception as e:  # noqa: BLE001 - one deploy's failure must not end the actor
            log.exception("deploy of %r failed", command.name)
            answer(command.reply, Reply(error=disk_full(e) or ApiError("Internal server error")))


def _remove(directory: Path) -> None:
    shutil.rmtree(directory, ignore_errors=True)


async def run_deployer(
    store: StoreHandle,
    runner: RunnerHandle,
    settings: Settings,
    job_changed: JobChanged,
    events: trio.MemorySendChannel[BusCommand],
    *,
    clock: Clock,
    secrets: SecretBox,
    task_status: trio.TaskStatus[DeployerHandle] = trio.TASK_STATUS_IGNORED,
) -> NoReturn:
    deployer = _Deployer(store, runner, settings, clock, job_changed, events, secrets)
    for folder in await trio.to_thread.run_sync(projects.remove_partial_deploys, settings.projects_path):
        log.info("removed %s, left by a deploy the daemon did not finish", folder)
    send, receive = trio.open_memory_channel[_Deploy](INBOX_SIZE)
    async with receive:
        task_status.started(DeployerHandle(send))
        async for command in receive:
            await deployer.handle(command)
    raise AssertionError("deployer inbox closed")
