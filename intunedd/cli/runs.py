"""``intunedd runs`` and ``intunedd attempts``."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import httpx

from .context import (
    FILTER_RE,
    POLL_FACTOR,
    POLL_FIRST_S,
    POLL_MAX_S,
    TERMINAL_STATUSES,
    ApiClient,
    CliContext,
    CliError,
    emit,
    json_option,
    project_option,
    resolve_project,
)
from .progress import run_state_line
from .render import (
    describe_error,
    describe_reason,
    format_duration,
    render_block,
    render_table,
    run_pairs,
)


@click.group()
def runs() -> None:
    """Start, inspect and cancel runs."""


def _read_data_file(path: str) -> str:
    try:
        if path == "-":
            return sys.stdin.read()
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise click.BadParameter(f"cannot read {path}: {e}", param_hint="DATA") from e


def load_run_body(data: str, what: str = "run body") -> dict[str, Any]:
    """DATA is inline JSON, ``@file``, a path, or ``-`` for stdin; ``what`` names it in errors."""
    if data.startswith("@"):
        text = _read_data_file(data[1:])
    elif data.lstrip().startswith("{"):
        text = data
    else:
        text = _read_data_file(data)
    try:
        body = json.loads(text)
    except json.JSONDecodeError as e:
        raise click.BadParameter(f"not valid JSON: {e}", param_hint="DATA") from e
    if not isinstance(body, dict):
        raise click.BadParameter(f"the {what} must be a JSON object", param_hint="DATA")
    return body


def wait_for_result(
    state: CliContext,
    api: ApiClient,
    path: str,
    timeout: float | None,
    *,
    terminal: frozenset[str] = TERMINAL_STATUSES,
    what: str = "run",
    on_status: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Poll a result URL until its status is ``terminal`` (a run's, by default), backing off from
    0.1 s to 1 s between polls; ``what`` names the awaited thing when giving up. ``on_status`` is
    told each status seen, once per change."""
    deadline = None if timeout is None else state.monotonic() + timeout
    delay = POLL_FIRST_S
    seen = None
    while True:
        result = api.json_object("GET", path)
        status = result.get("status")
        if on_status is not None and status != seen:
            on_status(str(status))
        seen = status
        if status in terminal:
            return result
        remaining = None if deadline is None else deadline - state.monotonic()
        if remaining is not None and remaining <= 0:
            named = f"run {result.get('runId')}" if what == "run" else what
            raise CliError(f"{named} still {status} after {timeout:g}s", "timeout")
        state.sleep(delay if remaining is None else min(delay, remaining))
        delay = min(delay * POLL_FACTOR, POLL_MAX_S)


def _state_printer(state: CliContext, run_id: str) -> Callable[[str], None]:
    """Prints a run's state to stderr as it changes (pending, started, completed …)."""
    since = state.monotonic()

    def show(status: str) -> None:
        click.echo(run_state_line(run_id, status, state.monotonic() - since), err=True)

    return show


@runs.command("start")
@click.argument("data")
@click.option("--wait", is_flag=True, help="Poll until the run ends and print its result.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    metavar="S",
    help="With --wait: give up after S seconds (the run keeps going).",
)
@project_option
@json_option
@click.pass_context
def runs_start(ctx: click.Context, data: str, wait: bool, timeout: float | None) -> None:
    """Start a run. DATA is the run body as inline JSON, @file.json, a path, or - for stdin.

    \b
    Example: intunedd runs start '{"api":"list","parameters":{"url":"https://x.test"}}' --wait
    """
    state: CliContext = ctx.obj
    body = load_run_body(data)
    project = resolve_project(state)
    api = state.api()
    started = api.json_object("POST", api.project_path(project, "run", "start"), json=body)
    if not wait:
        emit(state, started, lambda: render_block(started.items()))
        return
    run_id = str(started["runId"])
    show = None
    if not state.json_output:
        click.echo(f"started run {run_id}, waiting…", err=True)
        show = _state_printer(state, run_id)
    path = api.project_path(project, "run", run_id, "result")
    result = wait_for_result(state, api, path, timeout, on_status=show)
    emit(state, result, lambda: render_block(run_pairs(result)))
    if result.get("status") != "completed":
        ctx.exit(1)


@runs.command("get")
@click.argument("run_id")
@project_option
@json_option
@click.pass_obj
def runs_get(state: CliContext, run_id: str) -> None:
    """Show one run with its attempts."""
    api = state.api()
    data = api.json_object("GET", api.project_path(resolve_project(state), "runs", run_id))
    emit(state, data, lambda: _render_run(data))


def _render_run(data: dict[str, Any]) -> str:
    text = render_block(run_pairs(data, skip=("attempts",)))
    attempts = data.get("attempts") or []
    if not attempts:
        return text + "\nattempts: none yet"
    headers = ("#", "STATUS", "STARTED", "ENDED", "TRACE", "LOG", "ERROR")
    rows = (
        (
            a.get("number"),
            a.get("status"),
            a.get("startedAt"),
            a.get("endedAt"),
            a.get("hasTrace"),
            a.get("hasLog"),
            describe_error(a.get("error"), one_line=True),
        )
        for a in attempts
    )
    return f"{text}\nattempts:\n{render_table(headers, rows)}"


