"""The daemon <-> browser-worker wire: length-prefixed msgspec JSON frames.

Each frame is a 4-byte big-endian length followed by one JSON object whose ``type``
field names the Struct below. The channel is a socketpair handed to the child as an
inherited file descriptor, so the automation's own stdout and stderr never mix with
protocol traffic.

Dialog of one attempt::

    daemon                         worker
      |  <------------- Ready -----  |   once, after Chromium is up
      |  ----- Start ------------->  |
      |  <------------- Extend ----  |   0..n: extend_timeout() / extend_payload()
      |  <--- StoreGet / StoreSet -  |   0..n: persistent_store, answered by StoreReply
      |  ----- StoreReply -------->  |
      |  ----- Abort ------------->  |   optional: cancel or timeout
      |  <------------- Done ------  |   exactly once per Start
"""

from __future__ import annotations

import struct
from typing import Annotated, Any, Literal

import msgspec

HEADER = struct.Struct(">I")
MIB = 1024 * 1024
# Frames the daemon sends (Start carries the run's parameters, bounded by the HTTP body limit).
MAX_TO_WORKER_BYTES = 256 * MIB
# What a worker may send beyond its result: extended payloads, store values, a bounded error.
FROM_WORKER_HEADROOM_BYTES = 16 * MIB
# Ready is a pid and a version string; anything bigger before it is garbage.
MAX_READY_BYTES = 64 * 1024
MAX_NAME_CHARS = 1024

# Strings a worker sends that end up as database keys or run fields: bounded, and store keys as
# the runtime allows them (1+ characters, no ':' or '#'), so a worker cannot send others either.
StoreKey = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_NAME_CHARS, pattern="^[^:#]*$")]
ApiName = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_NAME_CHARS)]


class _Frame(msgspec.Struct, tag_field="type", forbid_unknown_fields=True):
    pass


class RunContext(msgspec.Struct, rename="camel", omit_defaults=True):
    """What ``run_info()`` returns inside the automation."""

    run_id: str
    project_name: str
    api_name: str
    attempt_number: int
    job_id: str | None = None
    job_run_id: str | None = None
    queue_id: str | None = None
    auth_session_id: str | None = None
    proxy: str | None = None


class AttemptLimits(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Caps on what one attempt may produce; the daemon's ``[runs]`` settings of the same names."""

    max_log_bytes: int = 50 * MIB
    max_log_line_bytes: int = 64 * 1024
    max_error_message_chars: int = 8 * 1024
    max_error_stack_chars: int = 64 * 1024


class Start(_Frame, tag="start"):
    attempt_id: str
    project_dir: str
    api: str
    parameters: Any
    context: RunContext
    log_path: str
    trace_path: str | None = None
    trace_screenshots: bool = False  # a filmstrip in the trace besides its DOM snapshots
    video_dir: str | None = None
    proxy: str | None = None
    headless: bool = True
    max_result_bytes: int = 2 * MIB
    limits: AttemptLimits = AttemptLimits()
    # "intuned": run through Intuned's own intuned-runtime (workers/runtime_contract.py), whose helpers
    # reach the daemon's backend functions at functions_domain with the per-attempt functions_token.
    runtime: Literal["intunedd", "intuned"] = "intunedd"
    functions_domain: str | None = None
    functions_token: str | None = None
    workspace_id: str | None = None
    # What runs: the API named by ``api``, or the project's auth-sessions/create.py or check.py (spec §5.3),
    # or a collection's scrape (``parameters`` a collections.job.ScrapeJob; no project code runs).
    function: Literal["api", "auth-create", "auth-check", "collection-scrape"] = "api"
    # A Playwright storage state loaded into the attempt's fresh context before the function runs.
    auth_state: Any = None
    # What get_auth_session_parameters() returns; for auth-create also the ``params`` create is called with.
    auth_parameters: Any = None


def max_from_worker_bytes(max_result_bytes: int) -> int:
    """The largest frame the daemon accepts from a worker during an attempt."""
    return max_result_bytes + FROM_WORKER_HEADROOM_BYTES


class Abort(_Frame, tag="abort"):
    pass


class StoreReply(_Frame, tag="store_reply"):
    request_id: int
    value: Any = None
    error: str | None = None


class Ready(_Frame, tag="ready"):
    pid: int
    browser_version: Annotated[str, msgspec.Meta(max_length=256)]


class Extend(_Frame, tag="extend"):
    pass


class StoreGet(_Frame, tag="store_get"):
    request_id: int
    key: StoreKey


class StoreSet(_Frame, tag="store_set"):
    request_id: int
    key: StoreKey
    value: Any


# The codes a worker may report; any other fails validation, so a worker cannot invent one.
ErrorCode = Literal[
    "script-execution-exception",
    "script-unexpected-error",
    "script-no-valid-output-received",
    "result-too-big-error",
    "script-timeout",
]


class AttemptError(msgspec.Struct):
    code: ErrorCode
    message: str
    retryable: bool = True
    details: Any = None


class ExtendedPayload(msgspec.Struct):
    api: ApiName
    parameters: Any = None


class Done(_Frame, tag="done"):
    success: bool
    result: Any = None
    extended_payloads: list[ExtendedPayload] = []
    error: AttemptError | None = None
    aborted: bool = False
    # The storage state captured after a successful auth-create (an auth-check's ``result`` is its bool).
    session: Any = None


def aborted() -> Done:
    """The Done of an attempt stopped by Abort (a cancel or the daemon's timeout)."""
    return Done(success=False, aborted=True, error=AttemptError(code="script-timeout", message="Run timed out"))


class WorkerConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Handed to ``python -m intunedd.workers.child`` as one JSON argument."""

    fd: int
    browser_executable: str | None = None
    headless: bool = True
    browser_args: list[str] = []
    remote_endpoint: str = ""
    remote_protocol: str = "playwright"


ToWorker = Start | Abort | StoreReply
FromWorker = Ready | Extend | StoreGet | StoreSet | Done

_encoder = msgspec.json.Encoder()
_to_worker: msgspec.json.Decoder[ToWorker] = msgspec.json.Decoder(ToWorker)
_from_worker: msgspec.json.Decoder[FromWorker] = msgspec.json.Decoder(FromWorker)


class FrameTooLarge(Exception):
    pass


def encode(frame: ToWorker | FromWorker) -> bytes:
    body = _encoder.encode(frame)
    return HEADER.pack(len(body)) + body


def frame_length(header: bytes, max_bytes: int) -> int:
    (length,) = HEADER.unpack(header)
    if length > max_bytes:
        raise FrameTooLarge(f"frame of {length} bytes exceeds the limit of {max_bytes}")
    return int(length)


def decode_to_worker(body: bytes) -> ToWorker:
    return _to_worker.decode(body)


def decode_from_worker(body: bytes) -> FromWorker:
    return _from_worker.decode(body)
