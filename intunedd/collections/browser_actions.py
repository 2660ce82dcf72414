"""The actions of a browser scrape (spec §10.3), run in order on a page.

Selectors are ``css:…`` / ``xpath:…`` (a bare one is CSS), mapped to Playwright's ``css=`` and
``xpath=`` engines; an action acts on the first match. A failing action stops the list and raises
``ActionFailed`` naming it by its path (``actions[2].actions[0]``); the scrape then answers with what
the page holds and that message. ``collect`` gathers into lists that grow across a loop's iterations
(a ``multiple`` entry adds all its matches, a single one its value); ``evaluate`` appends its result
to ``evaluate_results``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Locator, Page

from .extract import ExtractInvalid, extract_fields
from .request import (
    Action,
    Click,
    Collect,
    Evaluate,
    Input,
    KeyPress,
    Select,
    SelectorVisible,
    WaitForSelector,
    WaitForTimeout,
    While,
    parse_selector,
)

MAX_EVALUATE_RESULT = 1_000_000  # bytes of JSON, per evaluate


class ActionFailed(Exception):
    pass


@dataclass
class Gathered:
    """What ``collect`` and ``evaluate`` actions produced."""

    extracted: dict[str, list[Any]] = field(default_factory=dict)
    evaluate_results: list[Any] = field(default_factory=list)

    def collect(self, values: dict[str, Any]) -> None:
        for name, value in values.items():
            bucket = self.extracted.setdefault(name, [])
            if isinstance(value, list):
                bucket.extend(value)
            else:
                bucket.append(value)


def locate(page: Page, selector: str) -> Locator:
    engine, expression = parse_selector(selector)
    return page.locator(f"{engine}={expression}").first


async def run_actions(page: Page, actions: Sequence[Action], gathered: Gathered, path: str = "actions") -> None:
    for index, action in enumerate(actions):
        where = f"{path}[{index}]"
        try:
            await _run(page, action, gathered, where)
        except PlaywrightError as e:
            raise ActionFailed(f"{where} ({action.__struct_config__.tag}) failed: {first_line(e.message)}") from None
        except ExtractInvalid as e:
            raise ActionFailed(f"{where} (collect) failed: {e}") from None


async def _run(page: Page, action: Action, gathered: Gathered, where: str) -> None:
    match action:
        case WaitForTimeout():
            await asyncio.sleep(action.time / 1000)
        case WaitForSelector():
            await locate(page, action.selector).wait_for(state=action.state or "visible", timeout=action.time)
        case Click():
            await _click(page, action)
        case Input():
            await locate(page, action.selector).fill(action.text)
        case Select():
            await locate(page, action.selector).select_option(action.value)
        case KeyPress():
            await page.keyboard.press(action.key)
        case Evaluate():
            gathered.evaluate_results.append(await _evaluate(page, action, where))
        case Collect():
            gathered.collect(extract_fields(await page.content(), action.extract))
        case While():
            await _loop(page, action, gathered, where)


async def _click(page: Page, action: Click) -> None:
    target = locate(page, action.selector)
    if action.optional and not await target.is_visible():
        return
    if action.wait_for_navigation:
        async with page.expect_navigation():
            await target.click()
    else:
        await target.click()


async def _evaluate(page: Page, action: Evaluate, where: str) -> Any:
    timeout_s = (action.timeout if action.timeout is not None else 30_000) / 1000
    try:
        result = await asyncio.wait_for(page.evaluate(action.script), timeout_s)
    except TimeoutError:
        # wait_for's own timeout, told apart from the scrape's: that one cancels, it does not raise here.
        raise ActionFailed(f"{where} (evaluate) timed out after {timeout_s:g} s") from None
    if len(msgspec.json.encode(result)) > MAX_EVALUATE_RESULT:
        raise ActionFailed(f"{where} (evaluate) returned more than {MAX_EVALUATE_RESULT} bytes of JSON")
    return result


async def _loop(page: Page, action: While, gathered: Gathered, where: str) -> None:
    want_visible = isinstance(action.condition, SelectorVisible)
    for _ in range(action.max_iterations):
        if await locate(page, action.condition.selector).is_visible() != want_visible:
            return
        await run_actions(page, action.actions, gathered, f"{where}.actions")


def first_line(text: str) -> str:
    """The gist of a Playwright error, whose message goes on with a call log."""
    return text.strip().splitlines()[0] if text.strip() else "unknown error"
