"""How big an event may be on the bus: one huge error must not fill a subscriber's buffer.

An event over the limit is cut down in steps, keeping as much as fits: long strings and
lists are shortened, each with a marker saying what was cut; if that is not enough, the
data fields still too big are replaced by a marker; failing that, the whole data is.
The run itself keeps everything: only what subscribers are sent is shortened.
"""

from __future__ import annotations

from typing import Any

import msgspec

from ..messages import Event
from ..workers.limits import truncate_chars

STRING_KEEP = 1024
LIST_KEEP = 50
DEPTH_KEEP = 16
_encoder = msgspec.json.Encoder()


def size_of(value: Any) -> int:
    return len(_encoder.encode(value))


def capped(event: Event, max_bytes: int) -> tuple[Event, int]:
    """``event`` as subscribers are sent it, and its size in JSON bytes."""
    size = size_of(event)
    if size <= max_bytes:
        return event, size
    steps = (
        lambda data: {name: _clip(value, 0) for name, value in data.items()},
        lambda data: {name: value if size_of(value) <= STRING_KEEP else _marker(value) for name, value in data.items()},
        lambda data: {"truncated": f"[truncated: the event's data was {size} bytes]"},
    )
    data = event.data
    for step in steps:
        data = step(data)
        smaller = msgspec.structs.replace(event, data=data)
        if (new_size := size_of(smaller)) <= max_bytes:
            break
    return smaller, new_size


def _marker(value: Any) -> str:
    return f"[truncated: {size_of(value)} bytes]"


def _clip(value: Any, depth: int) -> Any:
    if isinstance(value, str):
        return truncate_chars(value, STRING_KEEP)
    if not isinstance(value, dict | list):
        return value
    if depth >= DEPTH_KEEP:
        return _marker(value)
    if isinstance(value, dict):
        return {name: _clip(item, depth + 1) for name, item in value.items()}
    kept = [_clip(item, depth + 1) for item in value[:LIST_KEEP]]
    if len(value) > LIST_KEEP:
        kept.append(f"[truncated: {len(value) - LIST_KEEP} more items]")
    return kept