def _validate_filters(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> tuple[str, ...]:
    for value in values:
        if not FILTER_RE.match(value):
            raise click.BadParameter(f"{value!r} is not <field><op><value>, e.g. status=failed")
    return values


@runs.command("list")
@click.option("-l", "--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("-o", "--offset", type=click.IntRange(min=0), default=0, show_default=True)
@click.option(
    "-f",
    "--filter",
    "filters",
    multiple=True,
    callback=_validate_filters,
    metavar="EXPR",
    help="Repeatable <field><op><value>; fields: status, api_name, id, run_duration, started_at, "
    "run_type, job_id, job_run_id; ops: = != > >= < <=.",
)
@project_option
@json_option
@click.pass_obj
def runs_list(state: CliContext, limit: int, offset: int, filters: tuple[str, ...]) -> None:
    """List runs, newest first."""
    api = state.api()
    params = [("limit", str(limit)), ("offset", str(offset)), *(("filter", f) for f in filters)]
    data = api.json_object("GET", api.project_path(resolve_project(state), "runs"), params=params)
    emit(state, data, lambda: _render_runs(data, offset))


def _render_runs(data: dict[str, Any], offset: int) -> str:
    items = data.get("items") or []
    total = data.get("total", len(items))
    if not items:
        return f"no runs (total {total})"
    headers = ("ID", "API", "STATUS", "TYPE", "CREATED", "DURATION", "ATTEMPTS", "ERROR")
    rows = (
        (
            r.get("id"),
            r.get("apiName"),
            r.get("status"),
            r.get("runType"),
            r.get("createdAt"),
            format_duration(r.get("runDuration")),
            r.get("attemptsCount"),
            describe_error(r.get("error"), one_line=True) or describe_reason(r.get("reason")),
        )
        for r in items
    )
    return f"{render_table(headers, rows)}\n{offset + 1}-{offset + len(items)} of {total}"


@runs.command("cancel")
@click.argument("run_id")
@project_option
@json_option
@click.pass_obj
def runs_cancel(state: CliContext, run_id: str) -> None:
    """Cancel a pending or running run."""
    api = state.api()
    data = api.json_object("POST", api.project_path(resolve_project(state), "run", run_id, "cancel"))
    emit(state, data, lambda: render_block(data.items()))


@click.group()
def attempts() -> None:
    """Inspect a run's attempts and download their logs and traces."""


def _run_detail(api: ApiClient, project: str, run_id: str) -> dict[str, Any]:
    detail: dict[str, Any] = api.json_object("GET", api.project_path(project, "runs", run_id))
    if not detail.get("attempts"):
        raise CliError(f"run {run_id} has no attempts yet", "no-attempts")
    return detail


def _pick_attempt(detail: dict[str, Any], number: int | None) -> dict[str, Any]:
    by_number = {a["number"]: a for a in detail["attempts"]}
    chosen = max(by_number) if number is None else number
    if chosen not in by_number:
        raise CliError(f"run {detail.get('id')} has no attempt {chosen}", "not-found")
    attempt: dict[str, Any] = by_number[chosen]
    return attempt


def _latest_attempt_number(api: ApiClient, project: str, run_id: str, number: int | None) -> int:
    if number is not None:
        return number  # skip the lookup: the server answers 404 for a missing attempt anyway
    return int(_pick_attempt(_run_detail(api, project, run_id), None)["number"])


attempt_argument = click.argument("attempt", type=click.IntRange(min=1), required=False, metavar="[N]")


@attempts.command("get")
@click.argument("run_id")
@attempt_argument
@project_option
@json_option
@click.pass_obj
def attempts_get(state: CliContext, run_id: str, attempt: int | None) -> None:
    """Show attempt N of a run (default: the latest)."""
    api = state.api()
    data = _pick_attempt(_run_detail(api, resolve_project(state), run_id), attempt)
    emit(state, data, lambda: render_block(run_pairs(data)))


def _download(state: CliContext, kind: str, run_id: str, attempt: int | None, output: str | None) -> None:
    api = state.api()
    project = resolve_project(state)
    number = _latest_attempt_number(api, project, run_id, attempt)
    target = output or f"{kind}_{run_id}_{number}.{ARTIFACT_SUFFIXES[kind]}"
    with api.stream(api.project_path(project, "runs", run_id, "attempts", number, kind)) as response:
        if target == "-":
            copy_to_stdout(response)
            return
        size = copy_to_file(response, Path(target))
    info = {"runId": run_id, "attempt": number, "path": target, "bytes": size}
    emit(state, info, lambda: f"wrote {size} bytes to {target}")


def copy_to_stdout(response: httpx.Response) -> None:
    for chunk in response.iter_bytes():
        click.echo(chunk, nl=False)  # bytes go to the binary buffer under stdout, unmodified


def copy_to_file(response: httpx.Response, target: Path) -> int:
    # Write beside the target and rename, so an interrupted download never looks complete.
    partial = target.with_name(target.name + ".part")
    size = 0
    try:
        with open(partial, "wb") as f:
            for chunk in response.iter_bytes():
                f.write(chunk)
                size += len(chunk)
        partial.replace(target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return size


output_option = click.option("-o", "--output", metavar="FILE", help="Where to write; - for stdout.")


ARTIFACT_SUFFIXES = {"log": "jsonl", "trace": "zip", "video": "webm"}
_ARTIFACT_HELP = {
    "log": "Download attempt N's log (default: latest; file: log_<run-id>_<n>.jsonl).",
    "trace": "Download attempt N's Playwright trace (default: latest; file: trace_<run-id>_<n>.zip).",
    "video": "Download attempt N's recording (default: latest; file: video_<run-id>_<n>.webm).",
}


def _artifact_command(kind: str) -> None:
    @attempts.command(kind, help=_ARTIFACT_HELP[kind])
    @click.argument("run_id")
    @attempt_argument
    @output_option
    @project_option
    @json_option
    @click.pass_obj
    def download(state: CliContext, run_id: str, attempt: int | None, output: str | None) -> None:
        _download(state, kind, run_id, attempt, output)


for _kind in ARTIFACT_SUFFIXES:
    _artifact_command(_kind)
