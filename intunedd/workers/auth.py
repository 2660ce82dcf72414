"""AuthSessions on the worker side (spec §5.3): which project function an attempt runs, the storage state
loaded before it and the one captured after ``create``, and what a ``check`` must return.

A storage state is Playwright's shape plus Intuned's ``sessionStorage`` list, which Playwright does not
keep: it is read from the open pages after ``create``. Loading it adds the cookies to the context, and
one init script fills a page's localStorage and sessionStorage for its origin (only keys the page has
not set, as Intuned's runtime does for sessionStorage, so a page that changes a value keeps its own
across navigations). Playwright's ``set_storage_state`` would instead open a page and navigate it to
every origin, about 130 ms of each attempt for one origin; the difference: a key the page removes comes
back at the next document of its origin.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
from playwright.async_api import BrowserContext
from playwright.async_api import Error as PlaywrightError

from intunedd.workers.protocol import AttemptError, Done, Start
from intunedd.workers.storage_state import StorageState

# Intuned's runtime takes the first of these a module defines, for every function it runs.
ENTRY_NAMES = ("automation", "create", "check")
_FILES = {"auth-create": "auth-sessions/create", "auth-check": "auth-sessions/check"}

_READ_SESSION_STORAGE = """() => ({
    origin: window.location.origin,
    sessionStorage: Object.entries({...window.sessionStorage}).map(([name, value]) => ({name, value})),
})"""

_WRITE_STORAGE = """(() => {
    const state = %s[window.location.origin];
    if (!state) return;
    try {
        for (const [storage, items] of [[window.localStorage, state.local], [window.sessionStorage, state.session]]) {
            for (const {name, value} of items) {
                if (storage.getItem(name) === null) storage.setItem(name, value);
            }
        }
    } catch (e) {}  // a frame denied storage (sandboxed) runs without it, as it would anyway
})();"""


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
    if state.cookies:
        await context.add_cookies(msgspec.to_builtins(state.cookies))
    by_origin: dict[str, dict[str, list[Any]]] = {}
    for o in state.origins:
        by_origin.setdefault(o.origin, {"local": [], "session": []})["local"] += msgspec.to_builtins(o.local_storage)
    for so in state.session_storage or []:
        entry = by_origin.setdefault(so.origin, {"local": [], "session": []})
        entry["session"] += msgspec.to_builtins(so.session_storage)
    if by_origin:
        await context.add_init_script(script=_WRITE_STORAGE % json.dumps(by_origin))


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
