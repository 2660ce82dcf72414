"""``resolve_url``: a relative URL, a base or the page it is on, to one absolute, encoded URL."""

from __future__ import annotations

from urllib.parse import quote, urljoin, urlsplit

from playwright.async_api import Locator, Page

# RFC 3986's reserved and unreserved characters stay as they are, and so does "%", so existing
# escapes are kept; everything else (spaces, quotes, non-ASCII) is percent-encoded.
_URL_SAFE = ":/?#[]@!$&'()*+,;=-._~%"


async def resolve_url(*, url: str | Locator, base_url: str | None = None, page: Page | None = None) -> str:
    """The absolute form of ``url``, resolved against ``base_url``, else against ``page.url``.

    ``url`` may be a Locator of an anchor: its ``href``, resolved against the page it is on.
    """
    if isinstance(url, Locator):
        href = await url.get_attribute("href")
        if href is None:
            raise ValueError("resolve_url: the element has no href attribute")
        return join_url(url.page.url, href)
    if base_url is not None:
        return join_url(base_url, url)
    if page is not None:
        return join_url(page.url, url)
    raise ValueError("resolve_url needs base_url or page to resolve a URL string")


def join_url(base: str, url: str) -> str:
    """``url`` resolved against ``base`` and percent-encoded where it needs to be."""
    url = url.strip()
    parts = urlsplit(url)
    absolute = url if parts.scheme and parts.netloc else urljoin(base.strip(), url)
    return quote(absolute, safe=_URL_SAFE)
