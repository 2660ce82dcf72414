"""``intunedd jobs`` and ``intunedd jobruns``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from .context import (
    ApiClient,
    CliContext,
    CliError,
    emit,
    json_option,
    project_option,
    resolve_project,
)
from .live import watch_job_run
from .render import describe_error, describe_reason, render_block, render_table
from .runs import copy_to_file, copy_to_stdout, load_run_body, output_option

# --------------------------------------------------------------------------------------------
# Jobs and JobRuns

JOB_RUNS_MAX_PAGE = 500  # the daemon's largest pageSize; bigger limits are fetched in several pages
_DURATION_UNITS = (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000))


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _compact_duration(every: Any) -> str:
    """A schedule duration as written: ``"30m"`` stays, a number of ms becomes ``30m`` when exact."""
    if isinstance(every, bool) or not isinstance(every, int | float):
        return str(every)
    if every != int(every):
        return f"{every}ms"
    ms = int(every)
    for unit, size in _DURATION_UNITS:
        if ms and ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def describe_schedule(schedule: Any) -> str | None:
    """``every 30m``, ``2 intervals``, ``1 calendar``, ``every 1h + 2 calendars``; None without one."""
    if not isinstance(schedule, dict):
        return None
    intervals = schedule.get("intervals") or []
    calendars = schedule.get("calendars") or []
    parts = []
    if len(intervals) == 1 and isinstance(intervals[0], dict):
        parts.append(f"every {_compact_duration(intervals[0].get('every'))}")
    elif intervals:
        parts.append(_plural(len(intervals), "interval"))
    if calendars:
        parts.append(_plural(len(calendars), "calendar"))
    return " + ".join(parts) or None


def _render_jobs(page: list[Any], offset: int, total: int) -> str:
    if not page:
        return f"no jobs (total {total})"
    headers = ("ID", "STATE", "SOURCE", "ITEMS", "SCHEDULE", "NEXT RUN", "LAST RUN")
    rows = (
        (
            j.get("id"),
            j.get("state"),
            j.get("source"),
            len(j.get("payload") or []),
            describe_schedule(j.get("schedule")),
            j.get("next_run_time"),
            j.get("last_run_time"),
        )
        for j in page
    )
    return f"{render_table(headers, rows)}\n{offset + 1}-{offset + len(page)} of {total}"


def _job_pairs(job: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    for key, value in job.items():
        yield key, value
        if key == "schedule" and value:
            yield "scheduleSummary", describe_schedule(value)


def describe_counts(counts: Any) -> str | None:
    if not isinstance(counts, dict):
        return None if counts is None else str(counts)
    return ", ".join(f"{status} {count}" for status, count in counts.items())


def _job_run_pairs(job_run: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    # The configuration snapshot repeats the job; --json has it.
    for key, value in job_run.items():
        if key == "job_configuration_snapshot":
            continue
        if key == "reason":
            value = describe_reason(value)
        elif key == "error":
            value = describe_error(value)
        elif key == "counts":
            value = describe_counts(value)
        yield key, value


def _render_job_run(body: dict[str, Any]) -> str:
    job_run = body.get("jobRun")
    pairs = list(_job_run_pairs(job_run if isinstance(job_run, dict) else {}))
    results = body.get("results")
    if isinstance(results, dict):
        pairs.append(("results", results.get("signed_url")))
        pairs.append(("resultsFormat", results.get("format")))
        pairs.append(("resultsExpire", results.get("signed_url_expiration")))
    else:
        ended = isinstance(job_run, dict) and job_run.get("end_time")
        pairs.append(("results", "none" if ended else "none yet"))
    return render_block(pairs)


def _render_job_runs(page: list[Any], offset: int, total: int | None) -> str:
    shown_total = len(page) + offset if total is None else total
    if not page:
        return f"no JobRuns (total {shown_total})"
    headers = ("ID", "TYPE", "STATUS", "PENDING", "RUNNING", "COMPLETED", "FAILED", "START", "END")
    rows = []
    for jr in page:
        counts = jr.get("counts") if isinstance(jr.get("counts"), dict) else {}
        rows.append(
            (
                jr.get("id"),
                jr.get("type"),
                jr.get("status"),
                counts.get("pending"),
                counts.get("running"),
                counts.get("completed"),
                counts.get("failed"),
                jr.get("start_time"),
                jr.get("end_time"),
            )
        )
    return f"{render_table(headers, rows)}\n{offset + 1}-{offset + len(page)} of {shown_total}"


def _list_jobs(api: ApiClient, project: str) -> list[Any]:
    data = api.json("GET", api.project_path(project, "jobs"))
    if not isinstance(data, list):
        raise CliError("the job list is not a JSON array", "bad-response")
    return data


def _fetch_job_runs(api: ApiClient, path: str, limit: int, offset: int) -> tuple[list[Any], int | None]:
    """JobRuns ``offset`` to ``offset + limit`` from an API paged by pageSize/pageNumber.

    With ``offset`` a multiple of ``limit`` that is one page (pageSize=limit); otherwise the
    window straddles two pages, and both are fetched and sliced.
    """
    size = min(limit, JOB_RUNS_MAX_PAGE)
    number = offset // size + 1
    skip = offset % size
    collected: list[Any] = []
    total: int | None = None
    while True:
        data = api.json_object("GET", path, params={"pageSize": size, "pageNumber": number})
        job_runs = data.get("jobRuns")
        if not isinstance(job_runs, list):
            raise CliError("the JobRun list has no jobRuns array", "bad-response")
        if isinstance(data.get("totalCount"), int):
            total = data["totalCount"]
        collected.extend(job_runs)
        if len(collected) >= skip + limit or len(job_runs) < size or (total is not None and number * size >= total):
            return collected[skip : skip + limit], total
        number += 1


def _find_job_run(api: ApiClient, project: str, job_run_id: str) -> tuple[str, dict[str, Any]]:
    """The job owning a JobRun, found as Intuned's CLI does: ask each job for the run."""
    for job in _list_jobs(api, project):
        job_id = str(job.get("id")) if isinstance(job, dict) else None
        if not job_id:
            continue
        body = api.json_object_or_none("GET", api.project_path(project, "jobs", job_id, "runs", job_run_id))
        if body is not None:
            return job_id, body
    raise CliError(f"JobRun {job_run_id} not found in any job of project {project}", "not-found")


