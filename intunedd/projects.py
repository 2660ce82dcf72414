"""Deployed projects on disk: unpack an archive, find its APIs, read its Intuned.json and jobs.

Sync file I/O, run in a thread by the deployer. A project is Intuned's layout: every
``api/**/*.py`` is an API named by its path under ``api/`` without the extension. Archives are
untrusted: ``prepare_project`` turns anything wrong with one into a ProjectError.
"""

from __future__ import annotations

import re
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, TypeVar

import msgspec

from .config import DeploySettings
from .ids import AUTH_SESSION_ID
from .job_spec import JOB_ID, JobSpec, check_job_spec
from .jsonc import JsoncError, JsoncTooDeep, loads_jsonc
from .policy.archive_budget import ArchiveError
from .sinks.config import parse_sink
from .unpack import unpack

SETTINGS_FILES = ("Intuned.json", "Intuned.jsonc")
PROJECT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
DeployLimits = DeploySettings  # the [deploy] settings: what one archive may hold
DEFAULT_LIMITS = DeployLimits()
# What untrusted parsing may raise beyond our own errors; a net under the specific handling below.
_UNTRUSTED_ERRORS = (
    tarfile.TarError, EOFError, zlib.error, OSError, ValueError, OverflowError, RecursionError, msgspec.MsgspecError,
)  # fmt: skip
T = TypeVar("T")


class ProjectError(ValueError):
    pass


class ApiAccess(msgspec.Struct, frozen=True):
    enabled: bool = True


Concurrency = Annotated[int, msgspec.Meta(ge=1, le=1000)]


class Replication(msgspec.Struct, frozen=True, rename="camel"):
    """How many attempts of the project may run at once: Intuned's machine count, here worker slots.

    ``maxConcurrentRequests`` is the older form; ``"version": "2.0"`` files say ``maxCount`` (and
    ``minCount``, the machines Intuned keeps warm, which has no meaning here beyond being checked).
    """

    max_concurrent_requests: Concurrency = 1
    max_count: Concurrency | None = None
    min_count: Annotated[int, msgspec.Meta(ge=0, le=1000)] = 0

    def __post_init__(self) -> None:
        if self.min_count > self.concurrency:
            field = "maxCount" if self.max_count is not None else "maxConcurrentRequests"
            raise ValueError(
                f"replication.minCount ({self.min_count}) is above replication.{field} ({self.concurrency})"
            )

    @property
    def concurrency(self) -> int:
        # With both forms given, the newer one (version 2.0's maxCount) is taken as the one meant.
        return self.max_count if self.max_count is not None else self.max_concurrent_requests


class AuthSessionsSetting(msgspec.Struct, frozen=True):
    """``authSessions``: when enabled, every run of the project must name an AuthSession."""

    enabled: bool = False


class ProjectSettings(msgspec.Struct, frozen=True, rename="camel"):
    """The parts of Intuned.json the daemon honours; everything else is kept but ignored."""

    api_access: ApiAccess = ApiAccess()
    replication: Replication = Replication()
    auth_sessions: AuthSessionsSetting = AuthSessionsSetting()
    defaults: dict[str, Any] = {}

    @property
    def default_sink(self) -> dict[str, Any] | None:
        """``defaults.sink.deployed`` (Intuned's per-environment form) or ``defaults.sink`` itself."""
        sink = self.defaults.get("sink")
        if isinstance(sink, dict) and isinstance(sink.get("deployed"), dict):
            return dict(sink["deployed"])
        return dict(sink) if isinstance(sink, dict) and "type" in sink else None


PARTIAL_SUFFIX = ".partial"


class PreparedProject(msgspec.Struct, frozen=True):
    apis: list[str]
    settings: ProjectSettings
    raw_settings: dict[str, Any]
    code_jobs: dict[str, JobSpec]
    code_auth_sessions: dict[str, dict[str, Any]] = {}


