"""What actors tell each other: domain records, commands with their reply slot, and events.

Everything here is a frozen msgspec Struct. A command that needs an answer carries the
send end of a one-slot channel (``reply``); the actor sends exactly one ``Reply`` to it.
"""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar

import msgspec
import trio

T = TypeVar("T")


class _Message(msgspec.Struct, frozen=True, kw_only=True):
    pass


# -- domain records (rows of the store, decoded) ------------------------------------------


class ProjectEnvironment(_Message, frozen=True):
    """The Python environment a project version runs in (``intunedd.environments``)."""

    key: str
    runtime: Literal["intunedd", "intuned"]
    python: str


class ProjectVersion(_Message, frozen=True):
    name: str
    version: int
    path: str
    apis: list[str]
    api_access: bool
    max_concurrent: int
    deployed_at: str
    default_sink: Any = None
    environment: ProjectEnvironment | None = None  # None: the daemon's own
    auth_required: bool = False  # Intuned.json authSessions.enabled: every run names an AuthSession


class DeployOutcome(_Message, frozen=True):
    """A deploy's answer: the version, and what the deployer wants its author to know."""

    project: ProjectVersion
    warnings: list[str] = []
    environment_reused: bool = False


class RunOptions(_Message, frozen=True):
    max_attempts: int
    request_timeout_s: int
    save_trace: bool
    proxy: str | None = None
    auth_session: Any = None
    sink: Any = None


class RunRequest(_Message, frozen=True):
    """What a run/start body asks for; ``policy.run_options`` fills in what it leaves out."""

    max_attempts: int | None = None
    request_timeout_s: int | None = None
    save_trace: bool = True
    proxy: str | None = None
    auth_session: Any = None
    sink: Any = None


class RunRecord(_Message, frozen=True):
    id: str
    seq: int
    project: str
    version: int
    api: str
    parameters: Any
    options: RunOptions
    status: str
    run_type: str
    created_at: str
    started_at: str | None = None
    ended_at: str | None = None
    result: Any = None
    extended_payloads: list[Any] | None = None
    error: Any = None
    reason: Any = None
    attempts_count: int = 0
    job_id: str | None = None
    job_run_id: str | None = None
    queue_id: str | None = None


class AttemptRecord(_Message, frozen=True):
    run_id: str
    number: int
    status: str
    started_at: str
    ended_at: str | None = None
    error: Any = None
    log_path: str | None = None
    trace_path: str | None = None
    video_path: str | None = None


class Event(_Message, frozen=True):
    """Published on the bus after the change it describes is committed."""

    type: str
    at: str
    project: str | None = None
    run_id: str | None = None
    data: dict[str, Any] = {}


# -- replies ----------------------------------------------------------------------------


class Reply(_Message, Generic[T], frozen=True):
    value: T | None = None
    error: Exception | None = None

    def unwrap(self) -> T:
        if self.error is not None:
            raise self.error
        return self.value  # type: ignore[return-value]


ReplySlot = trio.MemorySendChannel[Reply[Any]]


def answer(slot: ReplySlot, reply: Reply[Any]) -> None:
    """Send the one reply a command gets. A caller that was cancelled meanwhile (a client
    that hung up) has closed its end: the work stands, nobody is left to tell."""
    try:
        slot.send_nowait(reply)
    except trio.BrokenResourceError:
        pass


# -- runner commands --------------------------------------------------------------------


class SubmitRun(_Message, frozen=True):
    project: str
    api: str
    parameters: Any
    request: RunRequest
    reply: ReplySlot


class CancelRun(_Message, frozen=True):
    project: str
    run_id: str
    reply: ReplySlot


class WaitRun(_Message, frozen=True):
    run_id: str
    reply: ReplySlot


class ProjectDeployed(_Message, frozen=True):
    """From the deployer: a version is recorded; its removed code jobs' JobRuns to terminate."""

    project: ProjectVersion
    terminate: list[Any]  # JobRunRecord
    reply: ReplySlot


class CreateJob(_Message, frozen=True):
    project: str
    job_id: str
    spec: Any
    reply: ReplySlot


class UpdateJob(_Message, frozen=True):
    project: str
    job_id: str
    spec: Any
    reply: ReplySlot


class DeleteJob(_Message, frozen=True):
    project: str
    job_id: str
    reply: ReplySlot


class PauseJob(_Message, frozen=True):
    project: str
    job_id: str
    reply: ReplySlot


class ResumeJob(_Message, frozen=True):
    project: str
    job_id: str
    reply: ReplySlot


class TriggerJob(_Message, frozen=True):
    project: str
    job_id: str
    type: str  # MANUAL | SCHEDULED
    slot_key: str | None
    reply: ReplySlot


class TerminateJobRun(_Message, frozen=True):
    project: str
    job_id: str
    job_run_id: str
    reply: ReplySlot


JobCommand = CreateJob | UpdateJob | DeleteJob | PauseJob | ResumeJob | TriggerJob | TerminateJobRun
QueueOp = Literal[
    "create", "delete", "append", "delete_item", "state", "list", "add_repeat", "update_repeat", "delete_repeat"
]


class QueueCommand(_Message, frozen=True):
    """A change to a queue, its items or repeat items (``body``: the decoded request body)."""

    op: QueueOp
    project: str
    queue_id: str
    reply: ReplySlot
    body: Any = None
    item_id: str | None = None


RunnerCommand = SubmitRun | CancelRun | WaitRun | ProjectDeployed | JobCommand | QueueCommand


# -- bus commands -----------------------------------------------------------------------


class EventFilter(_Message, frozen=True):
    project: str | None = None
    run_id: str | None = None
    types: frozenset[str] | None = None

    def matches(self, event: Event) -> bool:
        return (
            (self.project is None or event.project == self.project)
            and (self.run_id is None or event.run_id == self.run_id)
            and (self.types is None or event.type in self.types)
        )


class Subscribe(_Message, frozen=True):
    filter: EventFilter
    events: trio.MemorySendChannel[Event]


class Publish(_Message, frozen=True):
    events: list[Event]


BusCommand = Subscribe | Publish
