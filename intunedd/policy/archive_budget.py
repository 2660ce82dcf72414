"""How much an uploaded project archive may unpack to: counters checked as bytes arrive.

Nothing here trusts a tar header: file sizes are counted on the bytes actually written, and
every decompressed byte is counted too, so tar headers, PAX records and padding (which tarfile
reads into memory) cannot grow without bound either.
"""

from __future__ import annotations

from ..config import DeploySettings

# What a member may bring beside its contents: its 512-byte header, padding to the next block
# and a PAX record for a long name. SLACK covers tarfile's read-ahead and the closing blocks.
HEADER_ALLOWANCE = 4 * 512
SLACK = 1024 * 1024
SHOWN_NAME_CHARS = 200


class ArchiveError(ValueError):
    """Anything wrong with an uploaded archive; the message says what, for the uploader."""


def shown(name: str) -> str:
    """A member name as an error message quotes it: escaped by repr, and cut short."""
    return repr(name if len(name) <= SHOWN_NAME_CHARS else name[:SHOWN_NAME_CHARS] + "...")


class ArchiveBudget:
    def __init__(self, limits: DeploySettings) -> None:
        self.limits = limits
        self.members = 0
        self.written = 0
        self.decompressed = 0

    def add_member(self, name: str, declared_size: int) -> None:
        """A new member, with the size its header declares (refused early when already too big)."""
        self.members += 1
        if self.members > self.limits.max_members:
            raise ArchiveError(
                f"the archive holds more than {self.limits.max_members} files and folders (deploy.max_members)"
            )
        self._check_file(name, declared_size)

    def add_written(self, name: str, file_bytes: int, chunk: int) -> None:
        """``chunk`` more bytes of ``name`` are about to be written, ``file_bytes`` in that file so far."""
        self.written += chunk
        self._check_file(name, file_bytes)
        if self.written > self.limits.max_unpacked_bytes:
            raise ArchiveError(
                f"the archive unpacks to more than {self.limits.max_unpacked_bytes} bytes (deploy.max_unpacked_bytes)"
            )

    def add_decompressed(self, chunk: int) -> None:
        self.decompressed += chunk
        allowed = (self.members + 1) * HEADER_ALLOWANCE + SLACK
        if self.decompressed - self.written > allowed:
            raise ArchiveError(
                f"the archive holds more than {allowed} bytes of tar headers and padding for its "
                f"{self.members} members (deploy.max_unpacked_bytes)"
            )

    def _check_file(self, name: str, size: int) -> None:
        if size > self.limits.max_file_bytes:
            raise ArchiveError(
                f"{shown(name)} is larger than {self.limits.max_file_bytes} bytes (deploy.max_file_bytes)"
            )
