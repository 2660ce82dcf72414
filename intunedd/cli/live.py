"""Following the daemon live: its ``/events`` websocket, and a JobRun watched to its end.

The stream is what makes the display move at once; the JobRun GET is polled beside it every
``POLL_EVERY_S`` all the same (events the daemon dropped, a stream that could not be opened), so
a watch ends correctly with or without it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from types import TracebackType
from typing import Any
from urllib.parse import urlencode

import click
from websockets.exceptions import ConnectionClosed, WebSocketException
from websockets.sync.client import ClientConnection, connect

from .context import ApiClient, CliContext, CliError
from .progress import finished, format_seconds, job_run_summary, progress_bar, rate_per_s

OPEN_TIMEOUT_S = 5.0
EVENT_WAIT_S = 0.5
POLL_EVERY_S = 2.0
ACTIVE_JOB_RUN = frozenset({"PENDING", "RUNNING", "PAUSING", "PAUSED", "RESUMING"})
JOB_RUN_EVENTS = ("jobrun.progress", "jobrun.status")


def events_url(
    state: CliContext, api: ApiClient, project: str | None, types: Iterable[str], run: str | None = None
) -> str:
    query = [("project", project), ("run", run), *(("type", t) for t in types)]
    return (
        state.url.replace("http", "ws", 1)
        + api.workspace_path("events")
        + "?"
        + urlencode([(key, value) for key, value in query if value])
    )


class EventStream:
    """The filtered event stream, read with a timeout. With ``required`` False it is best effort:
    unreachable or closed, ``next`` just waits out its timeout and the caller polls instead."""

    def __init__(self, state: CliContext, url: str, *, required: bool = False) -> None:
        self._state = state
        self._url = url
        self._required = required
        self._socket: ClientConnection | None = None

    def __enter__(self) -> EventStream:
        headers = {"x-api-key": self._state.api_key or ""}
        try:
            # The daemon subscribes before it accepts: nothing committed after this is missed.
            self._socket = connect(self._url, additional_headers=headers, open_timeout=OPEN_TIMEOUT_S)
        except (OSError, WebSocketException, TimeoutError) as e:
            if self._required:
                raise CliError(f"cannot open the event stream at {self._url.split('?')[0]}: {e}", "stream-error") from e
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        if self._socket is not None:
            self._socket.close()

    def next(self, timeout: float) -> dict[str, Any] | None:
        """The next event, or None when ``timeout`` passes first."""
        if self._socket is None:
            self._state.sleep(timeout)
            return None
        try:
            event = json.loads(self._socket.recv(timeout=timeout))
        except TimeoutError:
            return None
        except ConnectionClosed as e:
            self._socket = None
            if self._required:
                reason = e.rcvd.reason if e.rcvd else "connection lost"
                raise CliError(f"the event stream ended: {reason or 'closed'}", "stream-closed") from e
            return None
        return event if isinstance(event, dict) else None


class LiveLine:
    """One status line on stderr: redrawn in place on a terminal, else printed when ``key`` changes
    (a log file gets one line per change, not one per tick)."""

    def __init__(self) -> None:
        self._tty = sys.stderr.isatty()
        self._key: object = None
        self._drawn = False

    def show(self, text: str, key: object) -> None:
        if self._tty:
            click.echo(f"\r{text}\x1b[K", err=True, nl=False)
            self._drawn = True
        elif key != self._key:
            click.echo(text, err=True)
        self._key = key

    def end(self) -> None:
        if self._drawn:
            click.echo("", err=True)
            self._drawn = False


def _job_run(body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    job_run = body.get("jobRun")
    if not isinstance(job_run, dict):
        raise CliError("the JobRun answer has no jobRun object", "bad-response")
    counts = job_run.get("counts")
    return str(job_run.get("status")), counts if isinstance(counts, dict) else {}


def apply_event(
    event: dict[str, Any] | None, job_run_id: str, status: str, counts: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    """The status and counts after ``event``, when it is about this JobRun."""
    data = event.get("data") if event else None
    if not isinstance(data, dict) or data.get("job_run_id") != job_run_id:
        return status, counts
    if isinstance(data.get("counts"), dict):
        counts = data["counts"]
    if event and event.get("type") == "jobrun.status" and isinstance(data.get("status"), str):
        status = data["status"]
    return status, counts


def watch_job_run(
    state: CliContext, api: ApiClient, project: str, path: str, job_run_id: str, timeout: float | None
) -> tuple[str, dict[str, Any]]:
    """Show the JobRun at ``path`` on a live bar until it ends; its final status and GET body."""
    with EventStream(state, events_url(state, api, project, JOB_RUN_EVENTS)) as stream:
        body = api.json_object("GET", path)
        status, counts = _job_run(body)
        started = polled = state.monotonic()
        done_then = finished(counts)
        line = LiveLine()
        try:
            while status in ACTIVE_JOB_RUN:
                elapsed = state.monotonic() - started
                if timeout is not None and elapsed >= timeout:
                    raise CliError(f"JobRun {job_run_id} still {status} after {format_seconds(timeout)}", "timeout")
                bar = progress_bar(counts, rate_per_s(done_then, finished(counts), elapsed))
                line.show(bar, (status, *counts.items()))
                status, counts = apply_event(stream.next(EVENT_WAIT_S), job_run_id, status, counts)
                if state.monotonic() - polled >= POLL_EVERY_S:
                    status, counts = _job_run(api.json_object("GET", path))
                    polled = state.monotonic()
            body = api.json_object("GET", path)  # the final counts and the results link
            status, counts = _job_run(body)
            elapsed = state.monotonic() - started
            line.show(progress_bar(counts, rate_per_s(done_then, finished(counts), elapsed)), None)
        finally:
            line.end()  # an error or Ctrl-C starts on a line of its own
        click.echo(job_run_summary(job_run_id, status, counts, elapsed), err=True)
    return status, body
