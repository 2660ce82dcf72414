"""Secrets at rest: sealed blobs open only with their key and context; the key file is guarded."""

from __future__ import annotations

import os
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from intunedd.secrets import (
    KEY_BYTES,
    SecretBox,
    SecretError,
    lock_key_file,
    pending_key_path,
    read_key_file,
    rotate,
)

BOX = SecretBox(os.urandom(KEY_BYTES))
OTHER = SecretBox(os.urandom(KEY_BYTES))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
contexts = st.binary(max_size=64)


@given(json_values, contexts)
def test_a_sealed_value_unseals_to_itself(value: Any, context: bytes) -> None:
    blob = BOX.seal(value, context)
    assert BOX.unseal(blob, context) == value
    assert BOX.seal(value, context) != blob  # a fresh nonce every time


@given(json_values, contexts, st.data())
def test_any_single_bit_flip_is_refused(value: Any, context: bytes, data: st.DataObject) -> None:
    blob = bytearray(BOX.seal(value, context))
    bit = data.draw(st.integers(0, len(blob) * 8 - 1))
    blob[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(SecretError):
        BOX.unseal(bytes(blob), context)


@given(json_values, contexts, st.data())
def test_any_truncation_is_refused(value: Any, context: bytes, data: st.DataObject) -> None:
    blob = BOX.seal(value, context)
    cut = data.draw(st.integers(0, len(blob) - 1))
    with pytest.raises(SecretError):
        BOX.unseal(blob[:cut], context)


@given(json_values, contexts, st.binary(min_size=KEY_BYTES, max_size=KEY_BYTES))
def test_any_other_key_is_refused(value: Any, context: bytes, key: bytes) -> None:
    other = SecretBox(key)
    blob = BOX.seal(value, context)
    with pytest.raises(SecretError):
        other.unseal(blob, context)


@given(json_values, contexts, contexts)
def test_any_other_context_is_refused(value: Any, context: bytes, other: bytes) -> None:
    assume(other != context)
    with pytest.raises(SecretError):
        BOX.unseal(BOX.seal(value, context), other)


@given(st.binary(max_size=200))
def test_garbage_is_refused(garbage: bytes) -> None:
    with pytest.raises(SecretError):
        BOX.unseal(garbage)


@given(json_values, contexts)
def test_rotation_moves_a_blob_to_the_new_key(value: Any, context: bytes) -> None:
    rotated = rotate(BOX, OTHER, BOX.seal(value, context), context)
    assert OTHER.unseal(rotated, context) == value
    with pytest.raises(SecretError):
        BOX.unseal(rotated, context)


def test_errors_name_no_secret() -> None:
    password = "hunter2-very-secret"
    blob = BOX.seal({"password": password}, b"row-1")
    raised = []
    for box, context in ((BOX, b"row-2"), (OTHER, b"row-1")):
        with pytest.raises(SecretError) as e:
            box.unseal(blob, context)
        raised.append(str(e.value))
    with pytest.raises(SecretError) as e:
        SecretBox(b"short")
    raised.append(str(e.value))
    for message in raised:
        assert password not in message
        assert "hunter2" not in message
    assert repr(BOX) == f"SecretBox(key_id={BOX.key_id.hex()})"


def test_the_key_file_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "state" / "secrets.key"
    # Concurrent first starts agree on one key: the file appears whole, and only once.
    with ThreadPoolExecutor(8) as pool:
        boxes = list(pool.map(lambda _: SecretBox.open(path), range(16)))
    assert len({box.key_id for box in boxes}) == 1
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.stat().st_size == KEY_BYTES
    assert sorted(p.name for p in path.parent.iterdir()) == ["secrets.key"]  # no temporary files left
    again = SecretBox.open(path)
    assert again.unseal(boxes[0].seal("x")) == "x"


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_a_key_file_others_can_read_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "secrets.key"
    SecretBox.open(path)
    key = path.read_bytes()
    path.chmod(mode)
    with pytest.raises(SecretError, match="chmod 600") as e:
        SecretBox.open(path)
    assert key.hex() not in str(e.value)


@pytest.mark.parametrize("size", [0, 16, 31, 33, 64])
def test_a_key_file_of_the_wrong_size_is_refused(tmp_path: Path, size: int) -> None:
    path = tmp_path / "secrets.key"
    path.write_bytes(b"k" * size)
    path.chmod(0o600)
    with pytest.raises(SecretError, match="exactly 32 bytes") as e:
        SecretBox.open(path)
    assert "k" * 8 not in str(e.value)


def test_a_symlinked_key_file_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "real.key"
    SecretBox.open(real)
    link = tmp_path / "secrets.key"
    link.symlink_to(real)
    with pytest.raises(OSError):
        read_key_file(link)


def test_an_unfinished_rotation_keeps_the_key_from_being_opened(tmp_path: Path) -> None:
    path = tmp_path / "secrets.key"
    SecretBox.open(path)
    pending_key_path(path).write_bytes(os.urandom(KEY_BYTES))
    with pytest.raises(SecretError, match="rotate-key"):
        SecretBox.open(path)


def test_a_held_key_cannot_be_locked_for_rotation(tmp_path: Path) -> None:
    path = tmp_path / "secrets.key"
    SecretBox.open(path)
    held = lock_key_file(path, exclusive=False)
    try:
        with pytest.raises(SecretError, match="daemon running"):
            lock_key_file(path, exclusive=True)
        os.close(lock_key_file(path, exclusive=False))  # another reader is fine
    finally:
        os.close(held)
    os.close(lock_key_file(path, exclusive=True))
