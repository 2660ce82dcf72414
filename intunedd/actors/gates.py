"""Opening gated lanes: one permit at a time, when the rate limiter says the gate's next run may start.

A gate is a queue (serial: its next item is not even considered until the one running ends,
so a random wait counts from that end) or a job with ``rateLimits`` (its JobRuns' items start
one permit at a time, however many may run at once). For each gate with a run waiting, one
task here asks the limiter when the next run may start, sleeps until then (or until something
changes), and grants one permit. The run records its admission with the limiter before its
first attempt, and the gate asks again only after that, so two permits never race one window.

The limiter decides; this only waits and tells. It belongs to the runner, whose lanes it reads.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from ..clock import Clock
from .lanes import QUEUE_LANE, Lanes
from .rate_limiter import RateLimiterHandle

log = logging.getLogger(__name__)
# After the limiter failed to answer (a bug, a store error), the gate asks again this much later.
RETRY_AFTER_ERROR_S = 1.0


class Gates:
    def __init__(
        self,
        lanes: Lanes,
        limiter: RateLimiterHandle,
        clock: Clock,
        admit: Callable[[], None],
        start_soon: Callable[[Callable[..., Awaitable[None]], Any], None],
    ) -> None:
        self._lanes = lanes
        self._limiter = limiter
        self._clock = clock
        self._admit = admit
        self._start_soon = start_soon
        self._wake: dict[str, trio.Event] = {}  # gate -> its task's wake-up; present while the task runs
        self._admitting: dict[str, int] = {}  # gate -> runs started whose admission is not yet recorded
        self._sleeps: dict[str, trio.CancelScope] = {}  # gate -> its task's sleep until the limiter's time

    def poke(self) -> None:
        """Something changed (a run waits, started, ended): every gate looks again."""
        for gate in self._lanes.gates_waiting() | set(self._wake):
            event = self._wake.get(gate)
            if event is not None:
                event.set()
            else:
                self._wake[gate] = trio.Event()
                self._start_soon(self._open, gate)

    def reconsider(self, gate: str) -> None:
        """The gate's limits changed (its queue was deleted or made again): stop sleeping on the old answer."""
        scope = self._sleeps.get(gate)
        if scope is not None:
            scope.cancel()
        self.poke()

    def starting(self, gate: str) -> None:
        """A run of ``gate`` took its permit; the gate waits until ``admitted`` records it."""
        self._admitting[gate] = self._admitting.get(gate, 0) + 1

    async def admitted(self, gate: str) -> None:
        try:
            await self._limiter.admitted(gate)
        finally:
            self._admitting[gate] -= 1
            if not self._admitting[gate]:
                del self._admitting[gate]
            self.poke()

    async def finished(self, gate: str) -> None:
        """A run of ``gate`` ended: a queue's random wait counts from now."""
        try:
            await self._limiter.finished(gate)
        except Exception:  # noqa: BLE001 - the run has ended either way
            log.exception("the rate limiter failed to note the end of a run of %s", gate)

    def _busy(self, gate: str) -> bool:
        serial = gate.startswith(QUEUE_LANE)
        return bool(
            self._lanes.permits(gate) or self._admitting.get(gate) or (serial and self._lanes.running_in(gate))
        )

    async def _open(self, gate: str) -> None:
        try:
            while gate in self._lanes.gates_waiting():
                wake = self._wake[gate] = trio.Event()
                if self._busy(gate):
                    await wake.wait()
                    continue
                try:
                    wait = await self._limiter.next_start(gate)
                except Exception:  # noqa: BLE001 - a failing limiter must not end the runner
                    log.exception("the rate limiter failed to answer for %s", gate)
                    with trio.move_on_after(RETRY_AFTER_ERROR_S):
                        await wake.wait()
                    continue
                delay = (wait.at - self._clock.now()).total_seconds()
                if delay > 0:
                    # Only a change of limits cuts this short: runs starting and ending elsewhere
                    # cannot make the limiter's answer earlier.
                    with trio.move_on_after(delay) as self._sleeps[gate]:
                        await trio.sleep_forever()
                    del self._sleeps[gate]
                    continue
                if not self._busy(gate):
                    self._lanes.grant(gate)
                    self._admit()
        finally:
            self._wake.pop(gate, None)
            if gate not in self._lanes.gates_waiting():
                # A permit granted to a run that went away meanwhile is void: it was given for then.
                self._lanes.revoke(gate)
