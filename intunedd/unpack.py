"""Unpacking an uploaded project archive (a tar.gz) into a folder, within the [deploy] limits.

The archive is untrusted. Only folders and regular files are created: links, devices, absolute
paths, ``..``, paths over MAX_PATH_PARTS deep and names that are not UTF-8 are refused. The tar
is read as one forward stream through a gzip reader that counts what it decompresses, and the
gzip stream is read to its end so its CRC and length are checked even after tar's end-of-archive
marker. Sync; run in a thread.
"""

from __future__ import annotations

import gzip
import io
import tarfile
import zlib
from pathlib import Path, PurePosixPath

from .config import DeploySettings
from .policy.archive_budget import ArchiveBudget, ArchiveError, shown

CHUNK = 64 * 1024
GZIP_MAGIC = b"\x1f\x8b"
# pathlib's mkdir(parents=True) and shutil.rmtree recurse once per folder level: a tree deeper
# than the interpreter's recursion limit could be created member by member but never removed.
MAX_PATH_PARTS = 100


class _MeteredGzip(gzip.GzipFile):
    """A gzip reader that reports every decompressed byte to the budget before handing it out."""

    def __init__(self, archive: bytes, budget: ArchiveBudget) -> None:
        super().__init__(fileobj=io.BytesIO(archive), mode="rb")
        self.budget = budget

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        self.budget.add_decompressed(len(data))
        return data


def unpack(archive: bytes, dest: Path, limits: DeploySettings) -> None:
    """Extract ``archive`` into the existing folder ``dest``; ArchiveError says what is wrong with it.

    On error ``dest`` holds whatever was written so far: the caller removes it.
    """
    if not archive.startswith(GZIP_MAGIC):
        raise ArchiveError("the archive is not gzip-compressed: expected a .tar.gz")
    budget = ArchiveBudget(limits)
    current: str | None = None
    try:
        with _MeteredGzip(archive, budget) as stream:
            with tarfile.open(fileobj=stream, mode="r|") as tar:
                for member in tar:
                    current = member.name
                    _extract(tar, member, dest, budget)
            current = None
            while stream.read(CHUNK):
                pass  # past tar's end marker to gzip's own end, where the CRC is checked
    except ArchiveError:
        raise
    except (tarfile.TarError, EOFError, zlib.error, OSError, ValueError, OverflowError, RecursionError) as e:
        raise ArchiveError(_describe(e, current)) from e


def _extract(tar: tarfile.TarFile, member: tarfile.TarInfo, dest: Path, budget: ArchiveBudget) -> None:
    budget.add_member(member.name, member.size if member.isreg() else 0)
    if not (member.isreg() or member.isdir()):
        kind = "a link or special file"
        raise ArchiveError(f"{shown(member.name)} is {kind}: an archive may hold only files and folders")
    target = dest.joinpath(*_parts(member.name))
    if member.isdir():
        target.mkdir(parents=True, exist_ok=True)
        return
    if target == dest:
        raise ArchiveError(f"a file in the archive has no name ({shown(member.name)})")
    target.parent.mkdir(parents=True, exist_ok=True)
    source = tar.extractfile(member)
    assert source is not None  # a regular file always has a reader
    written = 0
    with source, open(target, "wb") as out:
        while chunk := source.read(CHUNK):
            written += len(chunk)
            budget.add_written(member.name, written, len(chunk))
            out.write(chunk)


def _parts(name: str) -> tuple[str, ...]:
    """The path components of a member name, refused unless it stays inside the destination."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise ArchiveError(f"{shown(name)}: member names must be UTF-8") from None
    path = PurePosixPath(name)
    if path.is_absolute():
        raise ArchiveError(f"{shown(name)} is an absolute path: member names must be relative")
    if ".." in path.parts:
        raise ArchiveError(f"{shown(name)} contains '..': members must stay inside the project")
    if len(path.parts) > MAX_PATH_PARTS:
        raise ArchiveError(f"{shown(name)} is more than {MAX_PATH_PARTS} folders deep")
    return path.parts


def _describe(error: BaseException, member: str | None) -> str:
    where = f" at {shown(member)}" if member is not None else ""
    if isinstance(error, EOFError):
        return f"the archive is truncated{where}"
    if isinstance(error, zlib.error | gzip.BadGzipFile):
        return f"the archive is corrupt{where}: {error}"
    if isinstance(error, OSError):
        # strerror, not str(): the OSError's text would show the daemon's own paths.
        return f"the archive could not be unpacked{where}: {error.strerror or type(error).__name__}"
    return f"the archive could not be unpacked{where}: {error}"
