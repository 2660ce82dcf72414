"""The root ``intunedd`` group; each command group lives in its own module."""

from __future__ import annotations

from collections.abc import Sequence

import click

from .admin import health, keys, serve
from .authsessions import authsessions
from .collections import collections
from .context import DEFAULT_URL, VERSION, CliContext, json_option, set_project
from .dev import dev
from .events import events
from .jobs import jobruns, jobs
from .projects import projects
from .queues import queues
from .runs import attempts, runs
from .sinks import sinks


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(VERSION, prog_name="intunedd")
@click.option(
    "--url",
    envvar="INTUNEDD_URL",
    show_envvar=True,
    default=DEFAULT_URL,
    show_default=True,
    help="Base URL of the daemon.",
)
@click.option("--api-key", envvar="INTUNEDD_API_KEY", show_envvar=True, help="Sent as x-api-key.")
@click.option(
    "--workspace",
    envvar="INTUNEDD_WORKSPACE",
    show_envvar=True,
    help="Workspace id (default: asked from the daemon).",
)
@click.option(
    "-p",
    "--project",
    "--project-name",
    metavar="NAME",
    envvar="INTUNEDD_PROJECT",
    show_envvar=True,
    expose_value=False,
    callback=set_project,
    help="Project name (default: projectName in ./Intuned.json).",
)
@json_option
@click.pass_context
def cli(ctx: click.Context, url: str, api_key: str | None, workspace: str | None) -> None:
    """Self-hosted Intuned-compatible automation daemon and its client."""
    state = ctx.ensure_object(CliContext)
    state.url = url.rstrip("/")
    state.api_key = api_key or None
    state.workspace = workspace or None


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point."""
    cli.main(args=argv, prog_name="intunedd")


COMMANDS = (
    serve, health, keys, projects, runs, attempts, jobs, jobruns, sinks, authsessions, queues, collections, events, dev,
)  # fmt: skip
for command in COMMANDS:
    cli.add_command(command)
