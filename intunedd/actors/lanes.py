"""The runs waiting to start, in lanes, and how many of each lane and project are running.

A lane is one project's standalone runs, one JobRun's items or one queue's items (see
``policy.admission``). The runner owns one ``Lanes``; it asks ``next_run`` for what may start
and reports ``finished`` when a run stops. Nothing here waits or touches the store.

A lane may be *gated*: it starts a run only with a permit, which ``gates.Gates`` grants when the
rate limiter says the gate's next run may start. Every lane of one gate (a job's JobRuns) shares
its permits; a queue is a gate of its own, with one lane of cap 1.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

import msgspec

from ..job_spec import JobRunRecord
from ..messages import RunRecord
from ..policy.admission import Lane, next_lane

PROJECT_LANE = "project:"
QUEUE_LANE = "queue:"


def queue_lane(project: str, queue_id: str) -> str:
    return f"{QUEUE_LANE}{project}/{queue_id}"


def lane_key(run: RunRecord) -> str:
    if run.job_run_id:
        return run.job_run_id
    if run.queue_id:
        return queue_lane(run.project, run.queue_id)
    return f"{PROJECT_LANE}{run.project}"


class Lanes:
    def __init__(self, project_cap: Callable[[str], int]) -> None:
        self._project_cap = project_cap
        self._waiting: dict[str, deque[RunRecord]] = {}  # lane key -> runs in acceptance order
        self._waiting_ids: set[str] = set()
        self._job_lanes: dict[str, Lane] = {}  # JobRun id -> its lane
        self._snapshots: dict[str, dict[str, Any]] = {}  # JobRun id -> job_configuration_snapshot
        self._lane_running: dict[str, int] = {}
        self._project_running: dict[str, int] = {}
        self._queue_lanes: dict[str, Lane] = {}  # queue lane key -> its lane
        self._gates: dict[str, str] = {}  # lane key -> its gate
        self._permits: dict[str, int] = {}  # gate -> runs it may start now

    @property
    def waiting_count(self) -> int:
        return len(self._waiting_ids)

    def is_waiting(self, run_id: str) -> bool:
        return run_id in self._waiting_ids

    # -- JobRun lanes ---------------------------------------------------------------------

    def open_job_run(self, job_run: JobRunRecord, gate: str | None = None) -> None:
        self._job_lanes[job_run.id] = Lane(job_run.project, job_run.max_concurrent, paused=job_run.status == "PAUSED")
        self._snapshots[job_run.id] = job_run.snapshot
        if gate is not None:
            self._gates[job_run.id] = gate

    def has_job_run(self, job_run_id: str) -> bool:
        return job_run_id in self._job_lanes

    def close_job_run(self, job_run_id: str) -> None:
        self._job_lanes.pop(job_run_id, None)
        self._snapshots.pop(job_run_id, None)
        self._close(job_run_id)

    def _close(self, key: str) -> None:
        self._gates.pop(key, None)
        for run in self._waiting.pop(key, deque()):
            self._waiting_ids.discard(run.id)

    def set_paused(self, job_run_id: str, paused: bool) -> None:
        lane = self._job_lanes.get(job_run_id)
        if lane is not None:
            self._job_lanes[job_run_id] = msgspec.structs.replace(lane, paused=paused)

    def snapshot(self, job_run_id: str) -> dict[str, Any]:
        return self._snapshots.get(job_run_id, {})

    # -- queue lanes ------------------------------------------------------------------------

    def open_queue(self, project: str, queue_id: str, *, gated: bool) -> str:
        """Open the queue's lane (one run at a time, in order); returns its key, also its gate's."""
        key = queue_lane(project, queue_id)
        self._queue_lanes[key] = Lane(project, 1)
        if gated:
            self._gates[key] = key
        return key

    def close_queue(self, project: str, queue_id: str) -> None:
        key = queue_lane(project, queue_id)
        self._queue_lanes.pop(key, None)
        self._permits.pop(key, None)
        self._close(key)

    # -- gates ----------------------------------------------------------------------------

    def gate_of(self, run: RunRecord) -> str | None:
        return self._gates.get(lane_key(run))

    def grant(self, gate: str) -> None:
        self._permits[gate] = self._permits.get(gate, 0) + 1

    def revoke(self, gate: str) -> None:
        self._permits.pop(gate, None)

    def permits(self, gate: str) -> int:
        return self._permits.get(gate, 0)

    def gates_waiting(self) -> set[str]:
        """Gates with a run waiting in a lane that is not paused."""
        return {
            gate
            for key, gate in self._gates.items()
            if self._waiting.get(key) and not self._lane(key).paused
        }

    def running_in(self, gate: str) -> int:
        return sum(self._lane_running.get(key, 0) for key, of in self._gates.items() if of == gate)

    # -- waiting runs ---------------------------------------------------------------------

    def enqueue(self, run: RunRecord) -> None:
        """Queue a run in its lane, keeping the lane in acceptance order (requeued runs go back in place)."""
        queue = self._waiting.setdefault(lane_key(run), deque())
        self._waiting_ids.add(run.id)
        if not queue or queue[-1].seq < run.seq:
            queue.append(run)
            return
        position = next(i for i, queued in enumerate(queue) if queued.seq > run.seq)
        queue.insert(position, run)

    def remove(self, run_ids: set[str]) -> None:
        for key, queue in self._waiting.items():
            if any(run.id in run_ids for run in queue):
                self._waiting[key] = deque(run for run in queue if run.id not in run_ids)
        self._waiting_ids -= run_ids

    def next_run(self, *, total_running: int, capacity: int) -> RunRecord | None:
        """The run that may start now, if any; it counts as running from here on."""
        heads = {key: queue[0].seq for key, queue in self._waiting.items() if queue}
        lanes = {key: self._admissible(key) for key in heads}
        caps = {lane.project: self._project_cap(lane.project) for lane in lanes.values()}
        key = next_lane(
            heads,
            lanes,
            self._lane_running,
            self._project_running,
            caps,
            total_running=total_running,
            capacity=capacity,
        )
        if key is None:
            return None
        run = self._waiting[key].popleft()
        self._waiting_ids.discard(run.id)
        if (gate := self._gates.get(key)) is not None:
            self._permits[gate] -= 1
        self._lane_running[key] = self._lane_running.get(key, 0) + 1
        self._project_running[run.project] = self._project_running.get(run.project, 0) + 1
        return run

    def finished(self, run: RunRecord) -> None:
        self._lane_running[lane_key(run)] -= 1
        self._project_running[run.project] -= 1

    def _admissible(self, key: str) -> Lane:
        """The lane as admission sees it: a gated lane without a permit waits like a paused one."""
        lane = self._lane(key)
        gate = self._gates.get(key)
        if gate is not None and not self._permits.get(gate):
            return msgspec.structs.replace(lane, paused=True)
        return lane

    def _lane(self, key: str) -> Lane:
        if key.startswith(PROJECT_LANE):
            name = key.removeprefix(PROJECT_LANE)
            return Lane(name, self._project_cap(name))
        return self._job_lanes.get(key) or self._queue_lanes.get(key) or Lane("", 1, paused=True)
