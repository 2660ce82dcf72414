"""Deployed projects on disk: unpack an archive, find its APIs, read its Intuned.json.

Sync file I/O, run in a thread by the runner. A project is Intuned's layout: every
``api/**/*.py`` is an API named by its path under ``api/`` without the extension.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import tarfile
from pathlib import Path
from typing import Any

import msgspec

from .job_spec import JOB_ID, JobSpec, check_job_spec
from .jsonc import loads_jsonc

SETTINGS_FILES = ("Intuned.json", "Intuned.jsonc")
PROJECT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


class ProjectError(ValueError):
    pass


class ApiAccess(msgspec.Struct, frozen=True):
    enabled: bool = True


class Replication(msgspec.Struct, frozen=True, rename="camel"):
    max_concurrent_requests: int = 1


class ProjectSettings(msgspec.Struct, frozen=True, rename="camel"):
    """The parts of Intuned.json the daemon honours; everything else is kept but ignored."""

    api_access: ApiAccess = ApiAccess()
    replication: Replication = Replication()
    defaults: dict[str, Any] = {}

    @property
    def default_sink(self) -> dict[str, Any] | None:
        """``defaults.sink.deployed`` (Intuned's per-environment form) or ``defaults.sink`` itself."""
        sink = self.defaults.get("sink")
        if isinstance(sink, dict) and isinstance(sink.get("deployed"), dict):
            return dict(sink["deployed"])
        return dict(sink) if isinstance(sink, dict) and "type" in sink else None


def read_settings(project_dir: Path) -> tuple[ProjectSettings, dict[str, Any]]:
    for name in SETTINGS_FILES:
        path = project_dir / name
        if path.is_file():
            try:
                raw = loads_jsonc(path.read_text())
                return msgspec.convert(raw, ProjectSettings), raw
            except (json.JSONDecodeError, msgspec.ValidationError) as e:
                raise ProjectError(f"{name}: {e}") from e
    return ProjectSettings(), {}


def read_code_jobs(project_dir: Path) -> dict[str, JobSpec]:
    """Jobs-as-code: ``intuned-resources/jobs/<job-id>.job.json(c)``, each a create body without ``id``."""
    jobs: dict[str, JobSpec] = {}
    folder = project_dir / "intuned-resources" / "jobs"
    for path in sorted(folder.glob("*.job.json*")) if folder.is_dir() else []:
        job_id = path.name.removesuffix(".jsonc").removesuffix(".json").removesuffix(".job")
        where = f"intuned-resources/jobs/{path.name}"
        if not JOB_ID.match(job_id):
            raise ProjectError(f"{where}: '{job_id}' is not a valid job id (letters, digits, '-' and '_')")
        try:
            spec = msgspec.convert(loads_jsonc(path.read_text()), JobSpec)
            check_job_spec(spec)
        except (json.JSONDecodeError, msgspec.ValidationError, ValueError) as e:
            raise ProjectError(f"{where}: {e}") from e
        jobs[job_id] = spec
    return jobs


def scan_apis(project_dir: Path) -> list[str]:
    api_dir = project_dir / "api"
    return sorted(
        path.relative_to(api_dir).with_suffix("").as_posix()
        for path in api_dir.rglob("*.py")
        if path.name != "__init__.py" and "__pycache__" not in path.parts
    )


def unpack(archive: bytes, dest: Path) -> None:
    """Extract a tar.gz into ``dest``, refusing links and paths that escape it."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:*") as tar:
            tar.extractall(dest, filter="data")
    except (tarfile.TarError, OSError) as e:
        shutil.rmtree(dest, ignore_errors=True)
        raise ProjectError(f"the archive could not be unpacked: {e}") from e


def check_name(name: str) -> str:
    if not PROJECT_NAME.match(name):
        raise ProjectError(f"project name {name!r} must be 1-100 letters, digits, '.', '_' or '-'")
    return name
