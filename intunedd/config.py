"""Daemon settings: one TOML file, overridable by ``INTUNEDD_<SECTION>_<KEY>`` variables.

Every setting, its default and why it exists is in ``config/intunedd.toml``. Unknown keys
are refused so a typo never silently falls back to a default.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import msgspec

from .errors import ApiError
from .policy.rate_limits import parse_config
from .policy.traces import TracePolicy
from .sinks.config import parse_sink
from .sinks.destinations import Network, allowing, parse_networks

DEFAULT_CONFIG_PATHS = ("/etc/intunedd/intunedd.toml",)
MiB = 1024 * 1024


class _Section(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    pass


class ServerSettings(_Section, frozen=True):
    host: str = "127.0.0.1"
    port: int = 8420
    max_body_bytes: int = 50 * MiB
    max_json_depth: int = 64
    public_base_url: str = ""
    dashboard_session_s: Annotated[float, msgspec.Meta(gt=0)] = 12 * 3600.0


class BrowserHost(_Section, frozen=True):
    """A host whose browsers the workers use: Playwright's server (``playwright run-server``, or a
    Browserless container) or a Chromium CDP endpoint, and how many workers it takes at once."""

    url: Annotated[str, msgspec.Meta(min_length=1, max_length=2048)]
    protocol: Literal["playwright", "cdp"] = "playwright"
    capacity: Annotated[int, msgspec.Meta(ge=1, le=1024)] = 1


class PoolSettings(_Section, frozen=True):
    size: int = 2
    browser: str = "auto"
    headless: bool = True
    browser_args: list[str] = []
    remote_endpoint: str = ""
    remote_protocol: Literal["playwright", "cdp"] = "playwright"
    remote_endpoints: list[BrowserHost] = []
    recycle_after_attempts: int = 500
    recycle_rss_mb: int = 2048
    abort_grace_s: float = 3.0
    start_timeout_s: float = 30.0
    worker_user: str = ""
    idle_worker_retire_s: Annotated[float, msgspec.Meta(ge=0)] = 300.0
    worker_nice: Annotated[int, msgspec.Meta(ge=0, le=19)] = 10

    @property
    def hosts(self) -> list[BrowserHost]:
        """The browser hosts the workers use; none when each worker launches its own Chromium."""
        if self.remote_endpoints:
            return list(self.remote_endpoints)
        if self.remote_endpoint:
            return [BrowserHost(url=self.remote_endpoint, protocol=self.remote_protocol, capacity=self.size)]
        return []

    @property
    def capacity(self) -> int:
        """How many attempts run at once: ``size``, or the browser hosts' capacities added up."""
        hosts = self.hosts
        return sum(host.capacity for host in hosts) if hosts else self.size


class RunSettings(_Section, frozen=True):
    default_request_timeout_s: int = 600
    default_max_attempts: int = 3
    max_result_bytes: int = 2 * MiB
    max_log_bytes: int = 50 * MiB
    max_log_line_bytes: int = 64 * 1024
    max_error_message_chars: int = 8 * 1024
    max_error_stack_chars: int = 64 * 1024
    drain_timeout_s: float = 20.0
    sync_run_max_wait_s: float = 900.0
    record_video: bool = False
    trace_screenshots: bool = False
    trace_policy: TracePolicy = "on"


class SinkSettings(_Section, frozen=True):
    default: dict[str, Any] = {}
    signing_secret: str = ""
    webhook_timeout_s: float = 30.0
    webhook_window_s: float = 3600.0
    s3_window_s: float = 600.0
    first_retry_s: float = 10.0
    max_retry_s: float = 120.0
    concurrency: int = 16
    allow_networks: list[str] = []  # CIDRs sinks may reach despite being non-public (see sinks/destinations.py)


class SchedulerSettings(_Section, frozen=True):
    catch_up_window_s: float = -1.0


class QueueSettings(_Section, frozen=True):
    max_per_project: Annotated[int, msgspec.Meta(ge=1)] = 1000
    max_repeat_items_per_queue: Annotated[int, msgspec.Meta(ge=1)] = 1000


class EventSettings(_Section, frozen=True):
    subscriber_buffer: int = 1000
    subscriber_buffer_bytes: int = 8 * MiB
    max_event_bytes: int = 64 * 1024
    max_connections_per_key: int = 20


