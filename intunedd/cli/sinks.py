"""``intunedd sinks deliveries``."""

from __future__ import annotations

from typing import Any

import click

from .context import CliContext, emit, json_option
from .jobs import limit_option, offset_option
from .render import render_block, render_table, shorten

# --------------------------------------------------------------------------------------------
# Sink deliveries

DELIVERY_STATUSES = ("pending", "delivered", "failed")
DELIVERY_ERROR_CELL = 40


def _delivery_when(delivery: dict[str, Any]) -> Any:
    """When the next attempt is due (pending), or when it was delivered; None once failed."""
    if delivery.get("status") == "delivered":
        return delivery.get("deliveredAt")
    return delivery.get("nextAttemptAt")


def _delivery_error(error: Any) -> str | None:
    if error is None:
        return None
    return shorten(" ".join(str(error).split()), DELIVERY_ERROR_CELL)


def _render_deliveries(data: dict[str, Any], offset: int) -> str:
    items = data.get("items") or []
    total = data.get("total", len(items))
    if not items:
        return f"no deliveries (total {total})"
    headers = ("ID", "RUN", "KIND", "STATUS", "ATTEMPTS", "LAST STATUS", "NEXT / DELIVERED", "LAST ERROR")
    rows = (
        (
            d.get("id"),
            d.get("runId"),
            d.get("kind"),
            d.get("status"),
            d.get("attempts"),
            d.get("lastStatus"),
            _delivery_when(d),
            _delivery_error(d.get("lastError")),
        )
        for d in items
    )
    return f"{render_table(headers, rows)}\n{offset + 1}-{offset + len(items)} of {total}"


@click.group()
def sinks() -> None:
    """Inspect where run results are delivered (webhooks, S3)."""


@sinks.group()
def deliveries() -> None:
    """List, inspect and retry result deliveries (all projects)."""


@deliveries.command("list")
@click.option("--status", type=click.Choice(DELIVERY_STATUSES), help="Only deliveries in this state.")
@click.option("--run", "run_id", metavar="RUN_ID", help="Only the deliveries of this run.")
@limit_option
@offset_option
@json_option
@click.pass_obj
def deliveries_list(state: CliContext, status: str | None, run_id: str | None, limit: int, offset: int) -> None:
    """List deliveries, newest first."""
    api = state.api()
    params = [("limit", str(limit)), ("offset", str(offset))]
    if status is not None:
        params.append(("status", status))
    if run_id is not None:
        params.append(("run", run_id))
    data = api.json_object("GET", api.workspace_path("deliveries"), params=params)
    emit(state, data, lambda: _render_deliveries(data, offset))


@deliveries.command("get")
@click.argument("delivery_id")
@json_option
@click.pass_obj
def deliveries_get(state: CliContext, delivery_id: str) -> None:
    """Show one delivery; its sink's secrets are masked by the daemon."""
    api = state.api()
    data = api.json_object("GET", api.workspace_path("deliveries", delivery_id))
    emit(state, data, lambda: render_block(data.items()))


@deliveries.command("retry")
@click.argument("delivery_id")
@json_option
@click.pass_obj
def deliveries_retry(state: CliContext, delivery_id: str) -> None:
    """Try a delivery again now, with a fresh retry window; refused once it was delivered."""
    api = state.api()
    data = api.json_object("POST", api.workspace_path("deliveries", delivery_id, "retry"))
    emit(state, data, lambda: render_block(data.items()))
