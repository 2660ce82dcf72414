"""``intunedd events``: tail the daemon's live event stream."""

from __future__ import annotations

import json

import click

from .context import CliContext, json_option, project_option
from .live import EventStream, events_url
from .progress import event_line

IDLE_WAIT_S = 0.5  # how often Ctrl-C is noticed between events


@click.command("events")
@click.option(
    "-t", "--type", "types", multiple=True, metavar="TYPE", help="Only events of TYPE (repeatable), e.g. run.failed."
)
@click.option("--run", "run_id", metavar="RUN_ID", help="Only events of this run.")
@project_option
@json_option
@click.pass_obj
def events(state: CliContext, types: tuple[str, ...], run_id: str | None) -> None:
    """Print the daemon's events as they are committed, until Ctrl-C.

    One line per event (time, type, project, run, then its data); --json prints each event as
    the daemon sends it, one JSON object per line. Without -p, every project's events.
    """
    api = state.api()
    url = events_url(state, api, state.project, types, run_id)
    try:
        with EventStream(state, url, required=True) as stream:
            click.echo("following events; Ctrl-C to stop", err=True)
            while True:
                event = stream.next(IDLE_WAIT_S)
                if event is not None:
                    click.echo(json.dumps(event, ensure_ascii=False) if state.json_output else event_line(event))
    except KeyboardInterrupt:
        return