def _get_job_run(api: ApiClient, project: str, job_run_id: str, job_id: str | None) -> tuple[str, dict[str, Any]]:
    if job_id is None:
        return _find_job_run(api, project, job_run_id)
    return job_id, api.json_object("GET", api.project_path(project, "jobs", job_id, "runs", job_run_id))


limit_option = click.option("-l", "--limit", type=click.IntRange(min=1), default=50, show_default=True)
offset_option = click.option("-o", "--offset", type=click.IntRange(min=0), default=0, show_default=True)
job_option = click.option(
    "--job",
    "job_id",
    metavar="JOB_ID",
    help="The job the JobRun belongs to (default: found by asking each job of the project).",
)


@click.group()
def jobs() -> None:
    """Create, inspect, trigger, pause and delete jobs."""


@jobs.command("create")
@click.argument("data")
@project_option
@json_option
@click.pass_obj
def jobs_create(state: CliContext, data: str) -> None:
    """Create a job. DATA is the job (with its id) as inline JSON, @file.json, a path, or - for stdin.

    \b
    Example: intunedd jobs create '{"id":"daily","payload":[{"apiName":"list","parameters":{}}],
             "configuration":{"retry":{"maximumAttempts":3}},"schedule":{"intervals":[{"every":"1d"}]}}'
    """
    body = load_run_body(data, "job")
    if not isinstance(body.get("id"), str) or not body["id"]:
        raise click.BadParameter('the job needs an "id"', param_hint="DATA")
    project = resolve_project(state)
    api = state.api()
    created = api.json_object("POST", api.project_path(project, "jobs"), json=body)
    emit(state, created, lambda: render_block(created.items()))


