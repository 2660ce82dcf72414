"""Removes environments that no stored project version uses any more.

An environment in use has its last-used time (its meta file's mtime) renewed at every sweep, so
``keep_unused_s`` counts from the moment it stopped being used, not from when it was built. A
``.partial`` build older than the longest a build may take was left by a killed daemon.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Collection
from pathlib import Path

from .builder import INPUTS, META_FILE, PARTIAL_SUFFIX

# An environment is built before the version that uses it is recorded: never remove one
# touched this recently, whatever keep_unused_s says.
MIN_UNUSED_S = 600.0


def sweep(
    root: Path, in_use: Collection[str], *, keep_unused_s: float, build_timeout_s: float, now: float
) -> list[str]:
    """Remove what is unused for longer than ``keep_unused_s``; returns the removed keys."""
    if not root.is_dir():
        return []
    removed: list[str] = []
    for entry in sorted(root.iterdir()):
        if entry.name.endswith(PARTIAL_SUFFIX):
            if now - entry.stat().st_mtime > build_timeout_s + MIN_UNUSED_S:
                shutil.rmtree(entry, ignore_errors=True)
            continue
        meta = entry / META_FILE
        if entry.name.startswith(".") or not meta.is_file():
            continue  # the uv cache and the inputs folder, or not an environment of ours
        if entry.name in in_use:
            os.utime(meta, (now, now))
        elif now - meta.stat().st_mtime > max(keep_unused_s, MIN_UNUSED_S):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry.name)
    inputs = root / INPUTS
    for link in inputs.iterdir() if inputs.is_dir() else []:
        if not (root / link.read_text().strip() / META_FILE).is_file():
            link.unlink(missing_ok=True)
    return removed
