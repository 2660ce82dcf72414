"""Per-attempt functions tokens: what Intuned's runtime sends (``Authorization: Bearer``) to the daemon's
backend functions (persistent store, auth-session parameters) instead of an API key.

A token binds a project, a run and an expiry, so an automation can reach its own project's data only,
and only while its run may still be going. It is ``<payload>.<mac>``: the payload is the claims as
base64url JSON, the mac HMAC-SHA256 (hex) over a purpose label and the payload *as sent*, keyed with
the daemon's signing secret. Verifying the text as sent (not the decoded bytes) makes every change to
a token fail, even one base64 would decode to the same claims.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from datetime import datetime

import msgspec

# Keeps these MACs apart from the signed-URL ones (signing.py) made with the same secret.
_PURPOSE = b"intunedd functions token v1\n"
# Far longer than any token we mint (two bounded names and a number); refuse bigger before any work.
MAX_TOKEN_CHARS = 4096


class Claims(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    project: str
    run_id: str
    expires: int  # unix seconds


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Claims)


def _mac(secret: bytes, payload: str) -> str:
    return hmac.new(secret, _PURPOSE + payload.encode("ascii"), hashlib.sha256).hexdigest()


def mint(secret: bytes, claims: Claims) -> str:
    payload = base64.urlsafe_b64encode(_encoder.encode(claims)).decode("ascii")
    return f"{payload}.{_mac(secret, payload)}"


def expiring(project: str, run_id: str, now: datetime, lifetime_s: int) -> Claims:
    return Claims(project=project, run_id=run_id, expires=int(now.timestamp()) + lifetime_s)


def verify(secret: bytes, token: str, now: datetime) -> Claims | None:
    """The token's claims if this daemon minted it and it has not expired, else None."""
    if len(token) > MAX_TOKEN_CHARS or not token.isascii():
        return None
    payload, dot, given = token.partition(".")
    if not dot or not hmac.compare_digest(_mac(secret, payload).encode(), given.encode()):
        return None
    try:
        claims = _decoder.decode(base64.urlsafe_b64decode(payload))
    except (binascii.Error, ValueError, msgspec.DecodeError):
        return None
    return claims if claims.expires >= now.timestamp() else None


# An attempt's deadline moves with every extend_timeout(), so no attempt-sized lifetime is safe;
# the token is bound to one run of one project, and a day outlasts any sane run.
LIFETIME_S = 24 * 3600


class Backend(msgspec.Struct, frozen=True):
    """Where attempts on Intuned's runtime reach the daemon's backend functions, and the key their
    tokens are minted with."""

    domain: str
    workspace_id: str
    secret: bytes

    def token(self, project: str, run_id: str, now: datetime) -> str:
        return mint(self.secret, expiring(project, run_id, now, LIFETIME_S))
