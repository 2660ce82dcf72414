"""``intunedd projects``: deploy a folder, list what is deployed."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import click

from .context import (
    DEPLOY_SKIP_NAMES,
    DEPLOY_SKIP_SUFFIXES,
    DEPLOY_TIMEOUT,
    CliContext,
    CliError,
    emit,
    json_option,
    project_name_in,
)
from .render import render_block, render_table


def _deploy_filter(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
    basename = info.name.rsplit("/", 1)[-1]
    if basename in DEPLOY_SKIP_NAMES or basename.endswith(DEPLOY_SKIP_SUFFIXES):
        return None  # for a directory this also skips everything under it
    # Local user and group names mean nothing on the daemon host.
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def build_archive(directory: Path) -> bytes:
    """The project as an in-memory tar.gz whose member names are relative to ``directory``."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", dereference=True) as tar:
        for entry in sorted(directory.iterdir()):
            tar.add(entry, arcname=entry.name, recursive=True, filter=_deploy_filter)
    return buffer.getvalue()


@click.group()
def projects() -> None:
    """Deploy and list projects."""


@projects.command("deploy")
@click.argument("directory", metavar="DIR", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--name", help="Project name (default: projectName in DIR/Intuned.json, else DIR's name).")
@json_option
@click.pass_obj
def projects_deploy(state: CliContext, directory: Path, name: str | None) -> None:
    """Upload the project in DIR as a new version."""
    if not (directory / "api").is_dir():
        raise click.BadParameter(f"{directory} has no api/ directory", param_hint="DIR")
    project = name or project_name_in(directory) or directory.resolve().name
    archive = build_archive(directory)
    api = state.api()
    data = api.json_object(
        "POST",
        api.project_path(project, "deploy"),
        content=archive,
        headers={"content-type": "application/gzip"},
        timeout=DEPLOY_TIMEOUT,
    )
    emit(state, data, lambda: render_block(data.items()))


@projects.command("list")
@json_option
@click.pass_obj
def projects_list(state: CliContext) -> None:
    """List deployed projects."""
    api = state.api()
    data = api.json("GET", api.workspace_path("projects"))
    if not isinstance(data, list):
        raise CliError("the project list is not a JSON array", "bad-response")
    headers = ("NAME", "VERSION", "APIS", "DEPLOYED", "API ACCESS", "MAX CONCURRENT")
    rows = (
        (
            p.get("name"),
            p.get("version"),
            p.get("apis"),
            p.get("deployedAt"),
            p.get("apiAccess"),
            p.get("maxConcurrentRequests"),
        )
        for p in data
    )
    emit(state, data, lambda: render_table(headers, rows) if data else "no projects deployed")
