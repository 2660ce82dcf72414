"""``sanitize_html``: HTML without scripts, styles, SVGs, comments, noise attributes and empty tags
(BeautifulSoup, imported by the call)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bs4 import BeautifulSoup, Tag

# Inside these, whitespace is content (in scripts a newline can end a statement).
_WHITESPACE_KEPT_IN = frozenset({"pre", "textarea", "code", "script", "style"})
_WHITESPACE = re.compile(r"\s+")


def sanitize_html(
    html: str,
    *,
    remove_scripts: bool = True,
    remove_styles: bool = True,
    remove_svgs: bool = True,
    remove_comments: bool = True,
    remove_long_attributes: bool = True,
    max_attribute_length: int = 500,
    preserve_attributes: list[str] | None = None,
    remove_empty_tags: bool = True,
    preserve_empty_tags: list[str] | None = None,
    minify_whitespace: bool = True,
) -> str:
    """``html`` cleaned by each enabled step.

    Attributes in ``preserve_attributes`` (default ``class`` and ``src``) are kept however long;
    tags in ``preserve_empty_tags`` (default ``img``) are kept even when empty.
    """
    from bs4 import BeautifulSoup, Comment

    soup = BeautifulSoup(html, "html.parser")
    dropped = [name for name, on in (("script", remove_scripts), ("style", remove_styles), ("svg", remove_svgs)) if on]
    for tag in soup.find_all(dropped):
        tag.decompose()
    if remove_comments:
        for comment in soup.find_all(string=lambda text: isinstance(text, Comment)):
            comment.extract()
    if remove_long_attributes:
        kept = {"class", "src"} if preserve_attributes is None else set(preserve_attributes)
        _drop_long_attributes(soup, max_attribute_length, kept)
    if remove_empty_tags:
        _drop_empty_tags(soup, {"img"} if preserve_empty_tags is None else set(preserve_empty_tags))
    if minify_whitespace:
        # What the steps above removed may leave two strings side by side: one string each, so
        # that "a <!-- c --> b" minifies to "a b" now and on every later pass.
        soup.smooth()
        _minify_whitespace(soup)
    return str(soup).strip() if minify_whitespace else str(soup)


def _drop_long_attributes(soup: BeautifulSoup, max_length: int, kept: set[str]) -> None:
    for tag in soup.find_all(True):
        for name, value in list(tag.attrs.items()):
            text = " ".join(value) if isinstance(value, list) else str(value)
            if name not in kept and len(text) > max_length:
                del tag.attrs[name]


def _minify_whitespace(soup: BeautifulSoup) -> None:
    from bs4.element import Comment, NavigableString

    for text in soup.find_all(string=True):
        if not isinstance(text, NavigableString) or isinstance(text, Comment):
            continue
        if any(parent.name in _WHITESPACE_KEPT_IN for parent in text.parents):
            continue
        if not text.strip():
            text.extract()
        else:
            text.replace_with(_WHITESPACE.sub(" ", str(text)))


def _drop_empty_tags(soup: BeautifulSoup, kept: set[str]) -> None:
    from bs4 import Tag

    # Deepest first, so a parent left empty by its children's removal goes too.
    for tag in reversed(soup.find_all(True)):
        if isinstance(tag, Tag) and tag.name not in kept and _is_empty(tag):
            tag.decompose()


def _is_empty(tag: Tag) -> bool:
    if tag.find(True) is not None:
        return False
    return not tag.get_text().strip()