class DeploySettings(_Section, frozen=True):
    """What one deployed archive may hold; see config/intunedd.toml."""

    max_unpacked_bytes: Annotated[int, msgspec.Meta(ge=1)] = 200 * MiB
    max_members: Annotated[int, msgspec.Meta(ge=1)] = 20_000
    max_file_bytes: Annotated[int, msgspec.Meta(ge=1)] = 50 * MiB
    max_settings_bytes: Annotated[int, msgspec.Meta(ge=1)] = MiB
    max_json_depth: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 64


class RetentionSettings(_Section, frozen=True):
    """What the retention actor removes, and how often; see config/intunedd.toml. 0 keeps forever."""

    interval_s: Annotated[float, msgspec.Meta(gt=0)] = 3600.0
    artifacts_max_age_days: Annotated[float, msgspec.Meta(ge=0)] = 14.0
    runs_max_age_days: Annotated[float, msgspec.Meta(ge=0)] = 30.0
    keep_project_versions: Annotated[int, msgspec.Meta(ge=0)] = 5
    max_per_pass: Annotated[int, msgspec.Meta(ge=1)] = 500
    disk_usage_interval_s: Annotated[float, msgspec.Meta(gt=0)] = 60.0


class EnvironmentSettings(_Section, frozen=True):
    """Per-project Python environments, built with uv at deploy (see intunedd/environments)."""

    enabled: bool = True
    intuned_runtime: bool = True
    interpreters: list[str] = []
    download_python: bool = False
    index_url: str = ""
    extra_index_urls: list[str] = []
    find_links: list[str] = []
    allow_source_builds: bool = False
    build_timeout_s: Annotated[float, msgspec.Meta(gt=0)] = 900.0
    max_environment_mb: Annotated[int, msgspec.Meta(ge=1)] = 4096
    keep_unused_s: Annotated[float, msgspec.Meta(ge=0)] = 86400.0
    uv_cache_dir: str = ""


class AuthSessionSettings(_Section, frozen=True):
    check_window_s: Annotated[float, msgspec.Meta(ge=0)] = 0.0


class CollectionSettings(_Section, frozen=True):
    """The Scraping Pros-compatible /v1 API (intunedd/collections); see config/intunedd.toml."""

    allowed_networks: list[str] = []  # CIDRs request URLs may reach despite being non-public
    requests_per_minute: Annotated[int, msgspec.Meta(ge=0)] = 600
    callback_secret: str = ""
    max_concurrent: Annotated[int, msgspec.Meta(ge=0)] = 0  # 0: pool.size
    request_timeout_s: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 60.0
    result_retention_s: Annotated[float, msgspec.Meta(gt=0)] = 86400.0
    max_result_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 10 * MiB
    proxy: str = ""
    rate_limits: list[dict[str, Any]] = []  # a queue's rateLimits shape: how fast collection jobs start

    @property
    def networks(self) -> tuple[Network, ...]:
        return parse_networks(self.allowed_networks)


class MetricsSettings(_Section, frozen=True):
    # "host:port" serving /metrics without an API key; empty: only the main port's (with a key)
    listen: Annotated[str, msgspec.Meta(pattern=r"^(\S+:\d{1,5})?$")] = ""
    max_label_sets: Annotated[int, msgspec.Meta(ge=1)] = 200


class Settings(_Section, frozen=True):
    state_dir: str = ""
    workspace_id: str = ""
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    server: ServerSettings = ServerSettings()
    pool: PoolSettings = PoolSettings()
    runs: RunSettings = RunSettings()
    events: EventSettings = EventSettings()
    scheduler: SchedulerSettings = SchedulerSettings()
    queues: QueueSettings = QueueSettings()
    sinks: SinkSettings = SinkSettings()
    deploy: DeploySettings = DeploySettings()
    retention: RetentionSettings = RetentionSettings()
    environments: EnvironmentSettings = EnvironmentSettings()
    auth_sessions: AuthSessionSettings = AuthSessionSettings()
    collections: CollectionSettings = CollectionSettings()
    metrics: MetricsSettings = MetricsSettings()

    @property
    def state_path(self) -> Path:
        return Path(self.state_dir)

    @property
    def db_path(self) -> Path:
        return self.state_path / "intunedd.db"

    @property
    def secrets_key_path(self) -> Path:
        return self.state_path / "secrets.key"

    @property
    def projects_path(self) -> Path:
        return self.state_path / "projects"

    @property
    def artifacts_path(self) -> Path:
        return self.state_path / "artifacts"

    @property
    def environments_path(self) -> Path:
        return self.state_path / "environments"


class ConfigError(Exception):
    pass


