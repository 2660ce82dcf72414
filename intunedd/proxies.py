"""Proxy URLs: validate them, and hide their passwords when they are shown back."""

from __future__ import annotations

from urllib.parse import urlsplit


def check_proxy(proxy: str | None) -> None:
    if proxy is None:
        return
    parts = urlsplit(proxy)
    if parts.scheme not in ("http", "https", "socks5") or not parts.hostname:
        raise ValueError("Invalid proxy: expected a URL like http://user:pass@host:port")
    try:
        parts.port  # noqa: B018 - parsing the port validates it
    except ValueError as e:
        raise ValueError(f"Invalid proxy: {e}") from e


def mask_proxy(proxy: str | None) -> str | None:
    """Proxy credentials are secrets: never echo the password."""
    if not proxy:
        return proxy
    parts = urlsplit(proxy)
    if parts.password is None:
        return proxy
    netloc = f"{parts.username}:****@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return parts._replace(netloc=netloc).geturl()
