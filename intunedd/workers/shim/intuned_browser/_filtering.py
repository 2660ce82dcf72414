"""``filter_empty_values``: drop None, blank strings and empty containers, recursively."""

from __future__ import annotations

from typing import Any, TypeVar, cast

T = TypeVar("T")


def filter_empty_values(data: T) -> T:
    """``data`` without None, whitespace-only strings, and lists or dicts that are (or become) empty."""
    return cast(T, _filter(data))


def _filter(value: Any) -> Any:
    if isinstance(value, dict):
        kept = {key: _filter(item) for key, item in value.items()}
        return {key: item for key, item in kept.items() if not _is_empty(item)}
    if isinstance(value, list):
        return [item for item in map(_filter, value) if not _is_empty(item)]
    return value


def _is_empty(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    return isinstance(value, dict | list) and not value
