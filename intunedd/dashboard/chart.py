"""The overview's activity chart: runs that ended per minute, completed and failed, as SVG bars.

Pure: rows from ``Records.finished_by_minute`` and the time in, bar geometry out; the template
draws it, so the page needs no script and no chart library.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from ..clock import iso, parse_iso

WIDTH = 720
HEIGHT = 160
BAR_GAP = 1


@dataclass(frozen=True)
class Bar:
    x: float
    width: float
    completed_height: float
    failed_height: float
    label: str  # the bucket's start and its counts, for a tooltip and screen readers


@dataclass(frozen=True)
class Chart:
    bars: list[Bar]
    peak_per_minute: float
    completed: int
    failed: int
    hours: int
    width: int = WIDTH
    height: int = HEIGHT


def since(now: datetime, hours: int) -> str:
    return iso(now - timedelta(hours=hours))


def activity_chart(rows: list[tuple[str, str, int]], now: datetime, hours: int, bucket_minutes: int) -> Chart:
    """``hours`` of ``rows`` (minute, status, count) in buckets of ``bucket_minutes``, newest right.
    Heights are runs per minute within the bucket, scaled to the busiest bucket."""
    buckets = hours * 60 // bucket_minutes
    start = now - timedelta(hours=hours)
    completed = [0] * buckets
    failed = [0] * buckets
    for minute, status, count in rows:
        index = int((parse_iso(minute + ":00Z") - start).total_seconds() // (bucket_minutes * 60))
        if not 0 <= index < buckets:
            continue
        if status == "completed":
            completed[index] += count
        elif status == "failed":
            failed[index] += count
    peak = max((c + f for c, f in zip(completed, failed, strict=True)), default=0)
    scale = HEIGHT / peak if peak else 0.0
    width = WIDTH / buckets
    bars = []
    for i in range(buckets):
        at = (start + timedelta(minutes=i * bucket_minutes)).strftime("%H:%M")
        label = f"{at} UTC: {completed[i]} completed, {failed[i]} failed"
        bars.append(Bar(i * width, max(width - BAR_GAP, 1), completed[i] * scale, failed[i] * scale, label))
    return Chart(bars, peak / bucket_minutes, sum(completed), sum(failed), hours)
