"""What Intuned's runtime sends back, read and mapped to our Done: any input gives a Done the daemon
accepts, never an exception (the runtime runs user code in its process, so its output is hostile)."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from intunedd.workers import protocol
from intunedd.workers.protocol import Done, RunContext, Start
from intunedd.workers.runtime_contract import _Envelope, _to_done, _until_done

START = Start(
    attempt_id="a/1",
    project_dir="/p",
    api="list",
    parameters=None,
    context=RunContext(run_id="r", project_name="p", api_name="list", attempt_number=1),
    log_path="/l",
    max_result_bytes=1024,
)
LIMIT = protocol.max_from_worker_bytes(START.max_result_bytes)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
codes = st.sampled_from(
    ["APINotFoundError", "InvalidAPIError", "AbortedError", "AutomationError", "ResultTooBigError", "Other"]
)
results = json_values | st.fixed_dictionaries(
    {"code": codes}, optional={"details": json_values, "retryable": json_values, "result": json_values}
)


def _frame(**fields: Any) -> bytes:
    body = msgspec.json.encode(fields)
    return protocol.HEADER.pack(len(body)) + body


def _read(data: bytes) -> tuple[_Envelope | protocol.AttemptError | None, int]:
    async def read() -> tuple[_Envelope | protocol.AttemptError | None, int]:
        reader = asyncio.StreamReader()
        reader.feed_data(data)
        reader.feed_eof()
        extends: list[None] = []
        return await _until_done(reader, LIMIT, lambda: extends.append(None)), len(extends)

    return asyncio.run(read())


def _accepted_by_the_daemon(done: Done) -> None:
    """The Done round-trips through the worker protocol, as the daemon decodes it."""
    assert protocol.decode_from_worker(protocol.encode(done)[protocol.HEADER.size :]) == done


@given(st.booleans(), results, st.none() | st.integers(-9, 255))
def test_any_done_maps_to_a_done(success: bool, result: Any, returncode: int | None) -> None:
    frame, _ = _read(_frame(type="done", success=success, result=result))
    assert isinstance(frame, _Envelope)
    done = _to_done(frame, START, returncode)
    _accepted_by_the_daemon(done)
    assert done.success or done.error is not None


@given(st.binary(max_size=200))
def test_any_bytes_read_without_error(data: bytes) -> None:
    frame, _ = _read(data)
    _accepted_by_the_daemon(_to_done(frame, START, None))


def test_extends_are_relayed_and_unknown_frames_skipped() -> None:
    data = _frame(type="extend") + _frame(type="pong") + _frame(type="extend")
    data += _frame(type="done", success=True, result={"result": [1], "extendedPayloads": None})
    frame, extends = _read(data)
    assert extends == 2
    assert _to_done(frame, START, None) == Done(success=True, result=[1])


def test_the_end_of_the_stream_without_done_is_no_valid_output() -> None:
    frame, _ = _read(_frame(type="extend"))
    done = _to_done(frame, START, 3)
    assert done.error is not None and done.error.code == "script-no-valid-output-received"
    assert "exit code 3" in done.error.message


def test_a_frame_over_the_limit_is_result_too_big() -> None:
    frame, _ = _read(protocol.HEADER.pack(LIMIT + 1))
    done = _to_done(frame, START, None)
    assert done.error is not None and done.error.code == "result-too-big-error"
    assert done.error.details == {"sizeInBytes": LIMIT + 1, "maxSizeInBytes": LIMIT}


def test_automation_error_keeps_the_runtimes_retryable_false() -> None:
    details = {"name": "NonRetryableError", "message": "stop", "stack": "Traceback…", "error_props": {}}
    frame, _ = _read(_frame(type="done", success=False, result={"code": "AutomationError", "details": details,
                                                                  "retryable": False}))  # fmt: skip
    done = _to_done(frame, START, None)
    assert done.error == protocol.AttemptError(
        "script-execution-exception", "stop", retryable=False,
        details={"name": "NonRetryableError", "message": "stop", "stack": "Traceback…"},
    )  # fmt: skip
