"""The dashboard's guard, as routed: no page or action without a session, and its assets only."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.mark.parametrize("path", ["/", "/runs?project=a&status=failed", "/projects/a/runs/r", "/deliveries"])
async def test_a_page_without_a_session_sends_to_sign_in(routed_app: Any, path: str) -> None:
    response = await routed_app.test_client().get(path)
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/sign-in?next=")


async def test_a_forged_session_cookie_is_no_session(routed_app: Any) -> None:
    client = routed_app.test_client()
    client.set_cookie("127.0.0.1", "intunedd_session", "made-up")
    assert (await client.get("/runs")).status_code == 303


@pytest.mark.parametrize("path", ["/projects/a/runs", "/deliveries/d/retry", "/sign-out", "/projects/a/jobs/j/delete"])
async def test_an_action_without_a_session_is_refused(routed_app: Any, path: str) -> None:
    response = await routed_app.test_client().post(path, form={"csrf": "anything"})
    assert response.status_code == 403
    assert response.content_type.startswith("text/html")


async def test_sign_in_page_and_assets_are_public(routed_app: Any) -> None:
    client = routed_app.test_client()
    page = await client.get("/sign-in?next=//evil.example")
    assert page.status_code == 200
    text = await page.get_data(as_text=True)
    assert 'name="next" value="/"' in text and "evil" not in text
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    assert (await client.get("/assets/dashboard.css")).status_code == 200
    for name in ("nope.js", "x" * 300, "..%2Fsessions.py"):
        assert (await client.get(f"/assets/{name}")).status_code == 404


async def test_sign_in_needs_the_token_of_its_own_page(routed_app: Any) -> None:
    client = routed_app.test_client()
    refused = await client.post("/sign-in", form={"key": "ind_x", "next": "/", "sign_in_token": "forged"})
    assert refused.status_code == 403
    assert "intunedd_session" not in refused.headers.get("set-cookie", "")
    page = await client.get("/sign-in")
    cookie = page.headers["set-cookie"]
    assert "intunedd_sign_in=" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
