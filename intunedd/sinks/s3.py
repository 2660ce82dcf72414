"""S3 (and S3-compatible) delivery through botocore: it signs and sends; we only put one object.

botocore is synchronous, so each put runs in a worker thread. Clients are cached per
endpoint and credentials, so connections are reused across deliveries.
"""

from __future__ import annotations

import threading
from typing import Any

import boto3
import botocore.config
import botocore.exceptions

from .config import S3Sink

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
        return _clients[key]


def put(sink: S3Sink, key: str, body: bytes, *, timeout_s: float) -> tuple[int | None, str | None]:
    """The HTTP status S3 answered (200 on success), or None and the error for a network failure."""
    try:
        response = _client(sink, timeout_s).put_object(
            Bucket=sink.bucket, Key=key, Body=body, ContentType="application/json"
        )
    except botocore.exceptions.ClientError as e:
        status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return (int(status) if status else None), str(e)
    except (botocore.exceptions.BotoCoreError, OSError) as e:
        return None, f"{type(e).__name__}: {e}"
    return int(response["ResponseMetadata"]["HTTPStatusCode"]), None
