"""Secrets at rest (AuthSession parameters, storage state, proxies): AES-256-GCM under one key file.

A sealed blob is ``version (1) | key id (8) | nonce (12) | ciphertext and tag``. The key id (a hash
of the key) says which key sealed a blob, so a rotation interrupted between its database commit
and its key swap can tell which key the rows hold. The version, the key id and the caller's
``context`` (which row and column the blob belongs to) are authenticated as associated data: a
blob copied to another row does not unseal there.

Error messages never hold key material or plaintext.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import secrets
import stat
from pathlib import Path
from typing import Any

import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

VERSION = 1
KEY_BYTES = 32
KEY_ID_BYTES = 8
NONCE_BYTES = 12
TAG_BYTES = 16
HEADER_BYTES = 1 + KEY_ID_BYTES
_encode = msgspec.json.Encoder()


class SecretError(Exception):
    """A key file that cannot be used, or a blob that does not unseal with this key and context."""


def pending_key_path(path: Path) -> Path:
    """Where a rotation keeps the new key until the database holds only blobs sealed with it."""
    return path.with_name(path.name + ".new")


def key_id(key: bytes) -> bytes:
    return hashlib.sha256(b"intunedd secrets key id\0" + key).digest()[:KEY_ID_BYTES]


def blob_key_id(blob: bytes) -> bytes | None:
    """Which key sealed ``blob`` (None when it is too short or of an unknown version to say)."""
    if len(blob) < HEADER_BYTES or blob[0] != VERSION:
        return None
    return blob[1:HEADER_BYTES]


class SecretBox:
    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise SecretError(f"a secrets key is {KEY_BYTES} bytes, not {len(key)}")
        self._aead = AESGCM(key)
        self.key_id = key_id(key)

    def __repr__(self) -> str:
        return f"SecretBox(key_id={self.key_id.hex()})"

    @classmethod
    def open(cls, path: Path) -> SecretBox:
        """The key in ``path``, created (256 random bits, mode 0600) on first use.

        Refused: a key file of the wrong size, one readable or writable by group or others, and
        a key file beside the new key of an unfinished rotation (finish it first)."""
        if pending_key_path(path).exists():
            raise SecretError(
                f"{pending_key_path(path)} exists: a key rotation did not finish; "
                "run `intunedd authsessions rotate-key` again (with the daemon stopped) to finish it"
            )
        if not path.exists():
            write_key_file(path, secrets.token_bytes(KEY_BYTES), replace=False)
        return cls(read_key_file(path))

    def seal(self, value: Any, context: bytes = b"") -> bytes:
        return self.seal_bytes(_encode.encode(value), context)

    def unseal(self, blob: bytes, context: bytes = b"") -> Any:
        plaintext = self.unseal_bytes(blob, context)
        try:
            return msgspec.json.decode(plaintext)
        except msgspec.DecodeError:
            raise SecretError("a sealed secret holds no valid JSON") from None

    def seal_bytes(self, plaintext: bytes, context: bytes = b"") -> bytes:
        header = bytes([VERSION]) + self.key_id
        nonce = secrets.token_bytes(NONCE_BYTES)
        return header + nonce + self._aead.encrypt(nonce, plaintext, header + context)

    def unseal_bytes(self, blob: bytes, context: bytes = b"") -> bytes:
        if not isinstance(blob, bytes) or len(blob) < HEADER_BYTES + NONCE_BYTES + TAG_BYTES:
            raise SecretError("not a sealed secret (too short)")
        if blob[0] != VERSION:
            raise SecretError(f"not a sealed secret (unknown version {blob[0]})")
        if blob[1:HEADER_BYTES] != self.key_id:
            raise SecretError("the secret was sealed with another key")
        nonce = blob[HEADER_BYTES : HEADER_BYTES + NONCE_BYTES]
        try:
            return self._aead.decrypt(nonce, blob[HEADER_BYTES + NONCE_BYTES :], blob[:HEADER_BYTES] + context)
        except InvalidTag:
            raise SecretError("the secret does not unseal: damaged, or sealed for another record") from None


def rotate(old: SecretBox, new: SecretBox, blob: bytes, context: bytes = b"") -> bytes:
    """``blob`` sealed under ``new`` instead of ``old``, for the same context; the plaintext is
    carried as bytes, never decoded."""
    return new.seal_bytes(old.unseal_bytes(blob, context), context)


def lock_key_file(path: Path, *, exclusive: bool) -> int:
    """An open descriptor holding a lock on the key file, to close when done: the daemon holds it
    shared while it runs, a rotation exclusive, so a key is never swapped under a running daemon
    (which would go on sealing with the old key)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise SecretError(f"{path} is in use: is the daemon running? Stop it first") from None
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_key_file(path: Path) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise SecretError(f"{path} is not a regular file")
        if mode & 0o077:
            raise SecretError(f"{path} is accessible to group or others (mode {mode & 0o777:o}): chmod 600 it")
        key = os.read(fd, KEY_BYTES + 1)
    finally:
        os.close(fd)
    if len(key) != KEY_BYTES:
        raise SecretError(f"{path} is not a secrets key: it must hold exactly {KEY_BYTES} bytes")
    return key


def write_key_file(path: Path, key: bytes, *, replace: bool) -> None:
    """Write ``key`` to ``path`` whole or not at all: a 0600 temporary file, synced, then linked
    into place (``replace=False``: only if ``path`` does not exist yet; a concurrent creator wins
    and its key is the one used) or renamed over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        try:
            os.write(fd, key)
            os.fsync(fd)
        finally:
            os.close(fd)
        if replace:
            os.replace(temporary, path)
        else:
            try:
                os.link(temporary, path)
            except FileExistsError:
                pass
            os.unlink(temporary)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    sync_directory(path.parent)


def sync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
