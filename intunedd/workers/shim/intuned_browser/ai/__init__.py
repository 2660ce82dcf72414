"""Intuned's AI helpers. They run on Intuned's hosted models, so in intunedd they only raise
``NotProvidedError`` naming the helper; they exist so that projects using them still import."""

from __future__ import annotations

from typing import Any, Literal

from playwright.async_api import Locator, Page

from intunedd.workers.shim.intuned_browser._unavailable import needs_hosted_ai
from intunedd.workers.shim.intuned_browser.ai.types import (
    ContentItem,
    DataExtractionError,
    ImageBufferContentItem,
    ImageObject,
    ImageUrlContentItem,
    TextContentItem,
)

__all__ = [
    "ContentItem",
    "DataExtractionError",
    "ImageBufferContentItem",
    "ImageObject",
    "ImageUrlContentItem",
    "TextContentItem",
    "extract_structured_data",
    "is_page_loaded",
]


async def extract_structured_data(
    *,
    data_schema: Any,
    source: Page | Locator | None = None,
    content: list[ContentItem] | ContentItem | None = None,
    prompt: str | None = None,
    strategy: Literal["IMAGE", "MARKDOWN", "HTML"] = "HTML",
    enable_dom_matching: bool | None = False,
    enable_cache: bool | None = True,
    max_retries: int | None = 3,
    model: str = "claude-haiku-4-5-20251001",
    api_key: str | None = None,
) -> Any:
    raise needs_hosted_ai("extract_structured_data")


async def is_page_loaded(
    page: Page, *, model: str = "claude-haiku-4-5-20251001", timeout_s: int = 10, api_key: str | None = None
) -> bool:
    raise needs_hosted_ai("is_page_loaded")
