"""Webhook delivery: one POST, an idempotency key, and an optional HMAC signature.

The signature header is ``X-Intunedd-Signature: t=<unix seconds>,v1=<hex>``, where ``hex`` is
HMAC-SHA256 over ``"<t>.<raw body>"`` with the sink's (or the daemon's) secret, as Stripe does.
"""

from __future__ import annotations

import hashlib
import hmac

import httpx

from .config import WebhookSink

IDEMPOTENCY_HEADER = "Idempotency-Key"
SIGNATURE_HEADER = "X-Intunedd-Signature"


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
    """The receiver's status code, or None and the error for a network failure or timeout."""
    headers = {**sink.headers, "Content-Type": "application/json", IDEMPOTENCY_HEADER: idempotency_key}
    if sink.secret or secret:
        headers[SIGNATURE_HEADER] = signature(sink.secret or secret, timestamp, body)
    try:
        response = await client.post(sink.url, content=body, headers=headers)
    except httpx.HTTPError as e:
        return None, f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
    return response.status_code, None if response.is_success else response.text[:500]
