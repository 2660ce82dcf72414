"""The query of ``GET …/runs/{run_id}/jobs`` (and of ``GET …/runs``), and the jobs' paging cursors.

A cursor is where the previous page ended: the run, the ordering, and the last job's sort key
(``completed_at``, then the job id, which breaks ties and is the whole key for ``order_by=id``).
It is compact JSON and an HMAC under the daemon's secret, base64url: opaque to clients, and a
cursor that was altered, or issued for another run or ordering, is a 422 naming ``cursor``.

Bad parameters are 422s in FastAPI's words (``{"type", "loc", "msg", "input"}``), every bad
one at once. With ``include_results`` a page holds at most 100 jobs: a larger ``limit`` is
lowered to it, as the service does, rather than refused.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal, TypeVar, get_args

import msgspec

from ..clock import parse_iso
from . import wire

OrderBy = Literal["id", "completed_at"]
OrderDir = Literal["asc", "desc"]
MAX_LIMIT = 1000
MAX_LIMIT_WITH_RESULTS = 100
DEFAULT_LIMIT = 100
_MAC_BYTES = 16
_MAC_CONTEXT = b"intunedd jobs cursor\0"
_TRUE = frozenset({"1", "on", "t", "true", "y", "yes"})
_FALSE = frozenset({"0", "off", "f", "false", "n", "no"})
T = TypeVar("T")


class Position(msgspec.Struct, frozen=True, array_like=True):
    """The last job of a page, and what it was sorted by."""

    run_id: str
    order_by: OrderBy
    order_dir: OrderDir
    completed_at: str | None  # the job's completed_at as the store keeps it; None while processing
    job_id: str


class JobsQuery(msgspec.Struct, frozen=True, kw_only=True):
    limit: int = DEFAULT_LIMIT
    after: Position | None = None  # the page starts after this job
    statuses: frozenset[wire.JobStatus] | None = None  # None: every status
    order_by: OrderBy = "id"
    order_dir: OrderDir = "asc"
    since_completed_at: datetime | None = None  # strictly after, in UTC
    include_results: bool = False


class QueryInvalid(Exception):
    """A 422: ``errors`` name every parameter that is wrong."""

    def __init__(self, errors: list[wire.FieldError]) -> None:
        super().__init__("; ".join(f"{e.loc[-1]}: {e.msg}" for e in errors))
        self.errors = errors

    def body(self) -> wire.FieldErrors:
        return wire.FieldErrors(detail=self.errors)


def _error(name: str, kind: str, msg: str, value: str) -> wire.FieldError:
    return wire.FieldError(type=kind, loc=["query", name], msg=msg, input=value)


def _mac(key: bytes, payload: bytes) -> bytes:
    return hmac.new(key, _MAC_CONTEXT + payload, hashlib.sha256).digest()[:_MAC_BYTES]


def encode_cursor(position: Position, key: bytes) -> str:
    payload = msgspec.json.encode(position)
    return base64.urlsafe_b64encode(payload + _mac(key, payload)).rstrip(b"=").decode()


def decode_cursor(text: str, key: bytes) -> Position | None:
    """The position ``text`` stands for, or None when it is not a cursor we issued."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None
    payload, mac = raw[:-_MAC_BYTES], raw[-_MAC_BYTES:]
    if len(raw) <= _MAC_BYTES or not hmac.compare_digest(mac, _mac(key, payload)):
        return None
    try:
        return msgspec.json.decode(payload, type=Position)
    except msgspec.DecodeError:
        return None


def next_cursor(query: JobsQuery, run_id: str, job_id: str, completed_at: str | None, key: bytes) -> str:
    """The ``cursor_next`` of a page whose last job is ``job_id``."""
    return encode_cursor(Position(run_id, query.order_by, query.order_dir, completed_at, job_id), key)


def _choice(args: Mapping[str, str], name: str, kind: Any, default: T, errors: list[wire.FieldError]) -> T:
    """``args[name]`` as one of the ``Literal`` ``kind``'s values, ``default`` when absent."""
    value = args.get(name)
    if value is None:
        return default
    try:
        choice: T = msgspec.convert(value, kind)
    except msgspec.ValidationError:
        wording = " or ".join(f"'{a}'" for a in get_args(kind))
        errors.append(_error(name, "literal_error", f"Input should be {wording}", value))
        return default
    return choice


