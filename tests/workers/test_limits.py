"""Truncation that bounds what an attempt produces, and the child's bounded attempt log."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from intunedd.workers.attempt import bound_log_file
from intunedd.workers.child import AttemptLog
from intunedd.workers.limits import (
    LOG_MARKER_RESERVE_BYTES,
    bound_error,
    details_budget_bytes,
    log_line,
    truncate_chars,
    truncate_utf8,
)
from intunedd.workers.protocol import AttemptError, AttemptLimits


@given(st.text(), st.integers(min_value=0, max_value=50))
def test_truncate_chars_keeps_a_prefix_and_says_how_much_went(text: str, max_chars: int) -> None:
    cut = truncate_chars(text, max_chars)
    if len(text) <= max_chars:
        assert cut == text
    else:
        assert cut == f"{text[:max_chars]}… [truncated {len(text) - max_chars} characters]"


@given(st.text(), st.integers(min_value=0, max_value=50))
def test_truncate_utf8_never_splits_a_character(text: str, max_bytes: int) -> None:
    cut = truncate_utf8(text, max_bytes)
    encoded = text.encode("utf-8", "replace")
    if len(encoded) <= max_bytes:
        assert cut == text
    else:
        kept, _, marker = cut.rpartition("… [truncated ")
        assert len(kept.encode()) <= max_bytes
        assert encoded.startswith(kept.encode())
        assert marker == f"{len(encoded) - len(kept.encode())} bytes]"


@given(
    st.text(max_size=300),
    st.one_of(
        st.none(),
        st.dictionaries(st.text(max_size=5), st.text(max_size=3000)),
        st.lists(st.text(max_size=2000), max_size=10),
    ),
)
def test_bound_error_bounds_message_and_details(message: str, details: object) -> None:
    limits = AttemptLimits(max_error_message_chars=100, max_error_stack_chars=1000)
    bounded = bound_error(AttemptError(code="script-execution-exception", message=message, details=details), limits)
    assert bounded.message == truncate_chars(message, 100)
    if details is None:
        assert bounded.details is None
    else:
        assert len(msgspec.json.encode(bounded.details)) <= details_budget_bytes(limits)


def test_bound_error_keeps_the_stack_longer_than_the_rest() -> None:
    limits = AttemptLimits(max_error_message_chars=10, max_error_stack_chars=50)
    details = {"name": "ValueError", "message": "m" * 20, "stack": "s" * 60, "n": 1}
    bounded = bound_error(AttemptError(code="script-execution-exception", message="m" * 20, details=details), limits)
    assert bounded.details == {
        "name": "ValueError",
        "message": "m" * 10 + "… [truncated 10 characters]",
        "stack": "s" * 50 + "… [truncated 10 characters]",
        "n": 1,
    }


def test_attempt_log_stops_at_its_limit_with_a_marker(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    log = AttemptLog(path, AttemptLimits(max_log_bytes=2000, max_log_line_bytes=20))
    with log.capture():
        print("é" * 30)  # 60 bytes of UTF-8: cut at 20, between characters
        for n in range(100):
            print(n)
    log.write("system", "attempt completed")
    log.close()
    data = path.read_bytes()
    assert len(data) <= 2000
    entries = [json.loads(line) for line in data.decode().splitlines()]
    assert entries[0]["message"] == "é" * 10 + "… [truncated 40 bytes]"
    assert [e["message"] for e in entries[1:-1]] == [str(n) for n in range(len(entries) - 2)]
    assert entries[-1]["message"] == "log truncated: the attempt wrote more than 2000 bytes"


def test_attempt_log_cuts_a_line_that_never_ends(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    log = AttemptLog(path, AttemptLimits(max_log_line_bytes=100))
    with log.capture():
        for _ in range(1000):
            print("x" * 10, end="")
        print()
        print("next")
    log.close()
    entries = [json.loads(line) for line in path.read_text().splitlines()]
    assert [e["message"] for e in entries] == ["x" * 100 + "… [truncated 310 bytes]", "next"]


def test_bound_log_file_cuts_only_a_plain_log(tmp_path: Path) -> None:
    precious = tmp_path / "precious.db"
    precious.write_bytes(b"x" * 5000)
    linked, hard = tmp_path / "symlinked.jsonl", tmp_path / "hardlinked.jsonl"
    linked.symlink_to(precious)
    hard.hardlink_to(precious)
    assert not bound_log_file(linked, 1000)
    assert not bound_log_file(hard, 1000)
    assert not bound_log_file(tmp_path / "missing.jsonl", 1000)
    assert precious.read_bytes() == b"x" * 5000

    log = tmp_path / "log.jsonl"
    log.write_text("a\n" + "z" * 3000)  # a line longer than the limit: dropped whole
    assert bound_log_file(log, 1000)
    lines = log.read_text().splitlines()
    assert lines[0] == "a"
    assert json.loads(lines[1])["message"] == "log truncated: the attempt wrote more than 1000 bytes"
    assert len(lines) == 2


@settings(max_examples=50, deadline=None)
@given(st.lists(st.text(max_size=300), max_size=60), st.integers(min_value=LOG_MARKER_RESERVE_BYTES, max_value=5000))
def test_bound_log_file_keeps_whole_lines_within_the_limit(
    tmp_path_factory: pytest.TempPathFactory, messages: list[str], max_bytes: int
) -> None:
    path = tmp_path_factory.mktemp("log") / "log.jsonl"
    original = "".join(log_line("stdout", m) for m in messages).encode()
    path.write_bytes(original)
    cut = bound_log_file(path, max_bytes)
    data = path.read_bytes()
    assert cut == (len(original) > max_bytes)
    if not cut:
        assert data == original
        return
    assert len(data) <= max_bytes
    *kept, marker, after = data.split(b"\n")
    assert after == b""
    assert original.startswith(b"".join(line + b"\n" for line in kept))  # whole lines only
    assert json.loads(marker)["message"] == f"log truncated: the attempt wrote more than {max_bytes} bytes"
