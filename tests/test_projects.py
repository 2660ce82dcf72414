"""Intuned.json(c) settings as read_settings sees them: both replication forms, Intuned's other keys
accepted, and bad values refused with a ProjectError naming the field."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from intunedd.projects import DEFAULT_LIMITS, ProjectError, ProjectSettings, read_settings

MAX_CONCURRENCY = 1000
# A "version": "2.0" file as Intuned's project templates write it, every documented key present.
V2_SETTINGS = """
// Intuned settings
{
  "authSessions": {"enabled": true, "type": "API", "startUrl": "https://example.com/login", "saveTraces": false},
  "replication": {"size": "x-large", "maxCount": 4, "minCount": 0,},
  "headful": true,
  "browserSize": {"width": 1280, "height": 800},
  "region": "de",
  "stealthMode": {"enabled": true},
  "captchaSolver": {"enabled": true, "cloudflare": {"enabled": true}, "settings": {"autoSolve": true}},
  "proxy": {"enabled": false},
  "apiAccess": {"enabled": true},
  "metadata": {
    "template": {"name": "t", "tags": ["a"]},
    "defaultRunPlaygroundInput": {"apiName": "list", "parameters": {"url": "https://example.com"}},
  },
  "version": "2.0",
}
"""


def settings_in(folder: Path, text: str, name: str = "Intuned.jsonc") -> ProjectSettings:
    (folder / name).write_text(text)
    return read_settings(folder, DEFAULT_LIMITS)[0]


def replication(folder: Path, fields: dict[str, Any]) -> ProjectSettings:
    return settings_in(folder, json.dumps({"version": "2.0", "replication": fields}))


def test_a_version_2_file_with_every_intuned_key_is_accepted(tmp_path: Path) -> None:
    settings = settings_in(tmp_path, V2_SETTINGS)
    assert settings.replication.concurrency == 4
    assert settings.api_access.enabled


@pytest.mark.parametrize(
    ("fields", "concurrency"),
    [
        ({}, 1),
        ({"maxConcurrentRequests": 3}, 3),
        ({"maxCount": 5}, 5),
        ({"maxCount": 5, "minCount": 5}, 5),
        # Both forms given: the newer one, maxCount, is taken.
        ({"maxConcurrentRequests": 2, "maxCount": 6}, 6),
    ],
)
def test_concurrency_comes_from_either_form(tmp_path: Path, fields: dict[str, Any], concurrency: int) -> None:
    assert replication(tmp_path, fields).replication.concurrency == concurrency


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"maxCount": 0}, "replication.maxCount"),
        ({"maxCount": MAX_CONCURRENCY + 1}, "replication.maxCount"),
        ({"maxCount": "4"}, "replication.maxCount"),
        ({"maxCount": 2.5}, "replication.maxCount"),
        ({"minCount": -1}, "replication.minCount"),
        ({"minCount": 3, "maxCount": 2}, "replication.minCount"),
        ({"minCount": 2}, "replication.minCount"),  # above the default maxCount of 1
        ({"maxConcurrentRequests": 0}, "replication.maxConcurrentRequests"),
    ],
)
def test_bad_replication_values_name_the_field(tmp_path: Path, fields: dict[str, Any], named: str) -> None:
    with pytest.raises(ProjectError, match=named.replace(".", r"\.")) as caught:
        replication(tmp_path, fields)
    assert str(caught.value).startswith("Intuned.jsonc: ")


@given(st.integers(1, MAX_CONCURRENCY), st.data())
def test_any_valid_max_count_round_trips(max_count: int, data: st.DataObject) -> None:
    fields: dict[str, Any] = {"maxCount": max_count}
    if data.draw(st.booleans()):
        fields["minCount"] = data.draw(st.integers(0, max_count))
    if data.draw(st.booleans()):
        fields["maxConcurrentRequests"] = data.draw(st.integers(1, MAX_CONCURRENCY))
    with tempfile.TemporaryDirectory() as folder:
        assert replication(Path(folder), fields).replication.concurrency == max_count


@given(st.integers().filter(lambda n: not 1 <= n <= MAX_CONCURRENCY))
def test_any_max_count_out_of_bounds_is_refused(max_count: int) -> None:
    with tempfile.TemporaryDirectory() as folder, pytest.raises(ProjectError, match=r"replication\.maxCount"):
        replication(Path(folder), {"maxCount": max_count})
