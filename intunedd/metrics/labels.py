"""Bounded label values: project and API names are chosen by users, and every distinct label set
is a series Prometheus keeps, so only the first ``limit`` are told apart."""

from __future__ import annotations

OTHER = "other"


class LabelCap:
    """Admits the first ``limit`` distinct label tuples; any later one is folded into all-"other"."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._seen: set[tuple[str, ...]] = set()

    def __call__(self, *values: str) -> tuple[str, ...]:
        if values in self._seen:
            return values
        if len(self._seen) < self._limit:
            self._seen.add(values)
            return values
        return tuple(OTHER for _ in values)
