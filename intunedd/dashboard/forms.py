"""The runs page's filter form, turned into the runs API's filters (``policy.run_filters``)."""

from __future__ import annotations

from collections.abc import Mapping

from ..errors import BadRequest
from ..policy.run_filters import Condition, FilterError, parse_filter

# form field -> the runs API filter it makes ({} is the value)
FILTERS = {
    "status": "status={}",
    "api": "api_name={}",
    "job": "job_id={}",
    "job_run": "job_run_id={}",
    "from": "created_at>={}",
    "to": "created_at<={}",
    "min_ms": "run_duration>={}",
    "max_ms": "run_duration<={}",
}


def filter_values(args: Mapping[str, str]) -> dict[str, str]:
    """The filter fields the form filled in, trimmed."""
    return {name: args[name].strip() for name in FILTERS if args.get(name, "").strip()}


def run_conditions(values: Mapping[str, str]) -> list[Condition]:
    """The runs API's conditions for the filled-in ``values``; a 400 naming the field otherwise.
    A browser's datetime-local input has no zone: the form says its times are UTC."""
    conditions = []
    for name, value in values.items():
        try:
            conditions.append(parse_filter(FILTERS[name].format(value)))
        except FilterError as e:
            raise BadRequest(str(e), details={"field": name}) from e
    return conditions
