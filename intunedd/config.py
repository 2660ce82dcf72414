"""Daemon settings: one TOML file, overridable by ``INTUNEDD_<SECTION>_<KEY>`` variables.

Every setting, its default and why it exists is in ``config/intunedd.toml``. Unknown keys
are refused so a typo never silently falls back to a default.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import msgspec

from .sinks.config import parse_sink

DEFAULT_CONFIG_PATHS = ("/etc/intunedd/intunedd.toml",)
MiB = 1024 * 1024


class _Section(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    pass


class ServerSettings(_Section, frozen=True):
    host: str = "127.0.0.1"
    port: int = 8420
    max_body_bytes: int = 50 * MiB


class PoolSettings(_Section, frozen=True):
    size: int = 2
    browser: str = "auto"
    headless: bool = True
    browser_args: list[str] = []
    remote_endpoint: str = ""
    remote_protocol: Literal["playwright", "cdp"] = "playwright"
    recycle_after_attempts: int = 500
    recycle_rss_mb: int = 2048
    abort_grace_s: float = 3.0
    start_timeout_s: float = 30.0


class RunSettings(_Section, frozen=True):
    default_request_timeout_s: int = 600
    default_max_attempts: int = 3
    max_result_bytes: int = 2 * MiB
    drain_timeout_s: float = 20.0
    sync_run_max_wait_s: float = 900.0
    record_video: bool = False


class SinkSettings(_Section, frozen=True):
    default: dict[str, Any] = {}
    signing_secret: str = ""
    webhook_timeout_s: float = 30.0
    webhook_window_s: float = 3600.0
    s3_window_s: float = 600.0
    first_retry_s: float = 10.0
    max_retry_s: float = 120.0
    concurrency: int = 16


class SchedulerSettings(_Section, frozen=True):
    catch_up_window_s: float = -1.0


class EventSettings(_Section, frozen=True):
    subscriber_buffer: int = 1000


class Settings(_Section, frozen=True):
    state_dir: str = ""
    workspace_id: str = ""
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    server: ServerSettings = ServerSettings()
    pool: PoolSettings = PoolSettings()
    runs: RunSettings = RunSettings()
    events: EventSettings = EventSettings()
    scheduler: SchedulerSettings = SchedulerSettings()
    sinks: SinkSettings = SinkSettings()

    @property
    def state_path(self) -> Path:
        return Path(self.state_dir)

    @property
    def db_path(self) -> Path:
        return self.state_path / "intunedd.db"

    @property
    def projects_path(self) -> Path:
        return self.state_path / "projects"

    @property
    def artifacts_path(self) -> Path:
        return self.state_path / "artifacts"


class ConfigError(Exception):
    pass


def default_state_dir(environ: Mapping[str, str]) -> str:
    # systemd's StateDirectory= exports STATE_DIRECTORY; otherwise stay beside the caller.
    if environ.get("STATE_DIRECTORY"):
        return environ["STATE_DIRECTORY"].split(":")[0]
    return str(Path.cwd() / "intunedd-data")


def _coerce(raw: str) -> Any:
    lowered = raw.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(raw)
        except ValueError:
            pass
    return raw


def _apply_environ(data: dict[str, Any], environ: Mapping[str, str]) -> None:
    sections = {"server", "pool", "runs", "events", "scheduler", "sinks"}
    for name, raw in environ.items():
        if not name.startswith("INTUNEDD_") or name in ("INTUNEDD_CONFIG", "INTUNEDD_URL", "INTUNEDD_API_KEY"):
            continue
        key = name.removeprefix("INTUNEDD_").lower()
        section, _, rest = key.partition("_")
        if section in sections and rest:
            data.setdefault(section, {})[rest] = _coerce(raw)
        elif key in ("state_dir", "workspace_id", "log_level"):
            data[key] = raw


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
    if settings.sinks.default:
        try:
            parse_sink(settings.sinks.default)
        except msgspec.ValidationError as e:
            raise ConfigError(f"sinks.default: {e}") from e
    return settings
