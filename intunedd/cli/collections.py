"""``intunedd collections …``: the Scraping Pros-compatible /v1 collections, from the terminal."""

from __future__ import annotations

from typing import Any

import click

from .context import CliContext, CliError, emit, json_option
from .render import render_block, render_table
from .runs import load_run_body

BASE = "/v1/async/collections"
RUN_DONE = "completed"


def _counts(run: dict[str, Any]) -> str:
    return (
        f"{run.get('success_requests', 0)} ok, {run.get('failed_requests', 0)} failed, "
        f"{run.get('timeout_requests', 0)} timed out of {run.get('total_requests', 0)}"
    )


@click.group()
def collections() -> None:
    """Scrape lists of URLs without code: collections of requests and their runs (the /v1 API)."""


@collections.command("create")
@click.argument("data", metavar="JSON")
@json_option
@click.pass_obj
def collections_create(state: CliContext, data: str) -> None:
    """Create a collection from {name, requests, callback_url?}: inline JSON, @file.json, a path or -.

    \b
    Example: intunedd collections create '{"name": "shop", "requests": [{"url": "example.com"}]}'
    """
    created = state.api().json_object("POST", BASE, json=load_run_body(data, "collection"))
    skipped = len(created.get("blocked_urls") or []) + len(created.get("invalid_items") or [])
    emit(
        state,
        created,
        lambda: f"created collection {created['id']}"
        + (f" ({created.get('duplicates_skipped', 0)} duplicates and {skipped} refused requests left out)"),
    )


@collections.command("list")
@json_option
@click.pass_obj
def collections_list(state: CliContext) -> None:
    """List collections, newest first."""
    found = state.api().json("GET", BASE)
    if not isinstance(found, list):
        raise CliError("the collection list is not a JSON array", "bad-response")
    rows = ((c.get("id"), c.get("name"), c.get("created_at")) for c in found)
    emit(state, found, lambda: render_table(("ID", "NAME", "CREATED"), rows) if found else "no collections")


@collections.command("get")
@click.argument("collection_id")
@json_option
@click.pass_obj
def collections_get(state: CliContext, collection_id: str) -> None:
    """Show one collection."""
    found = state.api().json_object("GET", f"{BASE}/{collection_id}")
    emit(state, found, lambda: render_block(found.items()))


@collections.command("run")
@click.argument("collection_id")
@json_option
@click.pass_obj
def collections_run(state: CliContext, collection_id: str) -> None:
    """Start a run of every request of the collection."""
    run = state.api().json_object("POST", f"{BASE}/{collection_id}/run")
    emit(state, run, lambda: f"started run {run['run_id']} ({run.get('total_requests', 0)} requests)")


@collections.command("runs")
@click.argument("collection_id")
@click.argument("run_id", required=False)
@json_option
@click.pass_obj
def collections_runs(state: CliContext, collection_id: str, run_id: str | None) -> None:
    """List a collection's runs, or show one run's live counters."""
    api = state.api()
    if run_id is not None:
        run = api.json_object("GET", f"{BASE}/{collection_id}/runs/{run_id}")
        emit(state, run, lambda: render_block([("run_id", run.get("run_id")), ("status", run.get("status")),
                                               ("requests", _counts(run))]))  # fmt: skip
        return
    runs = api.json_object("GET", f"{BASE}/{collection_id}/runs")
    rows = ((r.get("run_id"), r.get("status"), _counts(r)) for r in runs.get("items", []))
    emit(state, runs, lambda: render_table(("RUN", "STATUS", "REQUESTS"), rows) if runs.get("items") else "no runs")


@collections.command("jobs")
@click.argument("collection_id")
@click.argument("run_id")
@click.option("--status", "status_filter", help="Only these: processing, completed, failed, timeout (comma-separated).")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@click.option("--cursor", help="cursor_next of the previous page.")
@json_option
@click.pass_obj
def collections_jobs(
    state: CliContext, collection_id: str, run_id: str, status_filter: str | None, limit: int, cursor: str | None
) -> None:
    """A page of a run's jobs (pass --cursor for the next)."""
    params: dict[str, Any] = {"limit": limit}
    if status_filter:
        params["status_filter"] = status_filter
    if cursor:
        params["cursor"] = cursor
    page = state.api().json_object("GET", f"{BASE}/{collection_id}/runs/{run_id}/jobs", params=params)
    rows = ((j.get("job_public_id"), j.get("status"), j.get("status_code"), j.get("custom_id"), j.get("url"))
            for j in page.get("items", []))  # fmt: skip

    def human() -> str:
        table = render_table(("JOB", "STATUS", "CODE", "CUSTOM ID", "URL"), rows)
        return table + (f"\nnext page: --cursor {page['cursor_next']}" if page.get("has_more") else "")

    emit(state, page, human)


@collections.command("result")
@click.argument("collection_id")
@click.argument("run_id")
@click.argument("job_id")
@json_option
@click.pass_obj
def collections_result(state: CliContext, collection_id: str, run_id: str, job_id: str) -> None:
    """One job's result (its html or markdown, extracted data, …), kept for a day."""
    result = state.api().json_object("GET", f"{BASE}/{collection_id}/runs/{run_id}/jobs/{job_id}/result")
    shown = {k: v for k, v in result.items() if v is not None and k not in ("html", "screenshot")}
    emit(state, result, lambda: render_block(shown.items()))
