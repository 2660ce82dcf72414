"""Webhook delivery: one POST, an idempotency key, and an optional HMAC signature.

The signature header is ``X-Intunedd-Signature: t=<unix seconds>,v1=<hex>``, where ``hex`` is
HMAC-SHA256 over ``"<t>.<raw body>"`` with the sink's (or the daemon's) secret, as Stripe does.
"""

from __future__ import annotations

import hashlib
import hmac

import httpx

from .config import WebhookSink
from .destinations import GuardedBackend
from .outcome import http_status_line, short_error

IDEMPOTENCY_HEADER = "Idempotency-Key"
SIGNATURE_HEADER = "X-Intunedd-Signature"


def guarded_transport(limits: httpx.Limits) -> httpx.AsyncHTTPTransport:
    """httpx's transport, connecting only to addresses ``destinations`` allows.

    httpx has no public hook for the network backend, but its httpcore pool takes one; a
    transport given to the client also keeps environment proxies from bypassing the check.
    """
    transport = httpx.AsyncHTTPTransport(limits=limits)
    transport._pool._network_backend = GuardedBackend(transport._pool._network_backend)
    return transport


def signature(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


async def post(
    client: httpx.AsyncClient,
    sink: WebhookSink,
    body: bytes,
    *,
    idempotency_key: str,
    secret: str,
    timestamp: int,
) -> tuple[int | None, str | None]:
    """The receiver's status code, or None for a network failure or timeout, and a short status
    line: never the receiver's body, which an internal service would otherwise hand back."""
    headers = {**sink.headers, "Content-Type": "application/json", IDEMPOTENCY_HEADER: idempotency_key}
    if sink.secret or secret:
        headers[SIGNATURE_HEADER] = signature(sink.secret or secret, timestamp, body)
    try:
        response = await client.post(sink.url, content=body, headers=headers)
    except httpx.HTTPError as e:
        return None, short_error(e)
    return response.status_code, None if response.is_success else http_status_line(response.status_code)