def default_state_dir(environ: Mapping[str, str]) -> str:
    # systemd's StateDirectory= exports STATE_DIRECTORY; otherwise stay beside the caller.
    if environ.get("STATE_DIRECTORY"):
        return environ["STATE_DIRECTORY"].split(":")[0]
    return str(Path.cwd() / "intunedd-data")


def _environ_value(field: msgspec.inspect.Field, raw: str) -> Any:
    """A variable's text as the schema wants it: lists and tables are JSON, everything else
    stays a string that ``convert(strict=False)`` turns into the field's type, so a str
    setting such as a secret of digits stays a str."""
    if isinstance(field.type, msgspec.inspect.ListType | msgspec.inspect.DictType):
        try:
            return msgspec.json.decode(raw)
        except msgspec.DecodeError as e:
            raise ConfigError(f"INTUNEDD_ variable for {field.name} must be JSON: {e}") from e
    return raw


def _fields(info: msgspec.inspect.StructType) -> dict[str, msgspec.inspect.Field]:
    return {f.encode_name: f for f in info.fields}


def _apply_environ(data: dict[str, Any], environ: Mapping[str, str]) -> None:
    info = msgspec.inspect.type_info(Settings)
    assert isinstance(info, msgspec.inspect.StructType)
    top = _fields(info)
    sections = {
        name: field.type for name, field in top.items() if isinstance(field.type, msgspec.inspect.StructType)
    }
    for name, raw in environ.items():
        if not name.startswith("INTUNEDD_") or name in ("INTUNEDD_CONFIG", "INTUNEDD_URL", "INTUNEDD_API_KEY"):
            continue
        key = name.removeprefix("INTUNEDD_").lower()
        if key in top and key not in sections:
            data[key] = _environ_value(top[key], raw)
            continue
        section, _, rest = key.partition("_")
        if section in sections and rest:
            fields = _fields(sections[section])
            if rest in fields:
                data.setdefault(section, {})[rest] = _environ_value(fields[rest], raw)
            else:
                data.setdefault(section, {})[rest] = raw  # refused below, naming the key


def _check_hosts(pool: PoolSettings) -> None:
    if pool.remote_endpoint and pool.remote_endpoints:
        raise ConfigError("pool.remote_endpoint and pool.remote_endpoints: set one or the other")
    schemes = {"playwright": ("ws", "wss"), "cdp": ("ws", "wss", "http", "https")}
    for index, host in enumerate(pool.hosts):
        scheme = urlsplit(host.url).scheme
        if scheme not in schemes[host.protocol]:
            where = f"pool.remote_endpoints[{index}].url" if pool.remote_endpoints else "pool.remote_endpoint"
            raise ConfigError(f"{where}: a {host.protocol} endpoint is a {' or '.join(schemes[host.protocol])} URL")


def load_settings(path: str | None = None, environ: Mapping[str, str] = os.environ) -> Settings:
    """Read the TOML file (explicit path, ``$INTUNEDD_CONFIG``, then /etc), then the environment."""
    candidates = [path] if path else [environ.get("INTUNEDD_CONFIG", ""), *DEFAULT_CONFIG_PATHS]
    data: dict[str, Any] = {}
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            with open(candidate, "rb") as f:
                try:
                    data = tomllib.load(f)
                except tomllib.TOMLDecodeError as e:
                    raise ConfigError(f"{candidate}: {e}") from e
            break
        if candidate and candidate == path:
            raise ConfigError(f"config file {candidate} does not exist")
    _apply_environ(data, environ)
    try:
        settings = msgspec.convert(data, Settings, strict=False)
    except msgspec.ValidationError as e:
        raise ConfigError(f"invalid configuration: {e}") from e
    if not settings.state_dir:
        settings = msgspec.structs.replace(settings, state_dir=default_state_dir(environ))
    if settings.pool.size < 1:
        raise ConfigError("pool.size must be at least 1")
    _check_hosts(settings.pool)
    try:
        allowed = parse_networks(settings.sinks.allow_networks)
    except ValueError as e:
        raise ConfigError(f"sinks.allow_networks: {e}") from e
    try:
        parse_networks(settings.collections.allowed_networks)
    except ValueError as e:
        raise ConfigError(f"collections.allowed_networks: {e}") from e
    if settings.collections.rate_limits:
        try:
            parse_config(settings.collections.rate_limits, None, None, field_prefix="collections")
        except ApiError as e:
            raise ConfigError(e.message) from e
    if settings.sinks.default:
        try:
            with allowing(allowed):
                parse_sink(settings.sinks.default)
        except msgspec.ValidationError as e:
            raise ConfigError(f"sinks.default: {e}") from e
    return settings
