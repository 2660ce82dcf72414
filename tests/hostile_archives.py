"""Project archives for deploy tests: a valid one, and each hostile shape a deploy must refuse.

HOSTILE maps each case to its builder and a phrase the refusal's message must contain.
"""

from __future__ import annotations

import gzip
import io
import json
import random
import tarfile
import zlib
from collections.abc import Callable, Iterator

ECHO = b"async def automation(page, params, **kwargs):\n    return params\n"
MiB = 1024 * 1024
Member = tuple[tarfile.TarInfo, bytes | None]
Files = dict[str, bytes]


def member(name: str, data: bytes = b"", *, kind: bytes = tarfile.REGTYPE, link: str = "") -> Member:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    return info, data if kind == tarfile.REGTYPE else None


def tar_bytes(members: list[Member], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=fmt) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def gz(data: bytes, level: int = 6) -> bytes:
    return gzip.compress(data, compresslevel=level, mtime=0)


def archive(files: Files, *, level: int = 6) -> bytes:
    """A tar.gz of ``files`` (name -> content)."""
    return gz(tar_bytes([member(name, data) for name, data in files.items()]), level)


def project(settings: bytes | None = None, settings_name: str = "Intuned.json", extra: Files | None = None) -> bytes:
    """A deployable project: api/echo.py, its settings file as given, and ``extra`` files."""
    files = {"api/echo.py": ECHO, **(extra or {})}
    if settings is not None:
        files[settings_name] = settings
    return archive(files)


def settings_json(value: object) -> bytes:
    return json.dumps(value).encode()


def zeros_bomb(files: int, size: int) -> bytes:
    """api/echo.py and ``files`` files of ``size`` zero bytes each, streamed through one compressor
    so that building hundreds of MiB stays cheap."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # wbits 31: gzip framing
    echo, _ = member("api/echo.py", ECHO)
    out = [compressor.compress(echo.tobuf() + ECHO + bytes(-len(ECHO) % tarfile.BLOCKSIZE))]
    chunk = bytes(MiB)
    for i in range(files):
        info = tarfile.TarInfo(f"data/{i}.bin")
        info.size = size
        out.append(compressor.compress(info.tobuf()))
        out += [compressor.compress(chunk[: min(MiB, size - offset)]) for offset in range(0, size, MiB)]
        out.append(compressor.compress(bytes(-size % tarfile.BLOCKSIZE)))
    out.append(compressor.compress(bytes(2 * tarfile.BLOCKSIZE)))
    out.append(compressor.flush())
    return b"".join(out)


def many_members(count: int) -> bytes:
    members = [member("api/echo.py", ECHO)] + [member(f"f/{i}") for i in range(count)]
    return gz(tar_bytes(members, tarfile.USTAR_FORMAT), 9)


def truncated() -> bytes:
    valid = project(settings_json({}))
    return valid[: len(valid) // 2]


def bad_deflate() -> bytes:
    """16 bytes overwritten well inside the deflate data: inflate fails (zlib.error) after the
    first members have been read."""
    valid = archive({"api/echo.py": ECHO, "data.txt": random.Random(1).randbytes(30_000).hex().encode()})
    return valid[:6200] + b"\xff" * 16 + valid[6216:]


def stored_block_damage() -> bytes:
    """Level 0 keeps file contents verbatim in stored blocks; one flipped byte there passes inflate
    and only the gzip CRC catches it."""
    marker = b"MARKER-" * 8
    valid = archive({"api/echo.py": ECHO, "data.txt": marker}, level=0)
    at = valid.index(marker) + 3
    return valid[:at] + bytes([valid[at] ^ 0x01]) + valid[at + 1 :]


HOSTILE: dict[str, tuple[Callable[[], bytes], str]] = {
    "truncated gzip": (truncated, "archive"),
    "corrupted deflate": (bad_deflate, "archive"),
    "damage inside a stored block": (stored_block_damage, "archive"),
    "not gzip": (lambda: b"not a tarball", "gzip"),
    "settings not UTF-8": (lambda: project(b'{"a": "\xff\xfe"}'), "Intuned.json"),
    "settings nested 100k deep": (lambda: project(b'{"a":' * 100_000 + b"1" + b"}" * 100_000), "Intuned.json"),
    "maxConcurrentRequests overflow": (
        lambda: project(b'{"replication": {"maxConcurrentRequests": 18446744073709551615}}'),
        "maxConcurrentRequests",
    ),
    "default webhook sink without url": (
        lambda: project(settings_json({"defaults": {"sink": {"type": "webhook"}}})),
        "defaults.sink",
    ),
    "quadratic comment bomb": (lambda: project(b"/*a" * 40_000, "Intuned.jsonc"), "Intuned.jsonc"),
    "zeros bomb": (lambda: zeros_bomb(5, 45 * MiB), "max_unpacked_bytes"),
    "100,000 members": (lambda: many_members(100_000), "max_members"),
    "symlink": (lambda: gz(tar_bytes([member("api/echo.py", ECHO), member("x", kind=tarfile.SYMTYPE, link="/")])), "x"),
    "absolute path": (lambda: gz(tar_bytes([member("/tmp/intunedd-escape.py", ECHO)])), "absolute"),
    "path escape": (lambda: gz(tar_bytes([member("../escape.py", ECHO)])), "escape.py"),
    # Each folder a little deeper than the last: a tree too deep for shutil.rmtree to remove.
    "folders 2000 deep": (
        lambda: gz(tar_bytes([member("a/" * k, kind=tarfile.DIRTYPE) for k in range(50, 2001, 50)])),
        "folders deep",
    ),
}


def hostile_cases() -> Iterator[tuple[str, Callable[[], bytes], str]]:
    for name, (build, phrase) in HOSTILE.items():
        yield name, build, phrase
