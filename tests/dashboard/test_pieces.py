"""The dashboard's pure pieces: the activity chart's buckets and the runs filter form."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from intunedd.dashboard.chart import HEIGHT, activity_chart, since
from intunedd.dashboard.forms import filter_values, run_conditions
from intunedd.dashboard.render import section
from intunedd.dashboard.views_runs import shown_settings
from intunedd.errors import BadRequest
from intunedd.policy.run_filters import Condition

NOW = datetime(2026, 1, 1, 12, 0, 30, tzinfo=UTC)


def test_chart_buckets_counts_by_status_and_scales_to_the_busiest() -> None:
    rows = [
        ("2026-01-01T11:55", "completed", 8),
        ("2026-01-01T11:51", "failed", 2),
        ("2026-01-01T10:05", "completed", 5),
        ("2026-01-01T11:58", "canceled", 7),  # neither completed nor failed: not drawn
        ("2026-01-01T05:00", "completed", 99),  # before the window
    ]
    chart = activity_chart(rows, NOW, hours=2, bucket_minutes=10)
    assert len(chart.bars) == 12
    assert (chart.completed, chart.failed) == (13, 2)
    last = chart.bars[-1]
    assert last.completed_height + last.failed_height == pytest.approx(HEIGHT)
    assert last.failed_height == pytest.approx(HEIGHT * 2 / 10)
    assert chart.peak_per_minute == pytest.approx(1.0)
    assert "8 completed, 2 failed" in last.label
    assert chart.bars[0].completed_height == pytest.approx(HEIGHT * 5 / 10)
    assert chart.bars[1].completed_height == 0


def test_an_empty_chart_has_flat_bars() -> None:
    chart = activity_chart([], NOW, hours=6, bucket_minutes=10)
    assert len(chart.bars) == 36 and chart.peak_per_minute == 0
    assert all(b.completed_height == b.failed_height == 0 for b in chart.bars)


def test_since_is_an_iso_time_the_hours_before() -> None:
    assert since(NOW, 6) == "2026-01-01T06:00:30.000Z"


def test_form_fields_become_the_runs_api_filters() -> None:
    values = filter_values({"status": "failed ", "api": "", "from": "2026-01-01T10:00", "min_ms": "5", "other": "x"})
    assert values == {"status": "failed", "from": "2026-01-01T10:00", "min_ms": "5"}
    assert run_conditions(values) == [
        Condition("status", "=", "failed"),
        Condition("created_at", ">=", "2026-01-01T10:00:00.000Z"),  # a zoneless time is UTC
        Condition("run_duration", ">=", 5),
    ]


@pytest.mark.parametrize(("field", "value"), [("status", "bogus"), ("from", "yesterday"), ("max_ms", "1.5")])
def test_a_bad_filter_is_a_400_naming_the_form_field(field: str, value: str) -> None:
    with pytest.raises(BadRequest) as caught:
        run_conditions({field: value})
    assert caught.value.details == {"field": field}


@pytest.mark.parametrize(
    ("path", "entry"),
    [("/", "/"), ("/runs", "/runs"), ("/projects", "/projects"), ("/projects/p/runs/r1/attempts/1/log", "/runs"),
     ("/projects/p/jobs/j/runs/jr", "/jobs"), ("/deliveries", "/deliveries")],
)  # fmt: skip
def test_each_page_belongs_to_one_menu_entry(path: str, entry: str) -> None:
    assert section(path) == entry


def test_a_versions_settings_are_shown_with_the_default_sinks_secrets_masked() -> None:
    settings = {"defaults": {"sink": {"type": "webhook", "url": "https://h/x?token=abc", "headers": {"A": "s3cr3t"}}}}
    shown = shown_settings(settings)
    assert "s3cr3t" not in shown and "abc" not in shown
    assert '"type": "webhook"' in shown
    assert shown_settings({"replication": {"maxConcurrentRequests": 2}}) == json.dumps(
        {"replication": {"maxConcurrentRequests": 2}}, indent=2, sort_keys=True
    )
