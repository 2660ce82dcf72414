"""What the HTTP layer may reach: the actors' handles, and nothing else."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..actors.browser_pool import PoolHandle
from ..actors.bus import BusHandle
from ..actors.runner import RunnerHandle
from ..actors.sink_dispatcher import DispatcherStatistics
from ..actors.store import StoreHandle
from ..config import Settings


@dataclass
class Handles:
    settings: Settings
    workspace_id: str
    store: StoreHandle
    bus: BusHandle
    pool: PoolHandle
    runner: RunnerHandle
    signing_secret: bytes
    sink_statistics: Callable[[], DispatcherStatistics]
    # Hashes of keys already checked: a valid key stays valid for the process lifetime.
    known_keys: set[str] = field(default_factory=set)
