"""``intunedd dev run``: run an API (or an AuthSession's create and check) of the project in this
folder, once, without deploying it, as Intuned's ``intuned dev run`` does."""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
import msgspec

from intunedd.config import ConfigError, Settings, load_settings

from .context import CliContext, CliError, config_option, emit, json_option

if TYPE_CHECKING:
    from intunedd.dev_run import DevResult, DevWorker

DEFAULT_STATE_DIR = "~/.cache/intunedd/dev"
T = TypeVar("T")


@click.group()
def dev() -> None:
    """Develop a project locally: run its APIs and AuthSessions on this host without a daemon."""


@dev.group("run")
def dev_run_group() -> None:
    """Run something of the project in the current folder once."""


@dev_run_group.group("authsession")
def dev_run_authsession() -> None:
    """Create or validate an AuthSession with the project's auth-sessions/create.py and check.py,
    kept in auth-sessions-instances/ID/ (as Intuned's CLI keeps them)."""


def _json_argument(given: str | None, default: Path, what: str) -> Any:
    """``@file``, a file's path, JSON text, or else ``default`` (or ``{}``)."""
    if given is None:
        given = f"@{default}" if default.is_file() else "{}"
    path = Path(given[1:]) if given.startswith("@") else Path(given)
    try:
        text = path.read_text() if given.startswith("@") or path.is_file() else given
        return json.loads(text)
    except OSError as e:
        raise click.BadParameter(f"cannot read {path}: {e.strerror}", param_hint=what) from e
    except ValueError as e:
        raise click.BadParameter(f"not JSON, nor a JSON file: {e}", param_hint=what) from e


def _settings(config_path: str | None, state_dir: str, headful: bool) -> Settings:
    try:
        settings = load_settings(config_path) if config_path else Settings()
    except ConfigError as e:
        raise CliError(str(e), "config-error") from e
    pool = msgspec.structs.replace(settings.pool, headless=not headful)
    return msgspec.structs.replace(settings, state_dir=os.path.expanduser(state_dir), pool=pool)


def _dev_options(command: Callable[..., None]) -> Callable[..., None]:
    for option in reversed(
        [
            click.option("--headful", is_flag=True, help="Show the browser window (needs a display)."),
            click.option("--trace", is_flag=True, help="Save a Playwright trace of each attempt."),
            click.option(
                "--state-dir",
                default=DEFAULT_STATE_DIR,
                show_default=True,
                help="Where environments, logs, traces and the persistent store of dev runs are kept.",
            ),
            config_option,
            json_option,
        ]
    ):
        command = option(command)
    return command


@contextmanager
def _in_project() -> Iterator[Path]:
    if not Path("api").is_dir() and not Path("auth-sessions").is_dir():
        raise CliError("the current folder is not a project: it has no api/ folder", "not-a-project")
    yield Path.cwd()


def _run(
    state: CliContext, config_path: str | None, state_dir: str, headful: bool, body: Callable[[DevWorker], Awaitable[T]]
) -> T:
    """``body`` with a worker in the project's environment; the CLI's errors for what can go wrong."""
    if headful and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise CliError("--headful needs a display, and neither DISPLAY nor WAYLAND_DISPLAY is set", "no-display")
    settings = _settings(config_path, state_dir, headful)
    # Imported here so client-only commands never load trio and the worker machinery.
    import trio

    from intunedd.dev_run import dev_worker
    from intunedd.environments.builder import BuildError
    from intunedd.environments.declared import DeclarationError

    async def progress(step: str) -> None:
        if not state.json_output:
            click.echo(f"... {step}", err=True)

    async def main() -> T:
        async with dev_worker(settings, Path.cwd(), progress) as worker:
            return await body(worker)

    try:
        return trio.run(main)
    except (BuildError, DeclarationError) as e:
        raise CliError(f"the project's dependencies cannot be installed: {e}", "dependencies") from e


@dev_run_group.command("api")
@click.argument("name")
@click.argument("params", required=False)
@click.option("--auth-session", "session_id", help="Run with this AuthSession (see `dev run authsession`).")
@_dev_options
@click.pass_obj
def dev_run_api(
    state: CliContext,
    name: str,
    params: str | None,
    session_id: str | None,
    headful: bool,
    trace: bool,
    state_dir: str,
    config_path: str | None,
) -> None:
    """Run API NAME of the project in the current folder with PARAMS (JSON, a JSON file, or @file;
    default .parameters/api/NAME/default.json) and print its result, log and extended payloads."""
    from intunedd.dev_run import load_session

    with _in_project() as project:
        parameters = _json_argument(params, Path(".parameters") / "api" / name / "default.json", "PARAMS")
        session = load_session(project, session_id) if session_id else None
        if session_id and session is None:
            raise CliError(f"no AuthSession '{session_id}': create it with `dev run authsession create`", "no-session")
        fields = {} if session is None else {
            "auth_state": session.state, "auth_parameters": session.parameters, "auth_session_id": session_id,
        }  # fmt: skip

        async def body(worker: DevWorker) -> tuple[DevResult, Any]:
            return await worker.run(name, parameters, trace=trace, **fields), worker.prepared

        done, prepared = _run(state, config_path, state_dir, headful, body)
    _report(state, [done], prepared)


