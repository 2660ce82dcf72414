"""``intunedd queues …``: queues, their items (``queues items``) and repeat items (``queues repeat``)."""

from __future__ import annotations

from typing import Any

import click

from .context import ApiClient, CliContext, CliError, emit, json_option, project_option, resolve_project
from .render import render_block, render_table
from .runs import load_run_body, wait_for_result

ITEM_DONE = frozenset({"completed", "failed"})
DEFAULT_WAIT_S = 600.0

body_argument = click.argument("data", metavar="JSON")


def _path(api: ApiClient, project: str, *parts: str) -> str:
    return api.project_path(project, "queues", *parts)


def _call(state: CliContext, method: str, *parts: str, body: Any = None) -> Any:
    api = state.api()
    kwargs = {} if body is None else {"json": body}
    if method == "DELETE":
        api.call(method, _path(api, resolve_project(state), *parts))
        return None
    return api.json(method, _path(api, resolve_project(state), *parts), **kwargs)


def _state_line(queue: dict[str, Any]) -> str:
    state = queue.get("state") or {}
    waiting = state.get("waitingFor")
    when = f" until {state['nextItemAt']}" if state.get("nextItemAt") else ""
    return f"{state.get('queuedItems', '?')} queued" + (f", waiting: {waiting}{when}" if waiting else "")


def _render_queues(queues: list[Any]) -> str:
    if not queues:
        return "no queues"
    rows = ((q.get("id"), q.get("name"), _state_line(q), (q.get("state") or {}).get("runningItem")) for q in queues)
    return render_table(("ID", "NAME", "STATE", "RUNNING"), rows)


@click.group()
def queues() -> None:
    """Manage queues: ordered, rate-limited execution of a project's APIs."""


@queues.command("create")
@body_argument
@project_option
@json_option
@click.pass_obj
def queues_create(state: CliContext, data: str) -> None:
    """Create a queue from a Queue body: inline JSON, @file.json, a path, or - for stdin.

    \b
    Example: intunedd queues create '{"id": "polite", "configuration":
             {"rateLimits": [{"limit": 2, "duration": "1m"}]}}'
    """
    created = _call(state, "POST", body=load_run_body(data, "queue"))
    emit(state, created, lambda: f"created queue {created['id']}")


@queues.command("list")
@project_option
@json_option
@click.pass_obj
def queues_list(state: CliContext) -> None:
    """List the project's queues with their depth and why their next item waits."""
    found = _call(state, "GET")
    if not isinstance(found, list):
        raise CliError("the queue list is not a JSON array", "bad-response")
    emit(state, found, lambda: _render_queues(found))


@queues.command("get")
@click.argument("queue_id")
@project_option
@json_option
@click.pass_obj
def queues_get(state: CliContext, queue_id: str) -> None:
    """Show one queue, its configuration and state."""
    queue = _call(state, "GET", queue_id)
    emit(state, queue, lambda: render_block([*queue.items(), ("now", _state_line(queue))]))


@queues.command("delete")
@click.argument("queue_id")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@project_option
@json_option
@click.pass_obj
def queues_delete(state: CliContext, queue_id: str, yes: bool) -> None:
    """Delete a queue; its queued items are canceled. Asks first unless -y."""
    if not yes:
        click.confirm(f"Delete queue {queue_id!r} and cancel its queued items?", abort=True, err=True)
    _call(state, "DELETE", queue_id)
    emit(state, {"id": queue_id, "message": "deleted"}, lambda: f"deleted queue {queue_id}")


# -- items ------------------------------------------------------------------------------------


@queues.group("items")
def items() -> None:
    """Append, inspect and delete a queue's items."""


