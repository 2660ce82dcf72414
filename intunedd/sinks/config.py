"""Sink configurations as Intuned writes them (webhook or S3), and which runs they take."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import msgspec
from msgspec import Struct

from .destinations import check_host


class SinkFieldError(ValueError):
    """A field's value is refused; msgspec keeps it as the ValidationError's cause, with the field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


SECRET_FIELDS = ("secretAccessKey", "secret")
URL_FIELDS = ("url", "endpoint")
MASK = "****"


class WebhookSink(
    Struct, tag="webhook", tag_field="type", rename="camel", omit_defaults=True, forbid_unknown_fields=True
):
    url: str
    headers: dict[str, str] = {}
    skip_on_fail: bool = False
    apis_to_send: list[str] | None = None
    secret: str | None = None  # ours: signs each request (see the README)

    def __post_init__(self) -> None:
        _check_url(self.url, "url", "webhook url", "http(s)://host/...")


class S3Sink(Struct, tag="s3", tag_field="type", rename="camel", omit_defaults=True, forbid_unknown_fields=True):
    bucket: str
    access_key_id: str
    secret_access_key: str
    region: str
    prefix: str = ""
    endpoint: str | None = None
    force_path_style: bool | None = None
    skip_on_fail: bool = False
    apis_to_send: list[str] | None = None

    def __post_init__(self) -> None:
        if self.endpoint is not None:
            _check_url(self.endpoint, "endpoint", "S3 endpoint", "http(s)://host")


def _check_url(url: str, field: str, what: str, expected: str) -> None:
    """A sink's URL: http(s), a host, a valid port, and not a refused literal address."""
    parts = urlsplit(url)
    try:
        valid = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
    except ValueError:  # a port that is not a number, or out of range
        valid = False
    if not valid or parts.hostname is None:
        raise SinkFieldError(field, f"Invalid {what} {mask_url(url)!r}: expected {expected}")
    try:
        check_host(parts.hostname)
    except ValueError as e:
        raise SinkFieldError(field, str(e)) from e


Sink = WebhookSink | S3Sink


def parse_sink(raw: Any) -> Sink:
    """Validate a sink given as JSON; msgspec.ValidationError names the bad field."""
    sink: Sink = msgspec.convert(raw, Sink)
    return sink


def wants(sink: Sink, api: str, status: str) -> bool:
    """Whether a run that ended with ``status`` is delivered to ``sink``."""
    if status not in ("completed", "failed"):
        return False
    if status == "failed" and sink.skip_on_fail:
        return False
    return sink.apis_to_send is None or api in sink.apis_to_send


def mask_url(url: str) -> str:
    """A URL as it may be shown: user info, query values (a bare ``?token`` whole) and the
    fragment, which often carry tokens, hidden; scheme, host, port and path kept."""
    try:
        parts = urlsplit(url)
    except ValueError:  # not a URL urlsplit can read (a bad IPv6 host): show nothing of it
        return MASK
    host = parts.netloc.rpartition("@")[2]
    netloc = f"{MASK}@{host}" if "@" in parts.netloc else host
    query = "&".join(f"{p.partition('=')[0]}={MASK}" if "=" in p else MASK for p in parts.query.split("&") if p)
    return parts._replace(netloc=netloc, query=query, fragment=MASK if parts.fragment else "").geturl()


def mask(sink: dict[str, Any] | None) -> dict[str, Any] | None:
    """A sink as it may be shown: secrets, header values and the URLs' credentials hidden."""
    if not sink:
        return sink
    shown = {k: (MASK if k in SECRET_FIELDS and v else v) for k, v in sink.items()}
    if isinstance(shown.get("headers"), dict):
        shown["headers"] = {name: MASK for name in shown["headers"]}
    for key in URL_FIELDS:
        if isinstance(shown.get(key), str):
            shown[key] = mask_url(shown[key])
    return shown
