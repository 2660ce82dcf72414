"""Parse the run-list filters of Intuned's CLI: ``status=failed``, ``run_duration>5000``, …"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from ..clock import iso, parse_iso

FIELDS = (
    "id", "status", "api_name", "run_type", "job_id", "job_run_id", "queue_id",
    "created_at", "started_at", "ended_at", "run_duration",
)  # fmt: skip
_TIME_FIELDS = {"created_at", "started_at", "ended_at"}
_ORDERED_FIELDS = _TIME_FIELDS | {"run_duration"}
STATUSES = ("pending", "started", "completed", "failed", "canceled")
# The value is stripped after matching: a lazy group before a trailing \s* backtracks
# quadratically on long runs of spaces.
_PATTERN = re.compile(r"\s*([a-z_]+)\s*(>=|<=|!=|=|>|<)(.*)")
# run_duration is compared in SQLite, whose integers are 64-bit.
MAX_DURATION_MS = 2**63 - 1


class Condition(msgspec.Struct, frozen=True):
    field: str
    op: str
    value: Any


class FilterError(ValueError):
    pass


def parse_filter(text: str) -> Condition:
    match = _PATTERN.fullmatch(text)
    if not match:
        raise FilterError(f"filter {text!r} is not of the form <field><op><value>")
    name, op, raw = match.group(1), match.group(2), match.group(3).strip()
    if name not in FIELDS:
        raise FilterError(f"filter field {name!r} is not one of {', '.join(FIELDS)}")
    if op not in ("=", "!=") and name not in _ORDERED_FIELDS:
        raise FilterError(f"filter field {name!r} only supports = and !=")
    return Condition(name, op, _value(name, raw))


def _value(name: str, raw: str) -> Any:
    if name == "status":
        status = raw.lower()
        if status not in STATUSES:
            raise FilterError(f"status {raw!r} is not one of {', '.join(STATUSES)}")
        return status
    if name == "run_type":
        return raw.upper()
    if name in _TIME_FIELDS:
        try:
            return iso(parse_iso(raw))
        except ValueError as e:
            raise FilterError(f"{name} value {raw!r} is not an ISO-8601 time") from e
        except OverflowError as e:  # in UTC the time falls before year 1 or after 9999
            raise FilterError(f"{name} value {raw!r} is outside years 1-9999 in UTC") from e
    if name == "run_duration":
        try:
            duration = int(raw)
        except ValueError as e:
            raise FilterError(f"run_duration value {raw!r} is not a whole number of milliseconds") from e
        if abs(duration) > MAX_DURATION_MS:
            raise FilterError(f"run_duration value {raw!r} is beyond ±{MAX_DURATION_MS} milliseconds")
        return duration
    return raw
