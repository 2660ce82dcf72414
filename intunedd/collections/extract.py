"""``extract`` (and ``collect``) on an HTML document: CSS or XPath selectors through parsel.

The browser path extracts from the page's serialised DOM, so both paths give the same answers for the
same markup. An entry's value is the whitespace-collapsed text of the first match (``None`` when nothing
matches), or of every match with ``multiple``; ``attribute`` reads that attribute instead. An XPath that
selects attributes, text nodes or a number (``//a/@href``, ``count(//li)``) gives those values as text,
as do parsel's CSS pseudo-elements (``a::attr(href)``, ``h1::text``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import parsel
from cssselect import SelectorError

from .request import ExtractSpec, parse_selector

_SPACE = re.compile(r"\s+")
# Script and style text is code, not the element's text.
_TEXT = ".//text()[not(ancestor::script) and not(ancestor::style)]"


class ExtractInvalid(ValueError):
    """A selector the engine cannot parse; the message names the field."""


def extract_fields(html: str, fields: Mapping[str, str | ExtractSpec]) -> dict[str, Any]:
    document = parsel.Selector(text=html)
    return {name: _field(document, name, spec) for name, spec in fields.items()}


def _field(document: parsel.Selector, name: str, spec: str | ExtractSpec) -> Any:
    spec = spec if isinstance(spec, ExtractSpec) else ExtractSpec(selector=spec)
    engine, expression = parse_selector(spec.selector)
    try:
        matches = document.css(expression) if engine == "css" else document.xpath(expression)
    except (SelectorError, ValueError) as e:
        raise ExtractInvalid(f"extract {name!r}: invalid {engine} selector {expression!r}: {e}") from None
    values = [_value(match, spec.attribute) for match in matches]
    if spec.multiple:
        return values
    return values[0] if values else None


def _value(match: parsel.Selector, attribute: str | None) -> str | None:
    if isinstance(match.root, str | float | int):  # an attribute, a text node, a number or a boolean
        return str(match.get())
    if attribute is not None:
        return match.attrib.get(attribute)
    return _SPACE.sub(" ", " ".join(match.xpath(_TEXT).getall())).strip()
