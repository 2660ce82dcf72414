"""The Python interpreters on this host that an environment could be built on.

Looked for where hosts put them: the daemon's own, ``environments.interpreters`` from the
settings, ``python3.N`` on the PATH and in /usr/bin and /usr/local/bin, pyenv's versions and
uv's managed Pythons. Each candidate is asked its own version (a short subprocess, bounded),
because a file name says nothing certain about what runs.
"""

from __future__ import annotations

import functools
import glob
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import msgspec

PROBE_TIMEOUT_S = 10.0
_PROBE = "import json, sys; print(json.dumps([list(sys.version_info[:3]), sys.executable]))"
_MINORS = range(20, 10, -1)  # python3.20 .. python3.11


class Interpreter(msgspec.Struct, frozen=True, order=True):
    version: tuple[int, int, int]
    path: str

    @property
    def version_text(self) -> str:
        return ".".join(map(str, self.version))


def daemon_interpreter() -> Interpreter:
    """The interpreter the daemon runs on, resolved out of its virtualenv (a venv's python is a link)."""
    base = Path(getattr(sys, "_base_executable", sys.executable)).resolve()
    major, minor, micro = sys.version_info[:3]
    return Interpreter((major, minor, micro), str(base))


def candidate_paths(configured: Iterable[str]) -> list[str]:
    names = [f"python3.{minor}" for minor in _MINORS]
    found = [*configured]
    found += [p for name in names if (p := shutil.which(name))]
    found += [f"{d}/{name}" for d in ("/usr/bin", "/usr/local/bin") for name in names]
    pyenv_root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    found += sorted(glob.glob(f"{pyenv_root}/versions/3.*/bin/python3"))
    uv_data = os.environ.get("UV_PYTHON_INSTALL_DIR") or os.path.expanduser("~/.local/share/uv/python")
    found += sorted(glob.glob(f"{uv_data}/cpython-3.*/bin/python3"))
    # pyenv's shims are shell scripts that start the versions found above anyway, slowly.
    usable = (p for p in dict.fromkeys(found) if "/shims/" not in p and not _too_old(p))
    return [p for p in usable if os.path.isfile(p) and os.access(p, os.X_OK)]


def _too_old(path: str) -> bool:
    """Whether the path names a version older than any environment may use (``.../3.9.18/...``)."""
    match = re.search(r"(?:python|/|cpython-)3\.(\d+)", path)
    return match is not None and int(match.group(1)) < 11


@functools.cache
def probe(path: str) -> Interpreter | None:
    """What ``path`` says it is; None when it does not run as a Python 3."""
    try:
        done = subprocess.run(
            [path, "-I", "-c", _PROBE], capture_output=True, timeout=PROBE_TIMEOUT_S, check=True, text=True
        )
        version, executable = json.loads(done.stdout)
        major, minor, micro = (int(v) for v in version)
    except (OSError, subprocess.SubprocessError, ValueError, TypeError):
        return None
    return Interpreter((major, minor, micro), str(Path(executable).resolve()))


def available(configured: Iterable[str]) -> list[Interpreter]:
    """Every distinct interpreter found, the daemon's own always among them."""
    found = {daemon_interpreter()}
    found.update(i for p in candidate_paths(configured) if (i := probe(p)) is not None and i.version[0] == 3)
    return sorted(found, reverse=True)
