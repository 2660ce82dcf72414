"""Human output: one table renderer and one key/value block for every command."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from .context import MAX_CELL

# --------------------------------------------------------------------------------------------
# Output


def _is_string_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _cell(value: Any, limit: int | None = MAX_CELL) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if _is_string_list(value):
        text = ", ".join(value)
    elif isinstance(value, dict | list):
        text = json.dumps(value, ensure_ascii=False)
    else:
        text = str(value)
    if limit is None:
        return text
    text = " ".join(text.split())  # a newline inside a cell would break the table's rows
    return shorten(text, limit)


def shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    cells = [list(headers), *([_cell(v) for v in row] for row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells)


def render_block(pairs: Iterable[tuple[str, Any]]) -> str:
    items = list(pairs)
    width = max((len(key) for key, _ in items), default=0) + 1
    lines = []
    for key, value in items:
        if isinstance(value, dict | list) and value and not _is_string_list(value):
            # Nested JSON goes on its own lines, indented under the key, so results stay readable.
            nested = json.dumps(value, indent=2, ensure_ascii=False).splitlines()
            lines.append(f"{key}:")
            lines.extend("  " + line for line in nested)
        else:
            # Multi-line values (Playwright errors carry a call log) stay aligned under the first line.
            text = _cell(value, limit=None).replace("\n", "\n" + " " * (width + 1))
            lines.append(f"{key + ':':<{width}} {text}".rstrip())
    return "\n".join(lines)


def describe_error(error: Any, *, one_line: bool = False) -> str | None:
    """``message (code)``; with ``one_line``, the message's first line shortened so the code shows."""
    if not isinstance(error, dict):
        return None if error is None else str(error)
    message = str(error.get("message", "")).strip()
    if one_line:
        message = shorten(message.splitlines()[0] if message else "", MAX_CELL // 2)
    code = error.get("code")
    return f"{message} ({code})" if code else message


def describe_reason(reason: Any) -> str | None:
    if not isinstance(reason, dict):
        return None if reason is None else str(reason)
    return f"{reason.get('type', '')}: {reason.get('message', '')}"


def format_duration(ms: Any) -> str | None:
    if not isinstance(ms, int | float):
        return None
    return f"{ms / 1000:.2f}s" if ms < 60_000 else f"{int(ms // 60_000)}m{ms % 60_000 / 1000:04.1f}s"


def run_pairs(data: dict[str, Any], *, skip: Iterable[str] = ()) -> Iterator[tuple[str, Any]]:
    skipped = set(skip)
    for key, value in data.items():
        if key in skipped:
            continue
        if key == "error":
            value = describe_error(value)
        elif key == "reason":
            value = describe_reason(value)
        elif key == "runDuration":
            value = format_duration(value)
        yield key, value
