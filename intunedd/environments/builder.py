"""Builds a project's environment with uv, or finds the one already built for the same set.

An environment lives in ``<environments>/<key>/``, where the key hashes the interpreter, the
path (intunedd's own or Intuned's runtime) and the fully resolved requirement set, so versions
and projects that resolve the same share one. A second, cheaper key hashes the *declared* input
and remembers which environment it resolved to, so a redeploy with unchanged dependencies
skips resolution as well (milliseconds, no index traffic).

A build happens in a ``.partial`` folder renamed into place only when complete: a folder named
by its key is always whole. uv runs as a subprocess, so nothing here blocks the event loop.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import msgspec
import trio
import uv

import intunedd

from ..config import EnvironmentSettings
from ..messages import ProjectEnvironment
from ..workers.process import DAEMON_ENV, WORKER_MODULE, WorkerEnv
from .index import IndexConfig
from .plan import Plan, Runtime

META_FILE = "intunedd-environment.json"
PARTIAL_SUFFIX = ".partial"
INPUTS = ".inputs"
UV_CACHE = ".uv-cache"
DOWNLOADED_PYTHONS = ".python"
MAX_MESSAGE_CHARS = 4000
Progress = Callable[[str], Awaitable[None]]  # "resolving", "installing"


class BuildError(Exception):
    """The environment cannot be built; the message is uv's own explanation, bounded."""


class Meta(msgspec.Struct, frozen=True):
    key: str
    runtime: Runtime
    python: str
    interpreter: str
    requirements: tuple[str, ...]
    resolved: str

    @property
    def environment(self) -> ProjectEnvironment:
        return ProjectEnvironment(key=self.key, runtime=self.runtime, python=self.python)


class Built(msgspec.Struct, frozen=True):
    environment: ProjectEnvironment
    reused: bool


def python_of(environment_dir: Path) -> Path:
    return environment_dir / "bin" / "python"


def worker_env(root: Path, environment: ProjectEnvironment | None) -> WorkerEnv:
    """Where a version's workers run: its environment's Python, or the daemon's own."""
    if environment is None:
        return DAEMON_ENV
    return WorkerEnv(environment.key, (str(python_of(root / environment.key)), *WORKER_MODULE))


def _digest(*parts: object) -> str:
    return hashlib.sha256(msgspec.json.encode(parts)).hexdigest()[:24]


