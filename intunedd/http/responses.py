"""Encoding answers: JSON bodies, and the files an attempt leaves behind."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import trio
from quart import Response

from ..errors import NotFound

_encoder = msgspec.json.Encoder()


def json_response(body: Any, status: int = 200) -> Response:
    return Response(_encoder.encode(body), status=status, content_type="application/json")


async def file_response(path: str | None, content_type: str, download_name: str) -> Response:
    if path is None or not await trio.Path(path).is_file():
        raise NotFound(f"{download_name} does not exist for this attempt")
    data = await trio.Path(path).read_bytes()
    response = Response(data, content_type=content_type)
    response.headers["Content-Disposition"] = f'attachment; filename="{download_name}"'
    return response


def first_file(directory: str | None, suffix: str) -> str | None:
    if directory is None or not Path(directory).is_dir():
        return None
    return next((str(p) for p in sorted(Path(directory).glob(f"*{suffix}"))), None)
