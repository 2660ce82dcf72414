"""Which pending run starts next: FIFO across projects, within per-project and total caps."""

from __future__ import annotations

from collections.abc import Mapping


def next_project(
    heads: Mapping[str, int],
    running: Mapping[str, int],
    caps: Mapping[str, int],
    *,
    total_running: int,
    capacity: int,
) -> str | None:
    """The project whose oldest waiting run (lowest sequence number) may start now, if any.

    ``heads`` maps each project with waiting runs to the sequence number of its oldest one;
    a project at its ``maxConcurrentRequests`` cap is passed over so it cannot hold back
    the others, and nothing starts once ``capacity`` runs are in flight.
    """
    if total_running >= capacity:
        return None
    eligible = [(seq, name) for name, seq in heads.items() if running.get(name, 0) < caps.get(name, 1)]
    return min(eligible)[1] if eligible else None
