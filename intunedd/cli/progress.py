"""Live terminal rendering, pure: a JobRun's progress bar and summary, a run's state line and
one event per line. The commands in ``live`` feed these counts and times as they arrive."""

from __future__ import annotations

import json
from typing import Any

from .render import shorten

BAR_WIDTH = 24
FINISHED = ("completed", "failed", "canceled")
EVENT_VALUE_CHARS = 80


def format_seconds(seconds: float) -> str:
    """``45s``, ``3m05s``, ``2h07m``: short enough for a bar, exact enough for a wait."""
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def _count(counts: dict[str, Any], name: str) -> int:
    value = counts.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def finished(counts: dict[str, Any]) -> int:
    return sum(_count(counts, name) for name in FINISHED)


def rate_per_s(done_then: int, done_now: int, elapsed_s: float) -> float | None:
    """Runs finished per second since watching began; None before any finished or time passed."""
    if elapsed_s <= 0 or done_now <= done_then:
        return None
    return (done_now - done_then) / elapsed_s


def _rate_text(rate: float | None) -> str:
    if rate is None:
        return "-/min"
    return f"{rate:.1f}/s" if rate >= 1 else f"{rate * 60:.1f}/min"


def progress_bar(counts: dict[str, Any], rate: float | None, width: int = BAR_WIDTH) -> str:
    """``[#####-----] 5/10 done, 1 failed, 2 running, 3.0/min, 1m40s left``."""
    done = finished(counts)
    total = done + _count(counts, "pending") + _count(counts, "running")
    filled = width if total == 0 else done * width // total
    left = total - done
    if left == 0:
        eta = "0s"
    elif rate is None:
        eta = "?"
    else:
        eta = format_seconds(left / rate)
    return (
        f"[{'#' * filled}{'-' * (width - filled)}] {done}/{total} done, {_count(counts, 'failed')} failed, "
        f"{_count(counts, 'running')} running, {_rate_text(rate)}, {eta} left"
    )


def job_run_summary(job_run_id: str, status: str, counts: dict[str, Any], elapsed_s: float) -> str:
    """The line a watch ends with: ``JobRun jr1 COMPLETED in 1m05s: 9 completed, 1 failed, 0 canceled``."""
    parts = ", ".join(f"{_count(counts, name)} {name}" for name in FINISHED)
    return f"JobRun {job_run_id} {status} in {format_seconds(elapsed_s)}: {parts}"


def run_state_line(run_id: str, status: str, elapsed_s: float) -> str:
    return f"run {run_id}: {status} ({format_seconds(elapsed_s)})"


def _value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return shorten(" ".join(text.split()), EVENT_VALUE_CHARS)


def event_line(event: dict[str, Any]) -> str:
    """``<at> <type> <project> <run id> key=value …``, one line whatever the event holds."""
    head = [str(event.get(key) or "-") for key in ("at", "type", "project", "run_id")]
    data = event.get("data")
    pairs = [f"{key}={_value(value)}" for key, value in data.items()] if isinstance(data, dict) else []
    return " ".join([*head, *pairs])
