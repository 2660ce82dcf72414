"""``intunedd`` command line: run the daemon, create API keys, and drive the HTTP API.

The client commands mirror ``intuned platform …`` (spec §9) so scripts and habits carry over: the
same nouns and verbs, the same ``-l/-o/-f`` flags, ``--json`` for machine output and the same
default file names for attempt logs and traces.

Every request goes through one ``httpx.Client`` built by ``CliContext.client_factory``; tests pass
a ``CliContext`` whose factory adds an ``httpx.MockTransport``, so nothing is patched. Failures are
printed as ``error: <message> (<code>)`` on stderr with exit status 1; usage errors keep click's
own format and exit status 2.
"""

from __future__ import annotations

import io
import json
import re
import sys
import tarfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

import click
import httpx

from intunedd.config import ConfigError, Settings, load_settings
from intunedd.jsonc import loads_jsonc

DEFAULT_URL = "http://127.0.0.1:8420"
DEFAULT_TIMEOUT = httpx.Timeout(30.0)
# The daemon unpacks and indexes a deploy before answering, which can outlast a normal read timeout.
DEPLOY_TIMEOUT = httpx.Timeout(30.0, read=600.0)
POLL_FIRST_S = 0.1
POLL_MAX_S = 1.0
POLL_FACTOR = 1.5
TERMINAL_STATUSES = frozenset({"completed", "failed", "canceled"})
PROJECT_FILES = ("Intuned.json", "Intuned.jsonc")
DEPLOY_SKIP_NAMES = frozenset({".git", "__pycache__", ".venv", "node_modules"})
DEPLOY_SKIP_SUFFIXES = (".pyc",)
FILTER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\s*(!=|>=|<=|=|>|<)\s*\S")
MAX_CELL = 60

ClientFactory = Callable[..., httpx.Client]

try:
    VERSION = package_version("intunedd")
except PackageNotFoundError:  # running from a source tree that was never installed
    VERSION = "0+unknown"


class CliError(click.ClickException):
    """A failure reported as ``error: <message> (<code>)`` with exit status 1."""

    exit_code = 1

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"error: {self.message} ({self.code})", err=True)


# --------------------------------------------------------------------------------------------
# HTTP client


