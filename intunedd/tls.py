"""The one TLS context outgoing HTTPS uses (webhooks, S3 aside, collections' fetches)."""

from __future__ import annotations

import functools
import ssl

import httpx


@functools.cache
def client_context() -> ssl.SSLContext:
    """httpx's default context, built once: building one loads the CA bundle, ~30 ms each time,
    which a client made per request (a collection job) would otherwise pay on every request."""
    return httpx.create_ssl_context()
