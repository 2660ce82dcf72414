"""``extract_markdown``: what a page or element shows, as Markdown (markdownify, imported by the call)."""

from __future__ import annotations

import re

from playwright.async_api import Locator, Page

# The element's HTML from a copy of it without the parts that are never shown as text.
_VISIBLE_HTML_JS = """(root) => {
    const copy = root.cloneNode(true);
    copy.querySelectorAll('script, style, noscript, template, svg').forEach((e) => e.remove());
    return copy.outerHTML;
}"""
_BLANK_LINES = re.compile(r"\n{3,}")


async def extract_markdown(source: Page | Locator) -> str:
    """The Markdown of the page's body, or of the element ``source`` locates."""
    if isinstance(source, Page):
        html = await source.evaluate(f"() => ({_VISIBLE_HTML_JS})(document.body ?? document.documentElement)")
    else:
        html = await source.evaluate(_VISIBLE_HTML_JS)
    return html_to_markdown(html)


def html_to_markdown(html: str) -> str:
    from markdownify import ATX, markdownify

    markdown = markdownify(html, heading_style=ATX, bullets="-")
    return _BLANK_LINES.sub("\n\n", markdown).strip()
