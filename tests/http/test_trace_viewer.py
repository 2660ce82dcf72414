"""The trace viewer's files: a name no file can have is a 404, not a 500; no other static route."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from intunedd.config import Settings
from intunedd.http.app import create_app
from intunedd.http.handles import Handles


def _app_without_actors() -> Any:
    """Static routes reach no actor, so the handles stay empty."""
    required = [
        f.name
        for f in dataclasses.fields(Handles)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    values: dict[str, Any] = dict.fromkeys(required)
    values["settings"] = Settings()
    return create_app(Handles(**values))


@pytest.mark.parametrize("name", ["x" * 300, "a/" * 3000 + "b", "ṰO" * 200, "nope.html"])
async def test_unservable_names_are_404(name: str) -> None:
    """Found by schemathesis: a name over the file system's limit was a 500 (ENAMETOOLONG)."""
    response = await _app_without_actors().test_client().get(f"/trace-viewer/{name}")
    assert response.status_code == 404
    assert (await response.get_json())["code"] == "not-found"


async def test_there_is_no_static_route() -> None:
    """Quart's default /static served nothing of ours and failed the same way on long names."""
    app = _app_without_actors()
    assert not [rule for rule in app.url_map.iter_rules() if rule.rule.startswith("/static")]
    assert (await app.test_client().get("/static/" + "a/" * 3000 + "b")).status_code == 404


async def test_the_viewer_itself_is_served() -> None:
    response = await _app_without_actors().test_client().get("/trace-viewer/index.html")
    assert response.status_code == 200
    assert response.content_type.startswith("text/html")