def _api_error(response: httpx.Response) -> CliError:
    """Turn a 4xx/5xx into a CliError, preferring the daemon's canonical error body."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("message"):
        return CliError(str(body["message"]), str(body.get("code") or f"http-{response.status_code}"))
    text = response.text.strip()[:200] or response.reason_phrase
    return CliError(f"HTTP {response.status_code}: {text}", f"http-{response.status_code}")


class ApiClient:
    """The daemon's HTTP API as the commands need it: JSON calls, downloads, workspace paths."""

    def __init__(self, http: httpx.Client, workspace: str | None) -> None:
        self._http = http
        self._workspace = workspace

    @contextmanager
    def _transport_errors(self) -> Iterator[None]:
        try:
            yield
        except httpx.TimeoutException as e:
            raise CliError(f"{self._http.base_url} did not answer in time ({e})", "timeout") from e
        except httpx.TransportError as e:
            raise CliError(f"cannot reach intunedd at {self._http.base_url}: {e}", "connection-error") from e

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        with self._transport_errors():
            response = self._http.request(method, path, **kwargs)
        if response.is_error:
            raise _api_error(response)
        return response

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.call(method, path, **kwargs)
        try:
            return response.json()
        except ValueError as e:
            raise CliError(f"{method} {path} answered with something that is not JSON", "bad-response") from e

    def json_object(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        data = self.json(method, path, **kwargs)
        if not isinstance(data, dict):
            raise CliError(f"{method} {path} answered with JSON that is not an object", "bad-response")
        return data

    def json_object_or_none(self, method: str, path: str) -> dict[str, Any] | None:
        """Like ``json_object``, but None when the daemon answers 404."""
        with self._transport_errors():
            response = self._http.request(method, path)
        if response.status_code == 404:
            return None
        if response.is_error:
            raise _api_error(response)
        try:
            data = response.json()
        except ValueError as e:
            raise CliError(f"{method} {path} answered with something that is not JSON", "bad-response") from e
        if not isinstance(data, dict):
            raise CliError(f"{method} {path} answered with JSON that is not an object", "bad-response")
        return data

    @contextmanager
    def stream(self, path: str, *, signed: bool = False) -> Iterator[httpx.Response]:
        """GET ``path`` without buffering the body: traces can be hundreds of megabytes.

        With ``signed``, ``path`` is a signed URL (possibly absolute): its query authorizes it, so
        the API key is not sent, as it must not leak to wherever a signed URL points.
        """
        request = self._http.build_request("GET", path)
        if signed:
            request.headers.pop("x-api-key", None)
        with self._transport_errors():
            response = self._http.send(request, stream=True)
            try:
                if response.is_error:
                    response.read()
                    raise _api_error(response)
                yield response
            finally:
                response.close()

    def workspace_id(self) -> str:
        # Asked once per invocation; --workspace / INTUNEDD_WORKSPACE skips the round trip.
        if self._workspace is None:
            info = self.json_object("GET", "/api/v1/info")
            if not info.get("workspaceId"):
                raise CliError("/api/v1/info did not name a workspaceId", "bad-response")
            self._workspace = str(info["workspaceId"])
        return self._workspace

    def workspace_path(self, *parts: str | int) -> str:
        segments = (quote(str(part), safe="") for part in (self.workspace_id(), *parts))
        return "/api/v1/workspace/" + "/".join(segments)

    def project_path(self, project: str, *parts: str | int) -> str:
        return self.workspace_path("projects", project, *parts)


@dataclass
class CliContext:
    """``ctx.obj``: global options plus the injectable I/O (HTTP client factory, sleep, clock)."""

    client_factory: ClientFactory = httpx.Client
    sleep: Callable[[float], None] = time.sleep
    monotonic: Callable[[], float] = time.monotonic
    url: str = DEFAULT_URL
    api_key: str | None = None
    workspace: str | None = None
    project: str | None = None
    json_output: bool = False
    _api: ApiClient | None = field(default=None, repr=False)

    def api(self, *, require_key: bool = True) -> ApiClient:
        if require_key and not self.api_key:
            raise click.UsageError(
                "no API key: pass --api-key or set INTUNEDD_API_KEY (create one with `intunedd keys create`)"
            )
        if self._api is None:
            headers = {"user-agent": f"intunedd-cli/{VERSION}"}
            if self.api_key:
                headers["x-api-key"] = self.api_key
            http = self.client_factory(base_url=self.url, headers=headers, timeout=DEFAULT_TIMEOUT)
            # Close the connection pool when the whole invocation ends, whatever the outcome.
            click.get_current_context().find_root().call_on_close(http.close)
            self._api = ApiClient(http, self.workspace)
        return self._api


# --------------------------------------------------------------------------------------------
# Project directory helpers


def project_name_in(directory: Path) -> str | None:
    """``projectName`` from the directory's Intuned.json(c), or None when there is none."""
    for filename in PROJECT_FILES:
        path = directory / filename
        if not path.is_file():
            continue
        try:
            data = loads_jsonc(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise CliError(f"cannot read {path}: {e}", "invalid-project-settings") from e
        name = data.get("projectName") if isinstance(data, dict) else None
        return name if isinstance(name, str) and name else None
    return None


def resolve_project(state: CliContext) -> str:
    project = state.project or project_name_in(Path.cwd())
    if not project:
        raise click.UsageError(
            "no project: pass -p/--project, set INTUNEDD_PROJECT, "
            "or run from a directory whose Intuned.json has a projectName"
        )
    return project


def _deploy_filter(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
    basename = info.name.rsplit("/", 1)[-1]
    if basename in DEPLOY_SKIP_NAMES or basename.endswith(DEPLOY_SKIP_SUFFIXES):
        return None  # for a directory this also skips everything under it
    # Local user and group names mean nothing on the daemon host.
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def build_archive(directory: Path) -> bytes:
    """The project as an in-memory tar.gz whose member names are relative to ``directory``."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for entry in sorted(directory.iterdir()):
            tar.add(entry, arcname=entry.name, recursive=True, filter=_deploy_filter)
    return buffer.getvalue()


# --------------------------------------------------------------------------------------------
# Output


def _is_string_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _cell(value: Any, limit: int | None = MAX_CELL) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if _is_string_list(value):
        text = ", ".join(value)
    elif isinstance(value, dict | list):
        text = json.dumps(value, ensure_ascii=False)
    else:
        text = str(value)
    if limit is None:
        return text
    text = " ".join(text.split())  # a newline inside a cell would break the table's rows
    return _shorten(text, limit)


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    cells = [list(headers), *([_cell(v) for v in row] for row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells)


def render_block(pairs: Iterable[tuple[str, Any]]) -> str:
    items = list(pairs)
    width = max((len(key) for key, _ in items), default=0) + 1
    lines = []
    for key, value in items:
        if isinstance(value, dict | list) and value and not _is_string_list(value):
            # Nested JSON goes on its own lines, indented under the key, so results stay readable.
            nested = json.dumps(value, indent=2, ensure_ascii=False).splitlines()
            lines.append(f"{key}:")
            lines.extend("  " + line for line in nested)
        else:
            # Multi-line values (Playwright errors carry a call log) stay aligned under the first line.
            text = _cell(value, limit=None).replace("\n", "\n" + " " * (width + 1))
            lines.append(f"{key + ':':<{width}} {text}".rstrip())
    return "\n".join(lines)


def describe_error(error: Any, *, one_line: bool = False) -> str | None:
    """``message (code)``; with ``one_line``, the message's first line shortened so the code shows."""
    if not isinstance(error, dict):
        return None if error is None else str(error)
    message = str(error.get("message", "")).strip()
    if one_line:
        message = _shorten(message.splitlines()[0] if message else "", MAX_CELL // 2)
    code = error.get("code")
    return f"{message} ({code})" if code else message


def describe_reason(reason: Any) -> str | None:
    if not isinstance(reason, dict):
        return None if reason is None else str(reason)
    return f"{reason.get('type', '')}: {reason.get('message', '')}"


def format_duration(ms: Any) -> str | None:
    if not isinstance(ms, int | float):
        return None
    return f"{ms / 1000:.2f}s" if ms < 60_000 else f"{int(ms // 60_000)}m{ms % 60_000 / 1000:04.1f}s"


def _run_pairs(data: dict[str, Any], *, skip: Iterable[str] = ()) -> Iterator[tuple[str, Any]]:
    skipped = set(skip)
    for key, value in data.items():
        if key in skipped:
            continue
        if key == "error":
            value = describe_error(value)
        elif key == "reason":
            value = describe_reason(value)
        elif key == "runDuration":
            value = format_duration(value)
        yield key, value


def emit(state: CliContext, data: Any, human: Callable[[], str]) -> None:
    """Print ``data`` as JSON under --json, else the human rendering."""
    if state.json_output:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        click.echo(human())


# --------------------------------------------------------------------------------------------
# Shared options


def _set_json(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        ctx.ensure_object(CliContext).json_output = True


def _set_project(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value:
        ctx.ensure_object(CliContext).project = value


# Accepted on the group and on every leaf, so both `intunedd --json runs list` and
# `intunedd runs list --json` work, as in Intuned's CLI.
json_option = click.option(
    "--json", is_flag=True, expose_value=False, callback=_set_json, help="Print the raw JSON response."
)
project_option = click.option(
    "-p",
    "--project",
    "--project-name",
    metavar="NAME",
    expose_value=False,
    callback=_set_project,
    help="Project name (default: $INTUNEDD_PROJECT, else projectName in ./Intuned.json).",
)
config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    help="Settings file (default: $INTUNEDD_CONFIG, else /etc/intunedd/intunedd.toml).",
)


def _load_settings(config_path: str | None) -> Settings:
    try:
        return load_settings(config_path)
    except ConfigError as e:
        raise CliError(str(e), "config-error") from e


# --------------------------------------------------------------------------------------------
# Commands


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(VERSION, prog_name="intunedd")
@click.option(
    "--url",
    envvar="INTUNEDD_URL",
    show_envvar=True,
    default=DEFAULT_URL,
    show_default=True,
    help="Base URL of the daemon.",
)
@click.option("--api-key", envvar="INTUNEDD_API_KEY", show_envvar=True, help="Sent as x-api-key.")
@click.option(
    "--workspace",
    envvar="INTUNEDD_WORKSPACE",
    show_envvar=True,
    help="Workspace id (default: asked from the daemon).",
)
@click.option(
    "-p",
    "--project",
    "--project-name",
    metavar="NAME",
    envvar="INTUNEDD_PROJECT",
    show_envvar=True,
    expose_value=False,
    callback=_set_project,
    help="Project name (default: projectName in ./Intuned.json).",
)
@json_option
@click.pass_context
def cli(ctx: click.Context, url: str, api_key: str | None, workspace: str | None) -> None:
    """Self-hosted Intuned-compatible automation daemon and its client."""
    state = ctx.ensure_object(CliContext)
    state.url = url.rstrip("/")
    state.api_key = api_key or None
    state.workspace = workspace or None


@cli.command()
@config_option
@click.option(
    "--ready-fd",
    type=int,
    default=None,
    help="Write the bound URLs as one JSON line to this inherited file descriptor once ready.",
)
def serve(config_path: str | None, ready_fd: int | None) -> None:
    """Run the daemon in the foreground until SIGTERM or SIGINT."""
    settings = _load_settings(config_path)
    # Imported here so client-only commands never load the daemon (trio, quart, sqlite).
    from intunedd.daemon import serve as serve_daemon

    serve_daemon(settings, ready_fd)


@cli.command()
@json_option
@click.pass_obj
def health(state: CliContext) -> None:
    """Check that the daemon answers (no API key needed)."""
    data = state.api(require_key=False).json_object("GET", "/health")
    emit(state, data, lambda: render_block(data.items()))


@cli.group()
def keys() -> None:
    """Manage API keys (local: writes the daemon's database directly)."""


@keys.command("create")
@click.option("--name", default="default", show_default=True, help="A label to recognise the key by.")
@config_option
@json_option
@click.pass_obj
def keys_create(state: CliContext, name: str, config_path: str | None) -> None:
    """Create an API key and print it; it is shown only this once."""
    settings = _load_settings(config_path)
    from intunedd.store.keys import create_api_key

    key = create_api_key(settings, name)
    if state.json_output:
        click.echo(json.dumps({"key": key}))
        return
    click.echo(key)
    click.echo(f"created API key {name!r}; store it now, it cannot be shown again", err=True)


def _key_rows(keys: list[dict[str, Any]]) -> str:
    headers = ("ID", "NAME", "PREFIX", "CREATED", "REVOKED")
    rows = [(k["id"], k["name"], k["prefix"], k["createdAt"], k["revokedAt"] or "") for k in keys]
    return render_table(headers, rows) if keys else "no API keys"


@keys.command("list")
@config_option
@json_option
@click.pass_obj
def keys_list(state: CliContext, config_path: str | None) -> None:
    """List API keys: id, name, the key's first characters, when created and revoked."""
    settings = _load_settings(config_path)
    import msgspec

    from intunedd.store.keys import list_keys

    listed = msgspec.to_builtins(list_keys(settings))
    emit(state, listed, lambda: _key_rows(listed))


@keys.command("revoke")
@click.argument("name_or_prefix", metavar="ID|NAME|PREFIX")
@config_option
@json_option
@click.pass_obj
def keys_revoke(state: CliContext, name_or_prefix: str, config_path: str | None) -> None:
    """Revoke the one unrevoked key with this id, name or prefix; a running daemon refuses it within a second."""
    settings = _load_settings(config_path)
    import msgspec

    from intunedd.store.errors import RecordMissing
    from intunedd.store.keys import AmbiguousKey, revoke_key

    try:
        revoked = msgspec.to_builtins(revoke_key(settings, name_or_prefix))
    except RecordMissing as e:
        raise CliError(e.message, "not-found") from e
    except AmbiguousKey as e:
        raise CliError(str(e), "ambiguous") from e
    emit(state, revoked, lambda: f"revoked API key {revoked['name']!r} ({revoked['id']})")


@cli.group()
def projects() -> None:
    """Deploy and list projects."""


@projects.command("deploy")
@click.argument("directory", metavar="DIR", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--name", help="Project name (default: projectName in DIR/Intuned.json, else DIR's name).")
@json_option
@click.pass_obj
def projects_deploy(state: CliContext, directory: Path, name: str | None) -> None:
    """Upload the project in DIR as a new version."""
    if not (directory / "api").is_dir():
        raise click.BadParameter(f"{directory} has no api/ directory", param_hint="DIR")
    project = name or project_name_in(directory) or directory.resolve().name
    archive = build_archive(directory)
    api = state.api()
    data = api.json_object(
        "POST",
        api.project_path(project, "deploy"),
        content=archive,
        headers={"content-type": "application/gzip"},
        timeout=DEPLOY_TIMEOUT,
    )
    emit(state, data, lambda: render_block(data.items()))


@projects.command("list")
@json_option
@click.pass_obj
def projects_list(state: CliContext) -> None:
    """List deployed projects."""
    api = state.api()
    data = api.json("GET", api.workspace_path("projects"))
    if not isinstance(data, list):
        raise CliError("the project list is not a JSON array", "bad-response")
    headers = ("NAME", "VERSION", "APIS", "DEPLOYED", "API ACCESS", "MAX CONCURRENT")
    rows = (
        (
            p.get("name"),
            p.get("version"),
            p.get("apis"),
            p.get("deployedAt"),
            p.get("apiAccess"),
            p.get("maxConcurrentRequests"),
        )
        for p in data
    )
    emit(state, data, lambda: render_table(headers, rows) if data else "no projects deployed")


@cli.group()
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


def wait_for_result(state: CliContext, api: ApiClient, path: str, timeout: float | None) -> dict[str, Any]:
    """Poll a result URL until the run is terminal, backing off from 0.1 s to 1 s between polls."""
    deadline = None if timeout is None else state.monotonic() + timeout
    delay = POLL_FIRST_S
    while True:
        result = api.json_object("GET", path)
        status = result.get("status")
        if status in TERMINAL_STATUSES:
            return result
        remaining = None if deadline is None else deadline - state.monotonic()
        if remaining is not None and remaining <= 0:
            raise CliError(f"run {result.get('runId')} still {status} after {timeout:g}s", "timeout")
        state.sleep(delay if remaining is None else min(delay, remaining))
        delay = min(delay * POLL_FACTOR, POLL_MAX_S)


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
    if not state.json_output:
        click.echo(f"started run {run_id}, waiting…", err=True)
    result = wait_for_result(state, api, api.project_path(project, "run", run_id, "result"), timeout)
    emit(state, result, lambda: render_block(_run_pairs(result)))
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
    text = render_block(_run_pairs(data, skip=("attempts",)))
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


@cli.group()
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
    emit(state, data, lambda: render_block(_run_pairs(data)))


def _download(state: CliContext, kind: str, run_id: str, attempt: int | None, output: str | None) -> None:
    api = state.api()
    project = resolve_project(state)
    number = _latest_attempt_number(api, project, run_id, attempt)
    target = output or f"{kind}_{run_id}_{number}.{ARTIFACT_SUFFIXES[kind]}"
    with api.stream(api.project_path(project, "runs", run_id, "attempts", number, kind)) as response:
        if target == "-":
            _copy_to_stdout(response)
            return
        size = _copy_to_file(response, Path(target))
    info = {"runId": run_id, "attempt": number, "path": target, "bytes": size}
    emit(state, info, lambda: f"wrote {size} bytes to {target}")


def _copy_to_stdout(response: httpx.Response) -> None:
    for chunk in response.iter_bytes():
        click.echo(chunk, nl=False)  # bytes go to the binary buffer under stdout, unmodified


def _copy_to_file(response: httpx.Response, target: Path) -> int:
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


@cli.group()
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
    ("trigger", "Start a JobRun of the job now (a MANUAL run)."),
    ("pause", "Pause the job: no scheduled JobRuns, and its active JobRun is paused."),
    ("resume", "Resume a paused job and its JobRun."),
):
    _job_action_command(_action, _summary)


@cli.group()
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
            _copy_to_stdout(response)
            return
        size = _copy_to_file(response, Path(target))
    info = {"jobRunId": job_run_id, "jobId": job_id, "path": target, "bytes": size}
    emit(state, info, lambda: f"wrote {size} bytes to {target}")


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
    return _shorten(" ".join(str(error).split()), DELIVERY_ERROR_CELL)


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


@cli.group()
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


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point."""
    cli.main(args=argv, prog_name="intunedd")
