"""An attempt's log as the dashboard shows it: its last lines, each a JSON record made readable."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import msgspec

from ..workers.sandbox import open_worker_file

MAX_LOG_BYTES = 2 * 1024 * 1024  # the page shows the end of a longer log, and links the whole file


@dataclass(frozen=True)
class LogLine:
    timestamp: str
    stream: str  # stdout, stderr, log (then level says which), system
    level: str
    message: str


@dataclass(frozen=True)
class LogTail:
    lines: list[LogLine]
    truncated: bool


def _line(raw: bytes) -> LogLine:
    """One line as the worker wrote it (``workers.limits.log_line``); anything else shown as text."""
    try:
        record: Any = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        record = None
    if not isinstance(record, dict):
        return LogLine("", "", "", raw.decode("utf-8", "replace"))
    fields = {name: str(record.get(name, "")) for name in ("timestamp", "stream", "level", "message")}
    return LogLine(**fields)


def read_tail(path: str | None) -> LogTail | None:
    """The last ``MAX_LOG_BYTES`` of the log at ``path``, by line; None when there is none. Blocking."""
    if path is None:
        return None
    try:
        fd = open_worker_file(path)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as file:
        size = os.fstat(fd).st_size
        file.seek(max(0, size - MAX_LOG_BYTES))
        data = file.read(MAX_LOG_BYTES)
    raw_lines = data.splitlines()
    truncated = size > MAX_LOG_BYTES
    if truncated and raw_lines:
        raw_lines = raw_lines[1:]  # the first one was cut
    return LogTail([_line(raw) for raw in raw_lines if raw.strip()], truncated)