def _limit(args: Mapping[str, str], errors: list[wire.FieldError]) -> int:
    value = args.get("limit")
    if value is None:
        return DEFAULT_LIMIT
    try:
        limit = int(value)
    except ValueError:
        msg = "Input should be a valid integer, unable to parse string as an integer"
        errors.append(_error("limit", "int_parsing", msg, value))
        return DEFAULT_LIMIT
    if limit < 1:
        errors.append(_error("limit", "greater_than_equal", "Input should be greater than or equal to 1", value))
    elif limit > MAX_LIMIT:
        errors.append(_error("limit", "less_than_equal", f"Input should be less than or equal to {MAX_LIMIT}", value))
    return limit


def _flag(args: Mapping[str, str], name: str, errors: list[wire.FieldError]) -> bool:
    value = args.get(name)
    if value is None or value.lower() in _FALSE:
        return False
    if value.lower() in _TRUE:
        return True
    msg = "Input should be a valid boolean, unable to interpret input"
    errors.append(_error(name, "bool_parsing", msg, value))
    return False


def _statuses(args: Mapping[str, str], errors: list[wire.FieldError]) -> frozenset[wire.JobStatus] | None:
    value = args.get("status_filter")
    if value is None:
        return None
    known = get_args(wire.JobStatus)
    parts = [part.strip() for part in value.split(",") if part.strip()]
    unknown = [part for part in parts if part not in known]
    if unknown:
        msg = f"Value error, unknown status {', '.join(unknown)}; expected a comma-separated list of {', '.join(known)}"
        errors.append(_error("status_filter", "value_error", msg, value))
        return None
    return frozenset(part for part in known if part in parts) or None


def _since(args: Mapping[str, str], errors: list[wire.FieldError]) -> datetime | None:
    value = args.get("since_completed_at")
    if value is None:
        return None
    # An unencoded "+00:00" reaches us as " 00:00": read it as the client meant it.
    for text in dict.fromkeys((value, value.replace(" ", "+"))):
        try:
            return parse_iso(text)
        except ValueError:
            continue
    errors.append(_error("since_completed_at", "datetime_parsing", "Input should be a valid ISO-8601 datetime", value))
    return None


def parse_jobs_query(args: Mapping[str, str], run_id: str, key: bytes) -> JobsQuery:
    """The jobs listing's query string, checked; QueryInvalid names every bad parameter."""
    errors: list[wire.FieldError] = []
    limit = _limit(args, errors)
    order_by: OrderBy = _choice(args, "order_by", OrderBy, "id", errors)
    order_dir: OrderDir = _choice(args, "order_dir", OrderDir, "asc", errors)
    include_results = _flag(args, "include_results", errors)
    statuses = _statuses(args, errors)
    since = _since(args, errors)
    after = None
    if (text := args.get("cursor")) is not None:
        after = decode_cursor(text, key)
        if after is None:
            errors.append(_error("cursor", "value_error", "Value error, not a cursor this server issued", text))
        elif (after.run_id, after.order_by, after.order_dir) != (run_id, order_by, order_dir):
            msg = "Value error, the cursor belongs to another run or ordering"
            errors.append(_error("cursor", "value_error", msg, text))
    if errors:
        raise QueryInvalid(errors)
    return JobsQuery(
        limit=min(limit, MAX_LIMIT_WITH_RESULTS) if include_results else limit,
        after=after,
        statuses=statuses,
        order_by=order_by,
        order_dir=order_dir,
        since_completed_at=since,
        include_results=include_results,
    )


def parse_runs_query(args: Mapping[str, str]) -> wire.RunStatus | None:
    """``GET …/runs``'s ``status_filter``: one run status, or None for every run."""
    errors: list[wire.FieldError] = []
    status: wire.RunStatus | None = _choice(args, "status_filter", wire.RunStatus, None, errors)
    if errors:
        raise QueryInvalid(errors)
    return status
