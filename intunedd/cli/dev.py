"""``intunedd dev run api NAME [PARAMS]``: run one API of the project in this folder, once, without
deploying it, as Intuned's ``intuned dev run api`` does."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click
import msgspec

from intunedd.config import ConfigError, Settings, load_settings

from .context import CliContext, CliError, config_option, emit, json_option

DEFAULT_STATE_DIR = "~/.cache/intunedd/dev"


@click.group()
def dev() -> None:
    """Develop a project locally: run its APIs on this host without a daemon."""


@dev.group("run")
def dev_run_group() -> None:
    """Run something of the project in the current folder once."""


def _parameters(api: str, given: str | None) -> Any:
    """``@file``, a file's path, JSON text, or else ``.parameters/api/NAME/default.json`` (or ``{}``)."""
    if given is None:
        default = Path(".parameters") / "api" / api / "default.json"
        given = f"@{default}" if default.is_file() else "{}"
    path = Path(given[1:]) if given.startswith("@") else Path(given)
    try:
        text = path.read_text() if given.startswith("@") or path.is_file() else given
        return json.loads(text)
    except OSError as e:
        raise click.BadParameter(f"cannot read {path}: {e.strerror}", param_hint="PARAMS") from e
    except ValueError as e:
        raise click.BadParameter(f"not JSON, nor a JSON file: {e}", param_hint="PARAMS") from e


def _settings(config_path: str | None, state_dir: str, headful: bool) -> Settings:
    try:
        settings = load_settings(config_path) if config_path else Settings()
    except ConfigError as e:
        raise CliError(str(e), "config-error") from e
    pool = msgspec.structs.replace(settings.pool, headless=not headful)
    return msgspec.structs.replace(settings, state_dir=os.path.expanduser(state_dir), pool=pool)


@dev_run_group.command("api")
@click.argument("name")
@click.argument("params", required=False)
@click.option("--headful", is_flag=True, help="Show the browser window (needs a display).")
@click.option("--trace", is_flag=True, help="Save a Playwright trace of the attempt.")
@click.option(
    "--state-dir",
    default=DEFAULT_STATE_DIR,
    show_default=True,
    help="Where environments, logs, traces and the persistent store of dev runs are kept.",
)
@config_option
@json_option
@click.pass_obj
def dev_run_api(
    state: CliContext,
    name: str,
    params: str | None,
    headful: bool,
    trace: bool,
    state_dir: str,
    config_path: str | None,
) -> None:
    """Run API NAME of the project in the current folder with PARAMS (JSON, a JSON file, or @file;
    default .parameters/api/NAME/default.json) and print its result, log and extended payloads."""
    if not Path("api").is_dir():
        raise CliError("the current folder is not a project: it has no api/ folder", "not-a-project")
    if headful and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise CliError("--headful needs a display, and neither DISPLAY nor WAYLAND_DISPLAY is set", "no-display")
    parameters = _parameters(name, params)
    settings = _settings(config_path, state_dir, headful)
    # Imported here so client-only commands never load trio and the worker machinery.
    import trio

    from intunedd.dev_run import dev_run
    from intunedd.environments.builder import BuildError
    from intunedd.environments.declared import DeclarationError

    async def progress(step: str) -> None:
        if not state.json_output:
            click.echo(f"... {step}", err=True)

    try:
        done = trio.run(lambda: dev_run(settings, Path.cwd(), name, parameters, trace=trace, progress=progress))
    except (BuildError, DeclarationError) as e:
        raise CliError(f"the project's dependencies cannot be installed: {e}", "dependencies") from e
    outcome = done.outcome
    log = _log_messages(done.log_path)
    data = {
        "status": outcome.status,
        "result": outcome.result,
        "error": outcome.error,
        "extendedPayloads": msgspec.to_builtins(outcome.extended_payloads),
        "log": log,
        "trace": str(done.trace_path) if done.trace_path else None,
        "environment": msgspec.to_builtins(done.environment),
    }
    emit(state, data, lambda: _human(data))
    if outcome.status != "completed":
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
    parts = []
    for warning in data["environment"]["warnings"]:
        parts.append(f"warning: {warning}")
    if data["log"]:
        parts += ["Log:", *(f"  {line}" for line in data["log"])]
    if data["extendedPayloads"]:
        parts += ["Extended payloads:", json.dumps(data["extendedPayloads"], indent=2, ensure_ascii=False)]
    if data["status"] == "completed":
        parts += ["Result:", json.dumps(data["result"], indent=2, ensure_ascii=False)]
    else:
        error = data["error"] or {}
        parts.append(f"Failed: {error.get('code')}: {error.get('message')}")
    if data["trace"]:
        parts.append(f"Trace: {data['trace']}")
    return "\n".join(parts)
