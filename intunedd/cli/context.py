"""What every command shares: the HTTP client, the invocation's context, the options."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
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
DEPLOY_TIMEOUT = httpx.Timeout(30.0, read=1200.0)  # a first deploy may install its dependencies
POLL_FIRST_S = 0.1
POLL_MAX_S = 1.0
POLL_FACTOR = 1.5
TERMINAL_STATUSES = frozenset({"completed", "failed", "canceled"})
PROJECT_FILES = ("Intuned.json", "Intuned.jsonc")
# auth-sessions-instances/ holds `dev run authsession`'s logins (cookies, tokens): never uploaded.
DEPLOY_SKIP_NAMES = frozenset({".git", "__pycache__", ".venv", "node_modules", "auth-sessions-instances"})
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
    if isinstance(body, dict) and isinstance(body.get("detail"), str):  # the /v1 API's errors
        return CliError(body["detail"], f"http-{response.status_code}")
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


def set_project(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
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
    callback=set_project,
    help="Project name (default: $INTUNEDD_PROJECT, else projectName in ./Intuned.json).",
)
config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    help="Settings file (default: $INTUNEDD_CONFIG, else /etc/intunedd/intunedd.toml).",
)


def load_daemon_settings(config_path: str | None) -> Settings:
    try:
        return load_settings(config_path)
    except ConfigError as e:
        raise CliError(str(e), "config-error") from e
