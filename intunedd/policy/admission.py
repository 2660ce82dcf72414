"""Which waiting run starts next: FIFO across lanes, within lane, project and total caps.

A lane is a queue of runs sharing one cap: a project's standalone runs (capped by its
``maxConcurrentRequests``) or one JobRun's items (capped by the job's). Every lane belongs to
a project, and all of a project's lanes together stay within the project's cap.
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec


class Lane(msgspec.Struct, frozen=True):
    project: str
    cap: int
    paused: bool = False


def next_lane(
    heads: Mapping[str, int],
    lanes: Mapping[str, Lane],
    lane_running: Mapping[str, int],
    project_running: Mapping[str, int],
    project_caps: Mapping[str, int],
    *,
    total_running: int,
    capacity: int,
) -> str | None:
    """The lane whose oldest waiting run (lowest sequence number) may start now, if any.

    ``heads`` maps each lane with waiting runs to the sequence number of its oldest one. A
    lane that is paused or at its own or its project's cap is passed over, so it cannot hold
    back the others; nothing starts once ``capacity`` runs are in flight.
    """
    if total_running >= capacity:
        return None
    eligible = [
        (seq, key)
        for key, seq in heads.items()
        if not (lane := lanes[key]).paused
        and lane_running.get(key, 0) < lane.cap
        and project_running.get(lane.project, 0) < project_caps.get(lane.project, 1)
    ]
    return min(eligible)[1] if eligible else None
