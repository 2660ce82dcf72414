"""AuthSessions on the worker side (spec §5.3): which project function an attempt runs, the storage state
loaded before it and the one captured after ``create``, and what a ``check`` must return.

A storage state is Playwright's shape plus Intuned's ``sessionStorage`` list, which Playwright does not
keep: it is read from the open pages after ``create``, and put back by an init script that fills a
page's sessionStorage for its origin (only keys the page has not set, as Intuned's runtime does, so a
page that changes a value keeps its own across navigations).
"""

from __future__ import annotations

import json
from typing import Any, Literal

import msgspec
from playwright.async_api import BrowserContext
from playwright.async_api import Error as PlaywrightError

from intunedd.workers.protocol import AttemptError, Done, Start

# Intuned's runtime takes the first of these a module defines, for every function it runs.
ENTRY_NAMES = ("automation", "create", "check")
_FILES = {"auth-create": "auth-sessions/create", "auth-check": "auth-sessions/check"}

_READ_SESSION_STORAGE = """() => ({
    origin: window.location.origin,
    sessionStorage: Object.entries({...window.sessionStorage}).map(([name, value]) => ({name, value})),
})"""

_WRITE_SESSION_STORAGE = """(() => {
    const items = %s[window.location.origin] || [];
    for (const {name, value} of items) {
        if (window.sessionStorage.getItem(name) === null) window.sessionStorage.setItem(name, value);
    }
})();"""


class Cookie(msgspec.Struct, rename="camel"):
    name: str
    value: str
    domain: str
    path: str = "/"
    expires: float = -1
    http_only: bool = False
    secure: bool = False
    same_site: Literal["Strict", "Lax", "None"] = "Lax"


class StorageItem(msgspec.Struct):
    name: str
    value: str


class Origin(msgspec.Struct, rename="camel"):
    origin: str
    local_storage: list[StorageItem] = []


class SessionStorageOrigin(msgspec.Struct, rename="camel"):
    origin: str
    session_storage: list[StorageItem] = []


class StorageState(msgspec.Struct, rename="camel"):
    cookies: list[Cookie] = []
    origins: list[Origin] = []
    # Intuned's runtime requires the key (null allowed), so it is always encoded.
    session_storage: list[SessionStorageOrigin] | None = None


class InvalidState(Exception):
    pass


def entry(start: Start) -> str:
    """The function's module path as Intuned names it: ``api/<name>`` or ``auth-sessions/<create|check>``."""
    return f"api/{start.api}" if start.function == "api" else _FILES[start.function]


def entry_parameters(start: Start) -> Any:
    """The ``params`` the function is called with: an API's parameters, create's are the session's; check has none."""
    match start.function:
        case "api":
            return start.parameters
        case "auth-create":
            return start.auth_parameters
        case "auth-check":
            return None


def storage_state(value: Any) -> StorageState | None:
    """``Start.auth_state`` checked; a malformed one would fail inside Playwright, far from its cause."""
    if value is None:
        return None
    try:
        return msgspec.convert(value, StorageState)
    except msgspec.ValidationError as e:
        raise InvalidState(f"auth_state is not a storage state: {e}") from None


async def load_state(context: BrowserContext, state: StorageState | None) -> None:
    if state is None:
        return
    playwright_state: Any = {
        "cookies": msgspec.to_builtins(state.cookies),
        "origins": msgspec.to_builtins(state.origins),
    }
    await context.set_storage_state(playwright_state)
    if state.session_storage:
        by_origin = {o.origin: msgspec.to_builtins(o.session_storage) for o in state.session_storage}
        await context.add_init_script(script=_WRITE_SESSION_STORAGE % json.dumps(by_origin))


async def capture(context: BrowserContext) -> dict[str, Any]:
    """The context's storage state with the sessionStorage of its pages' origins (one entry an origin)."""
    state: dict[str, Any] = dict(await context.storage_state())
    session_storage: dict[str, Any] = {}
    for page in context.pages:
        try:
            found = await page.evaluate(_READ_SESSION_STORAGE)
        except PlaywrightError:  # a page that closed, navigates, or whose storage is off limits (about:blank)
            continue
        if found["origin"] != "null" and found["sessionStorage"]:
            session_storage[found["origin"]] = found
    state["sessionStorage"] = list(session_storage.values())
    return state


def check_done(result: Any) -> Done:
    """A check's outcome: its bool, or a failed attempt. Not retryable: the project's check is wrong."""
    if isinstance(result, bool):
        return Done(success=True, result=result)
    message = f"auth-sessions/check.py: check must return a bool, it returned {type(result).__name__}"
    return Done(success=False, error=AttemptError("script-execution-exception", message, retryable=False))
