"""Intuned's calling conventions as pure functions: the automation's arguments, the setup_context hook's
return values, and the DevToolsActivePort file. The real worker runs them in test_child.py."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest

from intunedd.workers.cdp import devtools_url
from intunedd.workers.conventions import InvalidHookResult, automation_arguments, has_setup_hook, setup_context

PAGE, CONTEXT = object(), object()


async def annotated(page: Any, params: Any, context: Any, **kwargs: Any) -> None: ...
async def keyword_only(page: Any, params: Any = None, *, context: Any) -> None: ...
async def var_keyword(page: Any, params: Any = None, **kwargs: Any) -> None: ...
async def plain(page: Any, params: Any = None) -> None: ...
async def page_only(page: Any) -> None: ...
async def context_positional(page: Any, context: Any) -> None: ...
async def positional_only(page: Any, params: Any, context: Any, /) -> None: ...


@pytest.mark.parametrize(
    ("automation", "parameters", "expected"),
    [
        (annotated, {"a": 1}, ((PAGE, {"a": 1}), {"context": CONTEXT})),
        (keyword_only, None, ((PAGE,), {"context": CONTEXT})),
        (var_keyword, [], ((PAGE, []), {"context": CONTEXT})),
        (plain, {"a": 1}, ((PAGE, {"a": 1}), {})),
        (page_only, None, ((PAGE,), {})),
        (context_positional, {"a": 1}, ((PAGE, {"a": 1}), {})),
        (positional_only, {"a": 1}, ((PAGE, {"a": 1}), {})),
        (min, {"a": 1}, ((PAGE, {"a": 1}), {})),  # no readable signature: called as Intuned calls it
    ],
)
def test_context_is_passed_only_where_the_call_binds(
    automation: Callable[..., Any], parameters: Any, expected: tuple[tuple[Any, ...], dict[str, Any]]
) -> None:
    assert automation_arguments(automation, PAGE, CONTEXT, parameters) == expected


class Recorder:
    def __init__(self, result: Any) -> None:
        self.result = result
        self.calls: list[dict[str, Any]] = []

    async def __call__(self, **kwargs: Any) -> Any:
        self.calls.append(kwargs)
        return self.result


def hooked(hook: Recorder, api: str = "a", parameters: Any = None) -> AbstractAsyncContextManager[tuple[Any, Any]]:
    return setup_context(
        hook, cdp_url="ws://x", api_name=f"api/{api}", parameters=parameters, context=CONTEXT, page=PAGE
    )


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        (None, (CONTEXT, PAGE)),
        ("hook context", ("hook context", PAGE)),
        (("hook context", None), ("hook context", PAGE)),
        (("hook context", "hook page"), ("hook context", "hook page")),
    ],
)
async def test_setup_context_results(result: Any, expected: tuple[Any, Any]) -> None:
    hook = Recorder(result)
    async with hooked(hook, "a/b", {"p": 1}) as given:
        assert given == expected
    assert hook.calls == [{"cdp_url": "ws://x", "api_name": "api/a/b", "api_parameters": {"p": 1}}]


async def test_setup_context_cleanup_runs_after_the_automation_even_when_it_fails() -> None:
    events: list[str] = []

    async def cleanup() -> None:
        events.append("cleanup")

    hook = Recorder(("hook context", "hook page", cleanup))
    with pytest.raises(ValueError, match="automation failed"):
        async with hooked(hook):
            events.append("automation")
            raise ValueError("automation failed")
    assert events == ["automation", "cleanup"]


@pytest.mark.parametrize("result", [(), ("one",), (1, 2, 3, 4)])
async def test_setup_context_refuses_other_tuples(result: tuple[Any, ...]) -> None:
    with pytest.raises(InvalidHookResult, match="setup_context hook returned an invalid value"):
        async with hooked(Recorder(result)):
            pytest.fail("the automation must not run")


def test_has_setup_hook(tmp_path: Path) -> None:
    assert not has_setup_hook(tmp_path)
    (tmp_path / "hooks" / "setup_context.py").mkdir(parents=True)  # a folder of that name is no hook
    assert not has_setup_hook(tmp_path)
    (tmp_path / "hooks" / "setup_context.py").rmdir()
    (tmp_path / "hooks" / "setup_context.py").write_text("")
    assert has_setup_hook(tmp_path)


# devtools_url runs in the worker, under asyncio; these tests are sync so trio_mode leaves them alone.
def test_devtools_url_from_the_port_file(tmp_path: Path) -> None:
    (tmp_path / "DevToolsActivePort").write_text("40123\n/devtools/browser/0a-b1\n")
    assert asyncio.run(devtools_url(tmp_path)) == "ws://127.0.0.1:40123/devtools/browser/0a-b1"


@pytest.mark.parametrize("content", [None, "", "40123", "40123\n", "not a port\n/devtools/browser/x\n"])
def test_devtools_url_waits_for_a_complete_file(tmp_path: Path, content: str | None) -> None:
    if content is not None:
        (tmp_path / "DevToolsActivePort").write_text(content)
    with pytest.raises(TimeoutError):
        asyncio.run(devtools_url(tmp_path, timeout_s=0.1))
