"""A small login site on 127.0.0.1 for AuthSession tests: real cookies, localStorage and sessionStorage.

- ``GET /login``: a form (``#username``, ``#password``, ``button[type=submit]``) posting to ``/login``.
- ``POST /login``: right credentials set the ``sid`` session cookie and answer a page (``#welcome``) whose
  script stores ``token`` in localStorage and ``tab`` in sessionStorage; wrong ones answer 401 (``#error``).
- ``GET /private``: ``#user`` with the user's name when the ``sid`` cookie names a live session, else
  ``#anonymous``; either way ``#token`` and ``#tab`` show what the page finds in local/sessionStorage.

``expire_all()`` ends every session server-side; ``GET /rotate-password`` also changes the password
(set ``password`` back to log in again); ``logins`` counts successful logins.

Inside ``with site.holding():`` a request whose path starts with ``/held`` waits until the block ends,
then is answered as the rest of its path would be: a login or a page that a test keeps in progress
(``held`` counts the requests waiting).
"""

from __future__ import annotations

import html
import http.server
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs

from tests.conftest import serving

USER = "alice"
PASSWORD = "s3cret"

_LOGIN_FORM = """<html><head><title>Login</title></head><body>
<form method="post" action="/login">
  <input id="username" name="username"><input id="password" name="password" type="password">
  <button type="submit">Log in</button>
</form></body></html>"""

_STORAGE_PROBE = """<p id="token"></p><p id="tab"></p><script>
document.getElementById("token").textContent = localStorage.getItem("token") || "";
document.getElementById("tab").textContent = sessionStorage.getItem("tab") || "";
</script>"""


# An Intuned project's auth-sessions files that log into this site (create's params are
# ``LoginSite.credentials``); tests and benchmarks add the APIs they need.
AUTH_FILES = {
    "auth-sessions/create.py": """
        async def create(page, params, **_kwargs):
            await page.goto(params["url"] + "/login")
            await page.fill("#username", params["username"])
            await page.fill("#password", params["password"])
            async with page.expect_navigation():
                await page.click("button[type=submit]")
            if await page.locator("#welcome").count() == 0:
                raise RuntimeError("login failed")
    """,
    "auth-sessions/check.py": """
        from intuned_runtime import get_auth_session_parameters

        async def check(page, **_kwargs):
            parameters = await get_auth_session_parameters()
            await page.goto(parameters["url"] + "/private")
            return await page.locator("#user").count() == 1
    """,
}


class LoginSite:
    def __init__(self, user: str = USER, password: str = PASSWORD) -> None:
        self.user = user
        self.password = password
        self.url = ""
        self.logins = 0
        self.held = 0
        self._sessions: set[str] = set()
        self._lock = threading.Lock()
        self._released = threading.Event()
        self._released.set()

    @classmethod
    @contextmanager
    def serving(cls, user: str = USER, password: str = PASSWORD) -> Iterator[LoginSite]:
        site = cls(user, password)
        with serving(site._handler()) as url:
            site.url = url
            yield site

    @property
    def credentials(self) -> dict[str, str]:
        """Parameters for ``auth-sessions/create``: where to log in and as whom."""
        return {"url": self.url, "username": self.user, "password": self.password}

    @contextmanager
    def holding(self) -> Iterator[None]:
        self._released.clear()
        try:
            yield
        finally:
            self._released.set()

    def wait_held(self, n: int, timeout: float = 120) -> None:
        """Until ``n`` requests are held (a page the test keeps in progress is open)."""
        deadline = time.monotonic() + timeout
        while self.held < n:
            assert time.monotonic() < deadline, f"{self.held} of {n} requests held"
            time.sleep(0.02)

    def _hold(self, path: str) -> str:
        if not path.startswith("/held"):
            return path
        with self._lock:
            self.held += 1
        try:
            self._released.wait(timeout=120)
        finally:
            with self._lock:
                self.held -= 1
        return path.removeprefix("/held")

    def expire_all(self) -> None:
        with self._lock:
            self._sessions.clear()

    def _login(self, username: str, password: str) -> str | None:
        if (username, password) != (self.user, self.password):
            return None
        sid = secrets.token_hex(16)
        with self._lock:
            self._sessions.add(sid)
            self.logins += 1
        return sid

    def _is_live(self, sid: str | None) -> bool:
        with self._lock:
            return sid is not None and sid in self._sessions

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        site = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self.path = site._hold(self.path)
                if self.path == "/login":
                    self._page(200, _LOGIN_FORM)
                elif self.path == "/rotate-password":
                    # What a user's password change does mid-job: every session ends, old credentials fail.
                    site.expire_all()
                    site.password = "rotated-" + secrets.token_hex(4)
                    self._page(200, "<html><body>rotated</body></html>")
                elif self.path == "/private":
                    cookie = SimpleCookie(self.headers.get("Cookie", ""))
                    sid = cookie["sid"].value if "sid" in cookie else None
                    who = (
                        f'<p id="user">{html.escape(site.user)}</p>'
                        if site._is_live(sid)
                        else '<p id="anonymous">not logged in</p>'
                    )
                    self._page(200, f"<html><body>{who}{_STORAGE_PROBE}</body></html>")
                else:
                    self._page(404, "<html><body>not found</body></html>")

            def do_POST(self) -> None:
                self.path = site._hold(self.path)
                length = int(self.headers.get("Content-Length", "0"))
                form = parse_qs(self.rfile.read(length).decode())
                sid = site._login(form.get("username", [""])[0], form.get("password", [""])[0])
                if sid is None:
                    self._page(401, '<html><body><p id="error">wrong credentials</p></body></html>')
                    return
                script = f'localStorage.setItem("token", "tok-{sid}"); sessionStorage.setItem("tab", "tab-{sid}");'
                body = f'<html><body><p id="welcome">welcome</p><script>{script}</script></body></html>'
                self._page(200, body, cookie=f"sid={sid}; Path=/; HttpOnly")

            def _page(self, status: int, body: str, cookie: str | None = None) -> None:
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                if cookie is not None:
                    self.send_header("Set-Cookie", cookie)
                self.end_headers()
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # a browser that stopped waiting (its attempt was cancelled)

        return Handler