@jobs.command("update")
@click.argument("job_id")
@click.argument("data")
@project_option
@json_option
@click.pass_obj
def jobs_update(state: CliContext, job_id: str, data: str) -> None:
    """Replace a job's definition. DATA is inline JSON, @file.json, a path, or - for stdin.

    An "id" in DATA is dropped when it is JOB_ID, so the file used to create the job can be reused.
    """
    body = load_run_body(data, "job")
    given = body.pop("id", None)
    if given is not None and given != job_id:
        raise click.BadParameter(f"DATA is job {given!r} but JOB_ID is {job_id!r}", param_hint="DATA")
    project = resolve_project(state)
    api = state.api()
    updated = api.json_object("PUT", api.project_path(project, "jobs", job_id), json=body)
    emit(state, updated, lambda: render_block(updated.items()))


@jobs.command("get")
@click.argument("job_id")
@project_option
@json_option
@click.pass_obj
def jobs_get(state: CliContext, job_id: str) -> None:
    """Show one job."""
    api = state.api()
    job = api.json_object("GET", api.project_path(resolve_project(state), "jobs", job_id))
    emit(state, job, lambda: render_block(_job_pairs(job)))


@jobs.command("list")
@limit_option
@offset_option
@project_option
@json_option
@click.pass_obj
def jobs_list(state: CliContext, limit: int, offset: int) -> None:
    """List the project's jobs.

    The API returns every job; -l/-o pick the slice shown, and --json prints that slice.
    """
    api = state.api()
    listed = _list_jobs(api, resolve_project(state))
    page = listed[offset : offset + limit]
    emit(state, page, lambda: _render_jobs(page, offset, len(listed)))


@jobs.command("delete")
@click.argument("job_id")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@project_option
@json_option
@click.pass_obj
def jobs_delete(state: CliContext, job_id: str, yes: bool) -> None:
    """Delete a job and its schedule; asks first unless -y."""
    project = resolve_project(state)
    if not yes:
        click.confirm(f"Delete job {job_id!r} of project {project!r}?", abort=True, err=True)
    api = state.api()
    api.call("DELETE", api.project_path(project, "jobs", job_id))
    deleted = {"id": job_id, "message": "deleted"}
    emit(state, deleted, lambda: f"deleted job {job_id}")


def _job_action_command(action: str, summary: str) -> None:
    @jobs.command(action, help=summary)
    @click.argument("job_id")
    @project_option
    @json_option
    @click.pass_obj
    def command(state: CliContext, job_id: str) -> None:
        api = state.api()
        data = api.json_object("POST", api.project_path(resolve_project(state), "jobs", job_id, action))
        emit(state, data, lambda: render_block(data.items()))


for _action, _summary in (
    ("pause", "Pause the job: no scheduled JobRuns, and its active JobRun is paused."),
    ("resume", "Resume a paused job and its JobRun."),
):
    _job_action_command(_action, _summary)


watch_timeout_option = click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    metavar="S",
    help="Give up watching after S seconds (the JobRun keeps going).",
)


def _watch(
    ctx: click.Context, api: ApiClient, project: str, job_id: str, job_run_id: str, timeout: float | None
) -> None:
    """Watch to the end, print the JobRun, exit 1 unless it COMPLETED."""
    state: CliContext = ctx.obj
    path = api.project_path(project, "jobs", job_id, "runs", job_run_id)
    status, body = watch_job_run(state, api, project, path, job_run_id, timeout)
    emit(state, body, lambda: _render_job_run(body))
    if status != "COMPLETED":
        ctx.exit(1)


