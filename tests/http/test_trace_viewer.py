"""The trace viewer's files: a name no file can have is a 404, not a 500; no other static route."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.mark.parametrize("name", ["x" * 300, "a/" * 3000 + "b", "ṰO" * 200, "nope.html"])
async def test_unservable_names_are_404(routed_app: Any, name: str) -> None:
    """Found by schemathesis: a name over the file system's limit was a 500 (ENAMETOOLONG)."""
    response = await routed_app.test_client().get(f"/trace-viewer/{name}")
    assert response.status_code == 404
    assert (await response.get_json())["code"] == "not-found"


async def test_there_is_no_static_route(routed_app: Any) -> None:
    """Quart's default /static served nothing of ours and failed the same way on long names."""
    app = routed_app
    assert not [rule for rule in app.url_map.iter_rules() if rule.rule.startswith("/static")]
    assert (await app.test_client().get("/static/" + "a/" * 3000 + "b")).status_code == 404


async def test_the_viewer_itself_is_served(routed_app: Any) -> None:
    response = await routed_app.test_client().get("/trace-viewer/index.html")
    assert response.status_code == 200
    assert response.content_type.startswith("text/html")
