"""Bounding what an attempt produces: truncation with a visible marker, and the errors limits cause.

Pure functions used on both sides of the worker boundary: the child applies them so what it writes
and sends fits, and the daemon applies them again because user code runs in the child and may have
replaced anything there.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import msgspec

from .protocol import MIB, AttemptError, AttemptLimits

# Room kept at the end of a log for the line saying it was truncated.
LOG_MARKER_RESERVE_BYTES = 256


def truncate_chars(text: str, max_chars: int) -> str:
    """``text`` cut to ``max_chars`` characters plus a marker saying how many were dropped."""
    if len(text) <= max_chars:
        return text
    return f"{text[:max_chars]}… [truncated {len(text) - max_chars} characters]"


def truncate_utf8(text: str, max_bytes: int) -> str:
    """``text`` cut to at most ``max_bytes`` of UTF-8 (never mid-character) plus a marker."""
    if len(text) * 4 <= max_bytes:  # no character takes more than 4 bytes
        return text
    encoded = text.encode("utf-8", "replace")  # lone surrogates become "?", as they would in the file
    if len(encoded) <= max_bytes:
        return text
    kept = encoded[:max_bytes].decode("utf-8", "ignore")
    return f"{kept}… [truncated {len(encoded) - len(kept.encode())} bytes]"


def bound_error(error: AttemptError, limits: AttemptLimits) -> AttemptError:
    """The error with its message and details cut to the limits.

    In details, ``stack`` may be as long as ``max_error_stack_chars`` and every other string as long
    as a message; details still too big as a whole (deep or many-keyed) are replaced by a note.
    """
    details = error.details
    if isinstance(details, dict):
        details = {key: _bound_detail(key, value, limits) for key, value in details.items()}
    if details is not None:
        size = len(msgspec.json.encode(details))
        budget = details_budget_bytes(limits)
        if size > budget:
            details = {"truncated": f"error details of {size} bytes exceed the limit of {budget}"}
    return AttemptError(
        code=error.code,
        message=truncate_chars(error.message, limits.max_error_message_chars),
        retryable=error.retryable,
        details=details,
    )


def details_budget_bytes(limits: AttemptLimits) -> int:
    # JSON escaping may double a traceback's newlines and quotes, so twice the characters, and room
    # for keys and truncation markers.
    return 2 * (limits.max_error_stack_chars + 2 * limits.max_error_message_chars) + 1024


def _bound_detail(key: Any, value: Any, limits: AttemptLimits) -> Any:
    if not isinstance(value, str):
        return value
    return truncate_chars(value, limits.max_error_stack_chars if key == "stack" else limits.max_error_message_chars)


def result_too_big(size: int, max_bytes: int) -> AttemptError:
    return AttemptError(
        code="result-too-big-error",
        message=f"Automation result is too big. Size: {size / MIB:.2f} MB, Max allowed: {max_bytes / MIB:.2f} MB",
        details={"sizeInBytes": size, "maxSizeInBytes": max_bytes},
    )


def log_timestamp() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def log_line(stream: str, message: str, level: str | None = None) -> str:
    """One JSON line of an attempt log."""
    entry = {"timestamp": log_timestamp(), "stream": stream}
    if level is not None:
        entry["level"] = level
    entry["message"] = message
    return json.dumps(entry, ensure_ascii=False) + "\n"


def log_truncated_line(max_bytes: int) -> str:
    """The last line of a log that reached ``max_bytes`` (shorter than LOG_MARKER_RESERVE_BYTES)."""
    return log_line("system", f"log truncated: the attempt wrote more than {max_bytes} bytes")