@items.command("add")
@click.argument("queue_id")
@click.argument("api_name")
@click.option("--params", "data", default="{}", metavar="JSON", help="Parameters: inline JSON, @file.json or -.")
@click.option("--attempts", type=click.IntRange(1, 100), help="retry.maximumAttempts for this item.")
@click.option("--wait", is_flag=True, help="Poll until the item is processed and print its result.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=DEFAULT_WAIT_S, show_default=True)
@project_option
@json_option
@click.pass_context
def items_add(
    ctx: click.Context, queue_id: str, api_name: str, data: str, attempts: int | None, wait: bool, timeout: float
) -> None:
    """Append an item calling API_NAME to the queue."""
    state: CliContext = ctx.obj
    body: dict[str, Any] = {"apiName": api_name, "parameters": load_run_body(data, "parameters")}
    if attempts is not None:
        body["retry"] = {"maximumAttempts": attempts}
    queued = _call(state, "POST", queue_id, "items", body=body)
    if not wait:
        emit(state, queued, lambda: f"queued item {queued['runId']}")
        return
    api = state.api()
    path = _path(api, resolve_project(state), queue_id, "items", str(queued["runId"]))
    result = wait_for_result(state, api, path, timeout, terminal=ITEM_DONE, what=f"item {queued['runId']}")
    emit(state, result, lambda: render_block(result.items()))
    if result.get("status") != "completed":
        ctx.exit(1)


@items.command("get")
@click.argument("queue_id")
@click.argument("run_id")
@project_option
@json_option
@click.pass_obj
def items_get(state: CliContext, queue_id: str, run_id: str) -> None:
    """An item's status, and its result or error once processed."""
    item = _call(state, "GET", queue_id, "items", run_id)
    emit(state, item, lambda: render_block(item.items()))


@items.command("delete")
@click.argument("queue_id")
@click.argument("run_id")
@project_option
@json_option
@click.pass_obj
def items_delete(state: CliContext, queue_id: str, run_id: str) -> None:
    """Delete a queued item (one being processed cannot be)."""
    _call(state, "DELETE", queue_id, "items", run_id)
    emit(state, {"runId": run_id, "message": "deleted"}, lambda: f"deleted item {run_id}")


# -- repeat items -----------------------------------------------------------------------------


@queues.group("repeat")
def repeat() -> None:
    """Items appended to a queue again every period (at least 10 minutes)."""


def _repeat_body(api_name: str, every: str, data: str, attempts: int | None) -> dict[str, Any]:
    body: dict[str, Any] = {"apiName": api_name, "parameters": load_run_body(data, "parameters"), "repeat": every}
    if attempts is not None:
        body["retry"] = {"maximumAttempts": attempts}
    return body


repeat_options = (
    click.option("--every", required=True, metavar="PERIOD", help="How often, e.g. 10m, 1h, 1d (at least 10m)."),
    click.option("--params", "data", default="{}", metavar="JSON", help="Parameters: inline JSON, @file.json or -."),
    click.option("--attempts", type=click.IntRange(1, 100), help="retry.maximumAttempts for each item."),
)


def _with_repeat_options(command: Any) -> Any:
    for option in reversed(repeat_options):
        command = option(command)
    return command


@repeat.command("add")
@click.argument("queue_id")
@click.argument("api_name")
@_with_repeat_options
@project_option
@json_option
@click.pass_obj
def repeat_add(state: CliContext, queue_id: str, api_name: str, every: str, data: str, attempts: int | None) -> None:
    """Add a repeat item: appended now, then every PERIOD."""
    created = _call(state, "POST", queue_id, "repeatItems", body=_repeat_body(api_name, every, data, attempts))
    emit(state, created, lambda: f"created repeat item {created['id']}")


@repeat.command("list")
@click.argument("queue_id")
@project_option
@json_option
@click.pass_obj
def repeat_list(state: CliContext, queue_id: str) -> None:
    """List a queue's repeat items."""
    found = _call(state, "GET", queue_id, "repeatItems")
    rows = ((r.get("id"), r.get("apiName"), r.get("repeat"), r.get("nextAt"), r.get("lastRunId")) for r in found)
    emit(state, found, lambda: render_table(("ID", "API", "EVERY", "NEXT", "LAST RUN"), rows) if found else "none")


@repeat.command("get")
@click.argument("queue_id")
@click.argument("item_id")
@project_option
@json_option
@click.pass_obj
def repeat_get(state: CliContext, queue_id: str, item_id: str) -> None:
    """Show one repeat item."""
    found = _call(state, "GET", queue_id, "repeatItems", item_id)
    emit(state, found, lambda: render_block(found.items()))


@repeat.command("update")
@click.argument("queue_id")
@click.argument("item_id")
@click.argument("api_name")
@_with_repeat_options
@project_option
@json_option
@click.pass_obj
def repeat_update(
    state: CliContext, queue_id: str, item_id: str, api_name: str, every: str, data: str, attempts: int | None
) -> None:
    """Replace a repeat item."""
    answer = _call(state, "PUT", queue_id, "repeatItems", item_id, body=_repeat_body(api_name, every, data, attempts))
    emit(state, answer, lambda: f"updated repeat item {item_id}")


@repeat.command("delete")
@click.argument("queue_id")
@click.argument("item_id")
@project_option
@json_option
@click.pass_obj
def repeat_delete(state: CliContext, queue_id: str, item_id: str) -> None:
    """Delete a repeat item: it is appended no more."""
    _call(state, "DELETE", queue_id, "repeatItems", item_id)
    emit(state, {"id": item_id, "message": "deleted"}, lambda: f"deleted repeat item {item_id}")
