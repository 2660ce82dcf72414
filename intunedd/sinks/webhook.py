"""Webhook delivery: one POST, an idempotency key, and an optional HMAC signature.

The signature header is ``X-Intunedd-Signature: t=<unix seconds>,v1=<hex>``, where ``hex`` is
HMAC-SHA256 over ``"<t>.<raw body>"`` with the sink's (or the daemon's) secret, as Stripe does.
"""

from __future__ import annotations

import hashlib
import hmac

import httpx

from ..tls import client_context
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
    transport = httpx.AsyncHTTPTransport(limits=limits, verify=client_context())
    transport._pool._network_backend = GuardedBackend(transport._pool._network_backend)
    return transport


def timestamped_hmac(secret: str, timestamp: int, body: bytes) -> str:
    """Hex HMAC-SHA256 of ``"<timestamp>.<body>"``: what every webhook signature of ours signs."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature(secret: str, timestamp: int, body: bytes) -> str:
    return f"t={timestamp},v1={timestamped_hmac(secret, timestamp, body)}"


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
    headers = {**sink.headers, IDEMPOTENCY_HEADER: idempotency_key}
    if sink.secret or secret:
        headers[SIGNATURE_HEADER] = signature(sink.secret or secret, timestamp, body)
    return await send(client, sink.url, body, headers)


async def send(
    client: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str]
) -> tuple[int | None, str | None]:
    """POST ``body`` as JSON: ``post``'s answer, for any webhook-like delivery."""
    try:
        response = await client.post(url, content=body, headers={**headers, "Content-Type": "application/json"})
    except httpx.HTTPError as e:
        return None, short_error(e)
    return response.status_code, None if response.is_success else http_status_line(response.status_code)
