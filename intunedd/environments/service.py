"""The deployer's view of environments: the one a freshly unpacked project version runs in."""

from __future__ import annotations

import logging
from importlib.metadata import version
from pathlib import Path

import msgspec
import trio

from ..config import Settings
from ..messages import ProjectEnvironment
from ..workers.sandbox import share_project
from ..workers.shim.intuned_browser.requirements import RUNTIME_REQUIREMENTS
from .builder import Builder, BuildError, Progress
from .declared import read_declared
from .index import index_config
from .interpreters import Interpreter, available
from .plan import INTUNED_RUNTIME_MIN, WorkerNeeds, plan

log = logging.getLogger(__name__)
# The worker's own imports on every path (it registers our intuned_browser at start, whichever
# path); on intunedd's own path also its Playwright, which the worker's code is written against.
NEEDS = WorkerNeeds(
    common=("msgspec", "psutil", *RUNTIME_REQUIREMENTS),
    playwright=f"playwright=={version('playwright')}",
)


class Prepared(msgspec.Struct, frozen=True):
    environment: ProjectEnvironment | None  # None: the daemon's own
    warnings: tuple[str, ...] = ()
    reused: bool = False


class Environments:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.root = settings.environments_path
        self._builder = Builder(self.root, settings.environments, index_config(settings.environments))
        self._interpreters: list[Interpreter] | None = None

    def directory(self, environment: ProjectEnvironment) -> Path:
        return self.root / environment.key

    async def interpreters(self, *, for_intuned_runtime: bool = False) -> list[Interpreter]:
        # Probed once, at the first deploy that needs them: each probe starts a Python.
        if self._interpreters is None:
            self._interpreters = await self._probe()
        if for_intuned_runtime and self.settings.environments.download_python and not _recent(self._interpreters):
            try:
                await self._builder.download_python(f"{INTUNED_RUNTIME_MIN[0]}.{INTUNED_RUNTIME_MIN[1]}")
            except BuildError as e:
                log.warning("could not download a Python for Intuned's runtime: %s", e)
            self._interpreters = await self._probe()
        return self._interpreters

    async def _probe(self) -> list[Interpreter]:
        configured = [*self.settings.environments.interpreters, *self._builder.downloaded_pythons()]
        return await trio.to_thread.run_sync(available, configured)

    async def prepare(self, project_dir: Path, progress: Progress) -> Prepared:
        """The environment for the project in ``project_dir``; DeclarationError or BuildError if none can be had."""
        declared = await trio.to_thread.run_sync(read_declared, project_dir)
        if not self.settings.environments.enabled or declared.source is None:
            return Prepared(None)
        runtime_on = self.settings.environments.intuned_runtime
        interpreters = await self.interpreters(for_intuned_runtime=runtime_on and declared.uses_intuned_runtime)
        chosen = plan(declared, interpreters, NEEDS, intuned_runtime=runtime_on)
        built = await self._builder.ensure(chosen, progress)
        if not built.reused:
            await trio.to_thread.run_sync(
                share_project, self.directory(built.environment), self.settings.pool.worker_user
            )
        return Prepared(built.environment, chosen.warnings, built.reused)


def _recent(interpreters: list[Interpreter]) -> bool:
    return any(i.version[:2] >= INTUNED_RUNTIME_MIN for i in interpreters)