class Builder:
    def __init__(self, root: Path, settings: EnvironmentSettings, index: IndexConfig) -> None:
        self.root = root
        self.settings = settings
        self.index = index

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            UV_CACHE_DIR=self.settings.uv_cache_dir or str(self.root / UV_CACHE),
            UV_PYTHON_DOWNLOADS="manual" if self.settings.download_python else "never",
            UV_NO_CONFIG="1",
            UV_SYSTEM_CERTS="1",
            NO_COLOR="1",
        )
        return env

    def _install_args(self) -> list[str]:
        return [*self.index.uv_args(), *([] if self.settings.allow_source_builds else ["--no-build"])]

    async def _uv(self, args: Sequence[str], stdin: bytes = b"") -> str:
        done = await trio.run_process(
            [uv.find_uv_bin(), *args], stdin=stdin, capture_stdout=True, capture_stderr=True, check=False,
            env=self._env(), cwd=str(self.root),
        )  # fmt: skip
        if done.returncode != 0:
            raise BuildError(_explanation(done.stderr.decode("utf-8", "replace")))
        return done.stdout.decode("utf-8", "replace")

    async def download_python(self, version: str) -> None:
        """Have uv download CPython ``version`` into the environments' own folder; BuildError if it cannot."""
        await self._uv(["python", "install", version, "--install-dir", str(self.root / DOWNLOADED_PYTHONS)])

    def downloaded_pythons(self) -> list[str]:
        return sorted(str(p) for p in (self.root / DOWNLOADED_PYTHONS).glob("cpython-3.*/bin/python3"))

    def _ready(self, key: str) -> ProjectEnvironment | None:
        try:
            meta = msgspec.json.decode((self.root / key / META_FILE).read_bytes(), type=Meta)
        except (OSError, msgspec.DecodeError):
            return None
        os.utime(self.root / key / META_FILE)  # last used: keeps it from the sweep
        return meta.environment

    async def ensure(self, plan: Plan, progress: Progress) -> Built:
        """The environment ``plan`` needs, built if no equal one exists; BuildError if it cannot be."""
        self.root.mkdir(parents=True, exist_ok=True)
        interpreter = plan.interpreter
        input_key = _digest(plan.runtime, interpreter, sorted(plan.requirements), self._install_args())
        link = self.root / INPUTS / input_key
        known = link.read_text().strip() if link.is_file() else None
        if known and (environment := self._ready(known)) is not None:
            return Built(environment, reused=True)
        try:
            with trio.fail_after(self.settings.build_timeout_s):
                await progress("resolving")
                resolved = await self._uv(
                    ["pip", "compile", "-", "--python", interpreter.path, "--no-header", "--no-annotate", "--quiet",
                     *self._install_args()],
                    "\n".join(plan.requirements).encode(),
                )  # fmt: skip
                key = _digest(plan.runtime, interpreter, resolved)
                environment = self._ready(key)
                reused = environment is not None
                if environment is None:
                    await progress("installing")
                    meta = Meta(
                        key, plan.runtime, interpreter.version_text, interpreter.path, plan.requirements, resolved
                    )
                    environment = await self._build(meta)
        except trio.TooSlowError:
            raise BuildError(
                f"resolving and installing the dependencies took longer than {self.settings.build_timeout_s:g} s "
                "(environments.build_timeout_s)"
            ) from None
        link.parent.mkdir(exist_ok=True)
        link.write_text(environment.key)
        return Built(environment, reused)

    async def _build(self, meta: Meta) -> ProjectEnvironment:
        staging = self.root / f".{meta.key}.{secrets.token_hex(4)}{PARTIAL_SUFFIX}"
        try:
            await self._uv(["venv", "--relocatable", "--quiet", "--python", meta.interpreter, str(staging)])
            await self._uv(
                # Compiled now: workers may run as a user who cannot write __pycache__ here, and
                # would otherwise compile Playwright in memory at every start.
                ["pip", "sync", "-", "--python", str(python_of(staging)), "--quiet", "--compile-bytecode",
                 *self._install_args()],  # fmt: skip
                meta.resolved.encode(),
            )
            await trio.to_thread.run_sync(self._finish, staging, meta)
        except BaseException:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(shutil.rmtree, staging, True)
            raise
        return meta.environment

    def _finish(self, staging: Path, meta: Meta) -> None:
        size_mb = _size_bytes(staging) / (1024 * 1024)
        if size_mb > self.settings.max_environment_mb:
            raise BuildError(
                f"the environment takes {size_mb:.0f} MB, more than the {self.settings.max_environment_mb} MB "
                "allowed (environments.max_environment_mb)"
            )
        # The worker is intunedd's own code: the package itself is linked in, nothing else of the
        # daemon's environment (whose compiled modules may be for another Python).
        (site_packages,) = staging.glob("lib/python3.*/site-packages")
        (site_packages / "intunedd").symlink_to(Path(intunedd.__file__).parent, target_is_directory=True)
        (staging / META_FILE).write_bytes(msgspec.json.encode(meta))
        target = self.root / meta.key
        if target.exists():  # built meanwhile by another process (``intunedd dev run``) sharing the root
            shutil.rmtree(staging)
        else:
            staging.rename(target)


def _size_bytes(folder: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass
    return total


def _explanation(stderr: str) -> str:
    """uv's error (which package, which constraint), cut to a readable size."""
    text = stderr.strip() or "uv failed without saying why"
    return text if len(text) <= MAX_MESSAGE_CHARS else text[: MAX_MESSAGE_CHARS - 3] + "..."
