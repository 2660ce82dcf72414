"""The ``run.completed`` callback of a collection run: its body, its signature and its secret.

The service documents the headers (``X-SP-Signature``, ``X-SP-Timestamp``) and HMAC-SHA256, not
what is signed nor with which secret, and the SDK ships no verifier. We sign as our sinks do
(``sinks.webhook``): ``X-SP-Timestamp`` is the Unix time in seconds of the attempt, and
``X-SP-Signature`` the hex HMAC-SHA256 of ``"<timestamp>.<raw body>"``. The timestamp lets a
receiver refuse replays, so it is taken anew at every delivery attempt, not when the run ends.

The secret is the daemon's, not an API key's: keys are only kept as digests, and a receiver
should not have to hold an API key to check a callback. ``collections.callback_secret`` when
set; otherwise one generated on first use into ``<state_dir>/callback-secret`` (mode 0600,
32 URL-safe characters), where the operator reads it to configure receivers.
"""

from __future__ import annotations

import hmac
import secrets
from datetime import UTC, datetime
from typing import Literal

import msgspec

from ..config import Settings
from ..secrets import read_key_file, write_key_file
from ..sinks.webhook import timestamped_hmac
from . import wire

SIGNATURE_HEADER = "X-SP-Signature"
TIMESTAMP_HEADER = "X-SP-Timestamp"
SECRET_FILE = "callback-secret"
CALLBACK_KIND = "collection-callback"  # the sink outbox's deliveries.kind of a run.completed callback


class RunCompleted(msgspec.Struct, kw_only=True):
    event: Literal["run.completed"] = "run.completed"
    run_id: str
    collection_id: str
    status: wire.RunStatus
    total_requests: int
    success_requests: int
    failed_requests: int
    job_ids: list[str]
    results_url: str
    timestamp: str  # ISO-8601 UTC to the second, "2026-04-06T20:30:00Z"


def run_completed(run: wire.RunPublic, base_url: str, at: datetime) -> RunCompleted:
    """The callback body for a finished ``run``; ``base_url`` is where clients reach the daemon."""
    return RunCompleted(
        run_id=run.run_id,
        collection_id=run.collection_id,
        status=run.status,
        total_requests=run.total_requests,
        success_requests=run.success_requests,
        failed_requests=run.failed_requests,
        job_ids=run.job_ids,
        results_url=f"{base_url.rstrip('/')}/v1/async/collections/{run.collection_id}/runs/{run.run_id}",
        timestamp=at.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds") + "Z",
    )


def headers(secret: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The signature headers of one delivery attempt of ``body`` at ``timestamp`` (Unix seconds)."""
    return {TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: timestamped_hmac(secret, timestamp, body)}


def verify(secret: str, timestamp: str, signature: str, body: bytes, now: int, tolerance_s: int = 300) -> bool:
    """A receiver's check (the README's): the signature matches and is at most ``tolerance_s`` old."""
    if not timestamp.isdigit() or abs(now - int(timestamp)) > tolerance_s:
        return False
    return hmac.compare_digest(timestamped_hmac(secret, int(timestamp), body), signature)


def callback_secret(settings: Settings) -> str:
    """``collections.callback_secret``, or the generated one (created here the first time)."""
    if settings.collections.callback_secret:
        return settings.collections.callback_secret
    path = settings.state_path / SECRET_FILE
    if not path.exists():
        # 32 characters: the length secrets.read_key_file insists on.
        write_key_file(path, secrets.token_urlsafe(24).encode(), replace=False)
    return read_key_file(path).decode()
