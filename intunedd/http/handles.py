"""What the HTTP layer may reach: the actors' handles and typed reads, never the store itself."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..actors.browser_pool import PoolHandle
from ..actors.bus import BusHandle
from ..actors.deployer import DeployerHandle
from ..actors.retention import RetentionHandle
from ..actors.runner import RunnerHandle
from ..actors.sink_dispatcher import DispatcherStatistics
from ..clock import Clock
from ..config import Settings
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
    known_keys: KeyCache = field(default_factory=KeyCache)
