"""HTML → markdown for ``format: "markdown"``.

html-to-markdown (a Rust converter) was picked over markdownify and html2text on measured speed and
output quality: see bench/markdown_converters.py. Its YAML front matter of page metadata is turned off,
since the ``markdown`` field is the page's body.
"""

from __future__ import annotations

import html_to_markdown

_OPTIONS = html_to_markdown.ConversionOptions(extract_metadata=False)


def to_markdown(html: str) -> str:
    return html_to_markdown.convert(html, _OPTIONS).content or ""
