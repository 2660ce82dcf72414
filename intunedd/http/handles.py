"""What the HTTP layer may reach: the actors' handles and typed reads, never the store itself."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry

from ..actors.browser_pool import PoolHandle
from ..actors.bus import BusHandle
from ..actors.collections import CollectionsHandle
from ..actors.deployer import DeployerHandle
from ..actors.retention import RetentionHandle
from ..actors.runner import RunnerHandle
from ..actors.sink_dispatcher import DispatcherStatistics
from ..clock import Clock
from ..config import Settings
from ..dashboard.sessions import SessionTable
from ..secrets import SecretBox
from .auth_schemas import AuthSessionsApi
from .key_cache import KeyCache
from .records import Records


@dataclass
class Handles:
    settings: Settings
    workspace_id: str
    records: Records
    bus: BusHandle
    pool: PoolHandle
    runner: RunnerHandle
    deployer: DeployerHandle
    signing_secret: bytes
    secrets: SecretBox  # seals and unseals AuthSession parameters, states and proxies
    sink_statistics: Callable[[], DispatcherStatistics]
    retention: RetentionHandle
    clock: Clock
    # None until the daemon wires the AuthSessions actor; its operations answer 503 meanwhile.
    auth_sessions: AuthSessionsApi | None = None
    # None until the daemon wires the collections actor (the /v1 API).
    collections: CollectionsHandle | None = None
    # The Prometheus registry the metrics actor keeps; None: /metrics answers 404.
    metrics: CollectorRegistry | None = None
    known_keys: KeyCache = field(default_factory=KeyCache)
    dashboard_sessions: SessionTable = field(default_factory=SessionTable)
