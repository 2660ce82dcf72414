"""Encoding answers: JSON bodies, and the files an attempt leaves behind."""

from __future__ import annotations

import io
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import trio
from quart import Response

from ..errors import NotFound
from ..workers.sandbox import open_worker_file

_encoder = msgspec.json.Encoder()
FILE_CHUNK_BYTES = 256 * 1024


def json_response(body: Any, status: int = 200) -> Response:
    return Response(_encoder.encode(body), status=status, content_type="application/json")


async def file_response(path: str | None, content_type: str, download_name: str) -> Response:
    """The file in chunks: traces and videos can be gigabytes, and several downloads at once
    must not hold them in memory. A file still growing (a running attempt's log) is sent as
    long as it was when asked for. A worker wrote it and may have swapped it for a link to a file
    it cannot read itself (the database): only a plain file is sent."""
    try:
        fd = await trio.to_thread.run_sync(open_worker_file, path) if path else None
    except OSError:
        fd = None
    if fd is None:
        raise NotFound(f"{download_name} does not exist for this attempt")
    size = os.fstat(fd).st_size
    response = Response(_chunks(os.fdopen(fd, "rb"), size), content_type=content_type)
    response.headers["Content-Length"] = str(size)
    response.headers["Content-Disposition"] = f'attachment; filename="{download_name}"'
    return response


async def _chunks(raw: io.BufferedReader, size: int) -> AsyncIterator[bytes]:
    async with trio.wrap_file(raw) as file:
        left = size
        while left > 0 and (chunk := await file.read(min(left, FILE_CHUNK_BYTES))):
            left -= len(chunk)
            yield chunk


def first_file(directory: str | None, suffix: str) -> str | None:
    if directory is None or not Path(directory).is_dir():
        return None
    return next((str(p) for p in sorted(Path(directory).glob(f"*{suffix}"))), None)
