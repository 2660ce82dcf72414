"""Commands run on the daemon's host: ``serve``, ``health``, ``keys``."""

from __future__ import annotations

import json
from typing import Any

import click

from .context import (
    CliContext,
    CliError,
    config_option,
    emit,
    json_option,
    load_daemon_settings,
)
from .render import render_block, render_table


@click.command()
@config_option
@click.option(
    "--ready-fd",
    type=int,
    default=None,
    help="Write the bound URLs as one JSON line to this inherited file descriptor once ready.",
)
def serve(config_path: str | None, ready_fd: int | None) -> None:
    """Run the daemon in the foreground until SIGTERM or SIGINT."""
    settings = load_daemon_settings(config_path)
    # Imported here so client-only commands never load the daemon (trio, quart, sqlite).
    from intunedd.daemon import serve as serve_daemon

    serve_daemon(settings, ready_fd)


@click.command()
@json_option
@click.pass_obj
def health(state: CliContext) -> None:
    """Check that the daemon answers (no API key needed)."""
    data = state.api(require_key=False).json_object("GET", "/health")
    emit(state, data, lambda: render_block(data.items()))


@click.group()
def keys() -> None:
    """Manage API keys (local: writes the daemon's database directly)."""


@keys.command("create")
@click.option("--name", default="default", show_default=True, help="A label to recognise the key by.")
@config_option
@json_option
@click.pass_obj
def keys_create(state: CliContext, name: str, config_path: str | None) -> None:
    """Create an API key and print it; it is shown only this once."""
    settings = load_daemon_settings(config_path)
    from intunedd.store.keys import create_api_key

    key = create_api_key(settings, name)
    if state.json_output:
        click.echo(json.dumps({"key": key}))
        return
    click.echo(key)
    click.echo(f"created API key {name!r}; store it now, it cannot be shown again", err=True)


def _key_rows(keys: list[dict[str, Any]]) -> str:
    headers = ("ID", "NAME", "PREFIX", "CREATED", "REVOKED")
    rows = [(k["id"], k["name"], k["prefix"], k["createdAt"], k["revokedAt"] or "") for k in keys]
    return render_table(headers, rows) if keys else "no API keys"


@keys.command("list")
@config_option
@json_option
@click.pass_obj
def keys_list(state: CliContext, config_path: str | None) -> None:
    """List API keys: id, name, the key's first characters, when created and revoked."""
    settings = load_daemon_settings(config_path)
    import msgspec

    from intunedd.store.keys import list_keys

    listed = msgspec.to_builtins(list_keys(settings))
    emit(state, listed, lambda: _key_rows(listed))


@keys.command("revoke")
@click.argument("name_or_prefix", metavar="ID|NAME|PREFIX")
@config_option
@json_option
@click.pass_obj
def keys_revoke(state: CliContext, name_or_prefix: str, config_path: str | None) -> None:
    """Revoke the one unrevoked key with this id, name or prefix; a running daemon refuses it within a second."""
    settings = load_daemon_settings(config_path)
    import msgspec

    from intunedd.store.errors import RecordMissing
    from intunedd.store.keys import AmbiguousKey, revoke_key

    try:
        revoked = msgspec.to_builtins(revoke_key(settings, name_or_prefix))
    except RecordMissing as e:
        raise CliError(e.message, "not-found") from e
    except AmbiguousKey as e:
        raise CliError(str(e), "ambiguous") from e
    emit(state, revoked, lambda: f"revoked API key {revoked['name']!r} ({revoked['id']})")
