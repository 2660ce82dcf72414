"""S3 (and S3-compatible) delivery through botocore: it signs and sends; we only put one object.

botocore is synchronous, so each put runs in a worker thread. Clients are cached per
endpoint and credentials, so connections are reused across deliveries. Each request's host
is resolved and checked (``destinations``) just before botocore sends it.
"""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import urlsplit

import boto3
import botocore.config
import botocore.exceptions

from .config import S3Sink
from .destinations import resolve_sync
from .outcome import http_status_line, short_error

_clients: dict[tuple[Any, ...], Any] = {}
_lock = threading.Lock()


def _client(sink: S3Sink, timeout_s: float) -> Any:
    key = (sink.endpoint, sink.region, sink.access_key_id, sink.secret_access_key, sink.force_path_style)
    with _lock:
        if key not in _clients:
            config = botocore.config.Config(
                connect_timeout=timeout_s,
                read_timeout=timeout_s,
                retries={"max_attempts": 1},  # our dispatcher owns retries and their schedule
                s3={"addressing_style": "path" if sink.force_path_style else "auto"},
            )
            _clients[key] = boto3.session.Session().client(
                "s3",
                region_name=sink.region,
                endpoint_url=sink.endpoint,
                aws_access_key_id=sink.access_key_id,
                aws_secret_access_key=sink.secret_access_key,
                config=config,
            )
            _clients[key].meta.events.register("before-send.s3", _check_destination)
        return _clients[key]


def _check_destination(request: Any, **_: Any) -> None:
    """botocore's last hook before a request leaves: raises DestinationRefused for a refused host."""
    parts = urlsplit(request.url)
    resolve_sync(parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80))


def put(sink: S3Sink, key: str, body: bytes, *, timeout_s: float) -> tuple[int | None, str | None]:
    """The HTTP status S3 answered (200 on success) or None for a network failure, and a short
    status line for a failure."""
    try:
        response = _client(sink, timeout_s).put_object(
            Bucket=sink.bucket, Key=key, Body=body, ContentType="application/json"
        )
    except botocore.exceptions.ClientError as e:
        status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        code = e.response.get("Error", {}).get("Code")
        # Not str(e): it quotes the message from S3's response body.
        return (int(status), http_status_line(int(status), code)) if status else (None, "ClientError")
    except (botocore.exceptions.BotoCoreError, OSError) as e:
        return None, short_error(e)
    return int(response["ResponseMetadata"]["HTTPStatusCode"]), None
