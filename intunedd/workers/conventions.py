"""How Intuned's runtime calls project code, where the worker follows it: the automation's arguments
and the optional ``hooks/setup_context.py`` hook.

The hook is ``async def setup_context(*, cdp_url, api_name, api_parameters)``, awaited before the
automation with a CDP URL of the attempt's browser. It returns ``None`` (it only prepared the
browser), a browser context, ``(context, page | None)`` or ``(context, page | None, cleanup)``; the
automation then gets that context and page and ``cleanup()`` is awaited after it. Anything else it
returns makes the API invalid. Intuned also closes a returned context that is not the attempt's own;
here the hook runs against a browser of the attempt's own, which closes with the attempt and every
context in it, and closing the hook's context after its cleanup stopped its Playwright would only fail.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from playwright.async_api import BrowserContext, Page

HOOK_FILE = Path("hooks", "setup_context.py")
HOOK_MODULE = "hooks.setup_context"
HOOK_FUNCTION = "setup_context"

SetupHook = Callable[..., Awaitable[Any]]


class InvalidHookResult(Exception):
    pass


def automation_arguments(
    automation: Callable[..., Any], page: Page, context: BrowserContext, parameters: Any
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Intuned's ``automation(page, params)`` (``automation(page)`` without parameters), and ``context=``
    when the signature takes it: a ``context`` keyword or ``**kwargs``. Only added when the call still
    binds, so a signature that already fills a parameter named ``context`` positionally keeps working."""
    args = (page,) if parameters is None else (page, parameters)
    try:
        inspect.signature(automation).bind(*args, context=context)
    except (TypeError, ValueError):  # ValueError: a callable whose signature cannot be read
        return args, {}
    return args, {"context": context}


def has_setup_hook(project_dir: Path) -> bool:
    return (project_dir / HOOK_FILE).is_file()


@asynccontextmanager
async def setup_context(
    hook: SetupHook, *, cdp_url: str, api_name: str, parameters: Any, context: BrowserContext, page: Page
) -> AsyncIterator[tuple[Any, Page]]:
    """Await the hook for the function ``api_name`` (``api/<name>``, or ``auth-sessions/create`` or ``check``)
    and give the context and page the function is to use."""
    result = await hook(cdp_url=cdp_url, api_name=api_name, api_parameters=parameters)
    if result is None:
        yield context, page
        return
    hook_context, hook_page, cleanup = _unpack(result)
    try:
        yield hook_context, hook_page or page
    finally:
        if cleanup is not None:
            await cleanup()


def _unpack(result: Any) -> tuple[Any, Page | None, Callable[[], Awaitable[Any]] | None]:
    if not isinstance(result, tuple):
        return result, None, None
    if len(result) == 2:
        return result[0], result[1], None
    if len(result) == 3:
        return result[0], result[1], result[2]
    raise InvalidHookResult(
        f"{HOOK_FUNCTION} hook returned an invalid value: it must return None, a BrowserContext, "
        "(BrowserContext, Page | None) or (BrowserContext, Page | None, cleanup)"
    )