def prepare_project(archive: bytes, directory: Path, limits: DeployLimits = DEFAULT_LIMITS) -> PreparedProject:
    """Unpack and read ``archive`` into ``directory``: all of it, or nothing and a ProjectError.

    The archive is unpacked into a staging folder beside ``directory``, renamed into place only
    once everything in it has been read and checked, and removed on any failure.
    """
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", suffix=PARTIAL_SUFFIX, dir=directory.parent))
    try:
        prepared = _read_project(archive, staging, limits)
        if directory.exists():  # left by an earlier deploy of this version that failed after this point
            shutil.rmtree(directory)
        staging.rename(directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return prepared


def remove_partial_deploys(projects_root: Path) -> list[Path]:
    """Remove the staging folders of deploys a killed daemon left half-unpacked; returns them."""
    partial = sorted(projects_root.glob(f"*/.*{PARTIAL_SUFFIX}"))
    for folder in partial:
        shutil.rmtree(folder, ignore_errors=True)
    return partial


def _read_project(archive: bytes, folder: Path, limits: DeployLimits) -> PreparedProject:
    try:
        unpack(archive, folder, limits)
        apis = scan_apis(folder)
        if not apis:
            raise ProjectError("the project has no APIs: expected api/<name>.py files")
        settings, raw = read_settings(folder, limits)
        return PreparedProject(
            apis, settings, raw, read_code_jobs(folder, limits), read_code_auth_sessions(folder, limits)
        )
    except ProjectError:
        raise
    except ArchiveError as e:
        raise ProjectError(str(e)) from e
    except _UNTRUSTED_ERRORS as e:
        # An OSError's strerror, not its text, which would show the daemon's own paths.
        raise ProjectError(f"the project could not be read: {getattr(e, 'strerror', None) or e}") from e


def read_settings(project_dir: Path, limits: DeployLimits) -> tuple[ProjectSettings, dict[str, Any]]:
    for name in SETTINGS_FILES:
        path = project_dir / name
        if path.is_file():
            raw = _read_jsonc(path, name, limits)
            settings = _convert(raw, ProjectSettings, name)
            sink = settings.default_sink
            if sink is not None:
                try:
                    parse_sink(sink)
                except msgspec.ValidationError as e:
                    raise ProjectError(f"{name}: defaults.sink: {e}") from e
            return settings, raw
    return ProjectSettings(), {}


class _CodeAuthSession(msgspec.Struct, frozen=True):
    parameters: dict[str, Any]


def _resource_files(
    project_dir: Path, folder_name: str, kind: str, id_pattern: re.Pattern[str], id_rule: str, limits: DeployLimits
) -> Iterator[tuple[str, str, Any]]:
    """(id, where, JSON) of each ``intuned-resources/<folder_name>/<id>.<kind>.json(c)``."""
    folder = project_dir / "intuned-resources" / folder_name
    for path in sorted(folder.glob(f"*.{kind}.json*")) if folder.is_dir() else []:
        resource_id = path.name.removesuffix(".jsonc").removesuffix(".json").removesuffix(f".{kind}")
        where = f"intuned-resources/{folder_name}/{path.name}"
        if not id_pattern.match(resource_id):
            raise ProjectError(f"{where}: '{resource_id}' is not a valid {kind} id ({id_rule})")
        yield resource_id, where, _read_jsonc(path, where, limits)


def read_code_auth_sessions(project_dir: Path, limits: DeployLimits) -> dict[str, dict[str, Any]]:
    """Sessions-as-code: ``intuned-resources/auth-sessions/<id>.auth-session.json(c)`` = ``{"parameters": {...}}``;
    returns each id's parameters."""
    return {
        session_id: _convert(raw, _CodeAuthSession, where).parameters
        for session_id, where, raw in _resource_files(
            project_dir, "auth-sessions", "auth-session", AUTH_SESSION_ID, "letters, digits and '-'", limits
        )
    }


def read_code_jobs(project_dir: Path, limits: DeployLimits) -> dict[str, JobSpec]:
    """Jobs-as-code: ``intuned-resources/jobs/<job-id>.job.json(c)``, each a create body without ``id``."""
    jobs: dict[str, JobSpec] = {}
    job_rule = "letters, digits, '-' and '_'"
    for job_id, where, raw in _resource_files(project_dir, "jobs", "job", JOB_ID, job_rule, limits):
        spec = _convert(raw, JobSpec, where)
        try:
            check_job_spec(spec)
        except ValueError as e:
            raise ProjectError(f"{where}: {e}") from e
        jobs[job_id] = spec
    return jobs


def _read_jsonc(path: Path, where: str, limits: DeployLimits) -> Any:
    """A settings or job file's JSON(C), within the size and nesting limits."""
    if path.stat().st_size > limits.max_settings_bytes:
        raise ProjectError(f"{where} is larger than {limits.max_settings_bytes} bytes (deploy.max_settings_bytes)")
    try:
        return loads_jsonc(path.read_bytes().decode("utf-8"), max_depth=limits.max_json_depth)
    except UnicodeDecodeError as e:
        raise ProjectError(f"{where} is not UTF-8 (byte {e.start}: {e.reason})") from e
    except JsoncTooDeep as e:
        raise ProjectError(f"{where}: {e} (deploy.max_json_depth)") from e
    except JsoncError as e:
        raise ProjectError(f"{where}: {e}") from e


def _convert(raw: Any, kind: type[T], where: str) -> T:
    try:
        return msgspec.convert(raw, kind)
    except msgspec.ValidationError as e:
        raise ProjectError(f"{where}: {e}") from e


def scan_apis(project_dir: Path) -> list[str]:
    api_dir = project_dir / "api"
    return sorted(
        path.relative_to(api_dir).with_suffix("").as_posix()
        for path in api_dir.rglob("*.py")
        if path.name != "__init__.py" and "__pycache__" not in path.parts
    )


def check_name(name: str) -> str:
    if not PROJECT_NAME.match(name):
        raise ProjectError(f"project name {name!r} must be 1-100 letters, digits, '.', '_' or '-'")
    return name
