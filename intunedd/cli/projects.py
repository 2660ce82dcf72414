"""``intunedd projects``: deploy a folder, list what is deployed."""

from __future__ import annotations

import io
import json
import tarfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from websockets.exceptions import WebSocketException
from websockets.sync.client import connect

from .context import (
    DEPLOY_SKIP_NAMES,
    DEPLOY_SKIP_SUFFIXES,
    DEPLOY_TIMEOUT,
    ApiClient,
    CliContext,
    CliError,
    emit,
    json_option,
    project_name_in,
)
from .live import events_url
from .render import render_block, render_table

PROGRESS_STEPS = ("resolving", "installing", "ready", "failed")


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
    with _deploy_progress(state, api, project):
        data = api.json_object(
            "POST",
            api.project_path(project, "deploy"),
            content=archive,
            headers={"content-type": "application/gzip"},
            timeout=DEPLOY_TIMEOUT,
        )
    for warning in data.get("warnings") or []:
        click.echo(f"warning: {warning}", err=True)
    emit(state, data, lambda: render_block(data.items()))


@contextmanager
def _deploy_progress(state: CliContext, api: ApiClient, project: str) -> Iterator[None]:
    """Print the deploy's ``project.deploy.*`` steps to stderr while it runs (dependencies can take
    minutes). Best effort: a daemon whose event stream cannot be reached still gets the deploy."""
    if state.json_output:
        yield
        return
    url = events_url(state, api, project, (f"project.deploy.{step}" for step in PROGRESS_STEPS))
    subscribed, done = threading.Event(), threading.Event()

    def listen() -> None:
        try:
            with connect(url, additional_headers={"x-api-key": state.api_key or ""}, open_timeout=5) as events:
                subscribed.set()  # the daemon subscribes before it accepts: nothing is missed after this
                while not done.is_set():
                    try:
                        event = json.loads(events.recv(timeout=0.2))
                    except TimeoutError:
                        continue
                    click.echo(f"... {str(event.get('type', '')).rsplit('.', 1)[-1]}", err=True)
        except (OSError, WebSocketException, ValueError):
            pass
        finally:
            subscribed.set()

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    subscribed.wait(5)
    try:
        yield
    finally:
        done.set()
        listener.join(2)


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
