"""``intunedd authsessions …``: AuthSession commands; ``rotate-key`` runs on the daemon's host."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import click

from .context import (
    ApiClient,
    CliContext,
    CliError,
    config_option,
    emit,
    json_option,
    load_daemon_settings,
    project_option,
    resolve_project,
)
from .render import render_block, render_table, run_pairs
from .runs import load_run_body, wait_for_result

OPERATION_DONE = frozenset({"done", "failed", "canceled"})
DEFAULT_WAIT_S = 600.0  # Intuned's CLI waits 10 minutes by default


@click.group()
def authsessions() -> None:
    """Manage AuthSessions."""


@authsessions.command("rotate-key")
@config_option
@json_option
@click.pass_obj
def rotate_key(state: CliContext, config_path: str | None) -> None:
    """Re-encrypt every stored AuthSession secret under a new key (local; the daemon must be stopped)."""
    settings = load_daemon_settings(config_path)
    # Imported here so client-only commands never load the store (sqlite, cryptography).
    import msgspec

    from intunedd.secrets import SecretError
    from intunedd.store.secret_rotation import rotate_key as rotate

    try:
        counts = msgspec.to_builtins(rotate(settings))
    except SecretError as e:
        raise CliError(str(e), "secrets-key") from e
    emit(
        state,
        counts,
        lambda: (
            f"rotated {settings.secrets_key_path}: {counts['resealed'] + counts['already']} secrets re-encrypted"
            + (f", {counts['unreadable']} unreadable left as they were" if counts["unreadable"] else "")
        ),
    )


# -- the daemon's AuthSessions, over its HTTP API ------------------------------------------------

wait_option = click.option("--wait", is_flag=True, help="Poll until the operation ends and print its result.")
timeout_option = click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=DEFAULT_WAIT_S,
    show_default=True,
    metavar="S",
    help="With --wait: give up after S seconds (the operation keeps going).",
)
input_option = click.option(
    "--input",
    "data",
    required=True,
    metavar="JSON",
    help="The session's parameters: inline JSON, @file.json, a path, or - for stdin.",
)
proxy_option = click.option("--proxy", metavar="URL", help="Proxy the session's browser goes through.")


def _sessions_path(api: ApiClient, project: str, *parts: str) -> str:
    return api.project_path(project, "auth-sessions", *parts)


def _finish(
    ctx: click.Context,
    api: ApiClient,
    started: dict[str, Any],
    result_path: Callable[[str], str],
    wait: bool,
    timeout: float,
) -> None:
    """Print the start answer, or with ``wait`` the operation's final result (exit 1 unless done);
    ``result_path`` gives the result's path for an operation id."""
    state: CliContext = ctx.obj
    if not wait:
        emit(state, started, lambda: render_block(started.items()))
        return
    op_id = str(started["operationId"])
    if not state.json_output:
        click.echo(f"started operation {op_id}, waiting…", err=True)
    result = wait_for_result(
        state, api, result_path(op_id), timeout, terminal=OPERATION_DONE, what=f"operation {op_id}"
    )
    emit(state, result, lambda: render_block(run_pairs(result)))
    if result.get("status") != "done":
        ctx.exit(1)


def _render_sessions(sessions: list[Any]) -> str:
    if not sessions:
        return "no AuthSessions"
    headers = ("ID", "TYPE", "STATUS", "SOURCE", "PROXY", "UPDATED")
    rows = (
        (s.get("id"), s.get("type"), s.get("status"), s.get("source"), s.get("proxy"), s.get("updatedAt"))
        for s in sessions
    )
    return render_table(headers, rows)


@authsessions.command("list")
@project_option
@json_option
@click.pass_obj
def authsessions_list(state: CliContext) -> None:
    """List the project's AuthSessions."""
    api = state.api()
    sessions = api.json("GET", _sessions_path(api, resolve_project(state)))
    if not isinstance(sessions, list):
        raise CliError("the AuthSession list is not a JSON array", "bad-response")
    emit(state, sessions, lambda: _render_sessions(sessions))


@authsessions.command("get")
@click.argument("session_id")
@project_option
@json_option
@click.pass_obj
def authsessions_get(state: CliContext, session_id: str) -> None:
    """Show one AuthSession (never its parameters or state)."""
    api = state.api()
    session = api.json_object("GET", _sessions_path(api, resolve_project(state), session_id))
    emit(state, session, lambda: render_block(session.items()))