@jobs.command("trigger")
@click.argument("job_id")
@click.option("--wait", is_flag=True, help="Show the JobRun's progress until it ends; exit 1 unless it COMPLETED.")
@watch_timeout_option
@project_option
@json_option
@click.pass_context
def jobs_trigger(ctx: click.Context, job_id: str, wait: bool, timeout: float | None) -> None:
    """Start a JobRun of the job now (a MANUAL run)."""
    state: CliContext = ctx.obj
    api = state.api()
    project = resolve_project(state)
    data = api.json_object("POST", api.project_path(project, "jobs", job_id, "trigger"))
    if not wait:
        emit(state, data, lambda: render_block(data.items()))
        return
    _watch(ctx, api, project, job_id, str(data["jobRunId"]), timeout)


@click.group()
def jobruns() -> None:
    """Inspect, terminate and download the results of JobRuns."""


@jobruns.command("list")
@click.argument("job_id")
@limit_option
@offset_option
@project_option
@json_option
@click.pass_obj
def jobruns_list(state: CliContext, job_id: str, limit: int, offset: int) -> None:
    """List the JobRuns of job JOB_ID."""
    api = state.api()
    path = api.project_path(resolve_project(state), "jobs", job_id, "runs")
    page, total = _fetch_job_runs(api, path, limit, offset)
    data = {"jobRuns": page, "totalCount": total}
    emit(state, data, lambda: _render_job_runs(page, offset, total))


@jobruns.command("get")
@click.argument("job_run_id")
@job_option
@project_option
@json_option
@click.pass_obj
def jobruns_get(state: CliContext, job_run_id: str, job_id: str | None) -> None:
    """Show one JobRun and where its results are."""
    _, body = _get_job_run(state.api(), resolve_project(state), job_run_id, job_id)
    emit(state, body, lambda: _render_job_run(body))


@jobruns.command("watch")
@click.argument("job_run_id")
@job_option
@watch_timeout_option
@project_option
@json_option
@click.pass_context
def jobruns_watch(ctx: click.Context, job_run_id: str, job_id: str | None, timeout: float | None) -> None:
    """Show a JobRun's progress live (done, failed, running, rate, time left) until it ends.

    Ends with a summary line and the JobRun; exit status 0 when it COMPLETED, else 1.
    """
    state: CliContext = ctx.obj
    api = state.api()
    project = resolve_project(state)
    if job_id is None:
        job_id, _ = _find_job_run(api, project, job_run_id)
    _watch(ctx, api, project, job_id, job_run_id, timeout)


@jobruns.command("terminate")
@click.argument("job_run_id")
@job_option
@project_option
@json_option
@click.pass_obj
def jobruns_terminate(state: CliContext, job_run_id: str, job_id: str | None) -> None:
    """Terminate a JobRun: its pending and running items are canceled."""
    api = state.api()
    project = resolve_project(state)
    if job_id is None:
        job_id, _ = _find_job_run(api, project, job_run_id)
    data = api.json_object("POST", api.project_path(project, "jobs", job_id, "runs", job_run_id, "terminate"))
    emit(state, data, lambda: render_block(data.items()))


@jobruns.command("results")
@click.argument("job_run_id")
@job_option
@output_option
@project_option
@json_option
@click.pass_obj
def jobruns_results(state: CliContext, job_run_id: str, job_id: str | None, output: str | None) -> None:
    """Download a finished JobRun's results.

    One JSON line per item, to jobrun_<JOB_RUN_ID>.jsonl unless -o FILE (- for stdout).
    """
    api = state.api()
    job_id, body = _get_job_run(api, resolve_project(state), job_run_id, job_id)
    results = body.get("results")
    url = results.get("signed_url") if isinstance(results, dict) else None
    if not url:
        job_run = body.get("jobRun")
        status = job_run.get("status") if isinstance(job_run, dict) else None
        raise CliError(f"JobRun {job_run_id} has no results yet: it is {status}", "no-results")
    target = output or f"jobrun_{job_run_id}.jsonl"
    with api.stream(str(url), signed=True) as response:
        if target == "-":
            copy_to_stdout(response)
            return
        size = copy_to_file(response, Path(target))
    info = {"jobRunId": job_run_id, "jobId": job_id, "path": target, "bytes": size}
    emit(state, info, lambda: f"wrote {size} bytes to {target}")