@dev_run_authsession.command("create")
@click.argument("session_id", metavar="ID", default="default")
@click.argument("params", required=False)
@_dev_options
@click.pass_obj
def dev_run_authsession_create(
    state: CliContext, session_id: str, params: str | None, headful: bool, trace: bool, state_dir: str,
    config_path: str | None,
) -> None:  # fmt: skip
    """Log in with auth-sessions/create.py and PARAMS (default .parameters/auth-sessions/create/ID.json)
    and keep the session as ID."""
    from intunedd.dev_run import create_session

    with _in_project():
        parameters = _json_argument(
            params, Path(".parameters") / "auth-sessions" / "create" / f"{session_id}.json", "PARAMS"
        )

        async def body(worker: DevWorker) -> tuple[DevResult, Any]:
            return await create_session(worker, session_id, parameters, trace=trace), worker.prepared

        done, prepared = _run(state, config_path, state_dir, headful, body)
    _report(state, [done], prepared)


@dev_run_authsession.command("validate")
@click.argument("session_id", metavar="ID", default="default")
@click.option("--no-auto-recreate", is_flag=True, help="Only check; do not log in again when the check fails.")
@_dev_options
@click.pass_obj
def dev_run_authsession_validate(
    state: CliContext, session_id: str, no_auto_recreate: bool, headful: bool, trace: bool, state_dir: str,
    config_path: str | None,
) -> None:  # fmt: skip
    """Check session ID with auth-sessions/check.py; when it is no longer valid, log in again with the
    parameters it was created with and check the new session."""
    from intunedd.dev_run import check_session, create_session, load_session

    with _in_project() as project:
        session = load_session(project, session_id)
        if session is None:
            raise CliError(f"no AuthSession '{session_id}': create it with `dev run authsession create`", "no-session")

        async def body(worker: DevWorker) -> tuple[list[DevResult], Any]:
            done = [await check_session(worker, session_id, session, trace=trace)]
            if done[-1].outcome.result is True or no_auto_recreate:
                return done, worker.prepared
            done.append(await create_session(worker, session_id, session.parameters, trace=trace))
            fresh = load_session(project, session_id)
            if done[-1].outcome.status == "completed" and fresh is not None:
                done.append(await check_session(worker, session_id, fresh, trace=trace))
            return done, worker.prepared

        steps, prepared = _run(state, config_path, state_dir, headful, body)
    _report(state, steps, prepared, valid=steps[-1].outcome.result is True)


def _report(state: CliContext, steps: list[DevResult], prepared: Any, *, valid: bool | None = None) -> None:
    last = steps[-1].outcome
    data: dict[str, Any] = {
        "status": last.status,
        "result": last.result,
        "error": last.error,
        "extendedPayloads": msgspec.to_builtins(last.extended_payloads),
        "log": [line for step in steps for line in _log_messages(step.log_path)],
        "trace": [str(step.trace_path) for step in steps if step.trace_path] or None,
        "environment": msgspec.to_builtins(prepared),
    }
    if valid is not None:
        data["valid"] = valid
    emit(state, data, lambda: _human(data))
    if last.status != "completed" or valid is False:
        raise SystemExit(1)


def _log_messages(path: Path) -> list[str]:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return []
    messages = []
    for line in lines:
        try:
            messages.append(str(json.loads(line).get("message", "")))
        except (ValueError, AttributeError):
            messages.append(line)
    return messages


def _human(data: dict[str, Any]) -> str:
    parts = [f"warning: {warning}" for warning in data["environment"]["warnings"]]
    if data["log"]:
        parts += ["Log:", *(f"  {line}" for line in data["log"])]
    if data["extendedPayloads"]:
        parts += ["Extended payloads:", json.dumps(data["extendedPayloads"], indent=2, ensure_ascii=False)]
    if data["status"] == "completed":
        parts += ["Result:", json.dumps(data["result"], indent=2, ensure_ascii=False)]
    else:
        error = data["error"] or {}
        parts.append(f"Failed: {error.get('code')}: {error.get('message')}")
    if "valid" in data:
        parts.append("The session is valid." if data["valid"] else "The session is not valid.")
    for trace in data["trace"] or []:
        parts.append(f"Trace: {trace}")
    return "\n".join(parts)