@authsessions.command("create")
@click.argument("session_id", required=False)
@input_option
@proxy_option
@wait_option
@timeout_option
@project_option
@json_option
@click.pass_context
def authsessions_create(
    ctx: click.Context, session_id: str | None, data: str, proxy: str | None, wait: bool, timeout: float
) -> None:
    """Create an AuthSession by running the project's auth-sessions/create with the --input parameters.

    \b
    Example: intunedd authsessions create shop-login --input @login.json --wait
    """
    state: CliContext = ctx.obj
    body: dict[str, Any] = {"parameters": load_run_body(data, "parameters")}
    if session_id is not None:
        body["id"] = session_id
    if proxy is not None:
        body["proxy"] = proxy
    project = resolve_project(state)
    api = state.api()
    started = api.json_object("POST", _sessions_path(api, project, "create"), json=body)
    result_path = functools.partial(_sessions_path, api, project, "create")
    _finish(ctx, api, started, lambda op_id: result_path(op_id, "result"), wait, timeout)


@authsessions.command("update")
@click.argument("session_id")
@input_option
@proxy_option
@wait_option
@timeout_option
@project_option
@json_option
@click.pass_context
def authsessions_update(
    ctx: click.Context, session_id: str, data: str, proxy: str | None, wait: bool, timeout: float
) -> None:
    """Create an AuthSession again, with new --input parameters."""
    state: CliContext = ctx.obj
    body: dict[str, Any] = {"parameters": load_run_body(data, "parameters")}
    if proxy is not None:
        body["proxy"] = proxy
    project = resolve_project(state)
    api = state.api()
    started = api.json_object("POST", _sessions_path(api, project, session_id, "update"), json=body)
    result_path = functools.partial(_sessions_path, api, project, session_id, "update")
    _finish(ctx, api, started, lambda op_id: result_path(op_id, "result"), wait, timeout)


@authsessions.command("validate")
@click.argument("session_id")
@click.option("--no-auto-recreate", is_flag=True, help="Only check; do not create the session again if invalid.")
@wait_option
@timeout_option
@project_option
@json_option
@click.pass_context
def authsessions_validate(
    ctx: click.Context, session_id: str, no_auto_recreate: bool, wait: bool, timeout: float
) -> None:
    """Check an AuthSession, creating it again when it is invalid (unless --no-auto-recreate)."""
    state: CliContext = ctx.obj
    project = resolve_project(state)
    api = state.api()
    path = _sessions_path(api, project, session_id, "validate", "start")
    started = api.json_object("POST", path, json={"autoRecreate": not no_auto_recreate})
    result_path = functools.partial(_sessions_path, api, project, session_id, "validate")
    _finish(ctx, api, started, lambda op_id: result_path(op_id, "result"), wait, timeout)


@authsessions.command("delete")
@click.argument("session_id")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@project_option
@json_option
@click.pass_obj
def authsessions_delete(state: CliContext, session_id: str, yes: bool) -> None:
    """Delete an AuthSession; asks first unless -y."""
    project = resolve_project(state)
    if not yes:
        click.confirm(f"Delete AuthSession {session_id!r} of project {project!r}?", abort=True, err=True)
    api = state.api()
    api.call("DELETE", _sessions_path(api, project, session_id))
    deleted = {"id": session_id, "message": "deleted"}
    emit(state, deleted, lambda: f"deleted AuthSession {session_id}")


@authsessions.command("import")
@click.argument("session_id")
@click.argument("state_file", metavar="STATE.json")
@project_option
@json_option
@click.pass_obj
def authsessions_import(state: CliContext, session_id: str, state_file: str) -> None:
    """Import a Playwright storage state (context.storage_state()) as a READY RECORDER session.

    STATE.json is a path, @path, or - for stdin.
    """
    storage = load_run_body(state_file if state_file.startswith("@") else f"@{state_file}", "storage state")
    api = state.api()
    session = api.json_object("PUT", _sessions_path(api, resolve_project(state), session_id, "state"), json=storage)
    emit(state, session, lambda: render_block(session.items()))
