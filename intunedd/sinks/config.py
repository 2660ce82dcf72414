"""Sink configurations as Intuned writes them (webhook or S3), and which runs they take."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import msgspec
from msgspec import Struct

SECRET_FIELDS = ("secretAccessKey", "secret")
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
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"Invalid webhook url {self.url!r}: expected http(s)://host/...")


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
            parts = urlsplit(self.endpoint)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"Invalid S3 endpoint {self.endpoint!r}: expected http(s)://host")


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


def mask(sink: dict[str, Any] | None) -> dict[str, Any] | None:
    """A sink as it may be shown: secrets and header values hidden."""
    if not sink:
        return sink
    shown = {k: (MASK if k in SECRET_FIELDS and v else v) for k, v in sink.items()}
    if isinstance(shown.get("headers"), dict):
        shown["headers"] = {name: MASK for name in shown["headers"]}
    return shown
