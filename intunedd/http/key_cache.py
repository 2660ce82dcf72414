"""API keys the daemon has seen valid lately.

A key is checked against the database at most every ``KEY_RECHECK_S`` seconds, so a key
revoked over the API, or by ``intunedd keys revoke`` writing the database directly
beside the running daemon, stops working within that time.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import trio

KEY_RECHECK_S = 0.5


class KeyCache:
    def __init__(self, recheck_s: float = KEY_RECHECK_S) -> None:
        self._recheck_s = recheck_s
        # Only digests of keys found valid: at most one entry per key in the database.
        self._checked_at: dict[str, float] = {}

    def fresh(self, digest: str) -> bool:
        """Whether ``digest`` was found valid less than ``recheck_s`` ago."""
        checked = self._checked_at.get(digest)
        if checked is None:
            return False
        if trio.current_time() - checked < self._recheck_s:
            return True
        del self._checked_at[digest]
        return False

    def remember(self, digest: str) -> None:
        self._checked_at[digest] = trio.current_time()

    async def valid(self, digest: str, lookup: Callable[[str], Awaitable[bool]]) -> bool:
        """Whether ``digest`` names a valid key: from memory if checked lately, else by ``lookup``."""
        if self.fresh(digest):
            return True
        if not await lookup(digest):
            return False
        self.remember(digest)
        return True
