"""Workers as a separate user: what an automation can and cannot reach on this host.

An automation is arbitrary code. Run as the daemon's own user it could open the daemon's database
(``../../../intunedd.db`` from its project folder) and read the URL-signing secret, other runs'
proxy passwords, sink headers and HMAC secrets. With ``pool.worker_user`` set, workers run as that
user instead, and the state directory is laid out so that user reaches only what a run needs:

    state_dir/                 0711 daemon        traverse only: nobody else may list it
      intunedd.db, -wal, -shm  0600 daemon        the secrets (the signing secret lives only here)
      projects/                0710 daemon:worker traverse only: a worker cannot list the projects
        <name>/                0710 daemon:worker
          <version>/ …         0750 / 0640        read-only: code is read, never written
      artifacts/               0710 daemon:worker traverse only: run ids are unguessable
        <run>/                 0710 daemon:worker
          <attempt>/           0770 daemon:worker the attempt's log, trace and video
      worker-home/             0770 daemon:worker $HOME for Chromium's caches and NSS database
      playwright-browsers/     0750 daemon:worker the ffmpeg link Playwright records video with

Why a shared group and not ``chown`` to the worker: the daemon must keep reading what the worker
writes (downloads), cutting the log and deleting old artifacts. A directory the daemon owns with the
worker's group and mode 0770 lets both sides create and remove files in it with no capability
beyond switching users, and the worker writes with umask 0007 so its files stay group-readable. The
daemon joins the worker's group (``SupplementaryGroups=`` in the unit) or is root. No set-group-ID
directories: ``RestrictSUIDSGID=`` forbids them, so the daemon sets each folder's group itself.

Switching users needs CAP_SETUID and CAP_SETGID, and signalling a worker of another uid CAP_KILL.
systemd grants a non-root ``User=`` these only as *ambient* capabilities, which every child would
inherit across ``execve`` and keep across the switch between two non-root uids: the worker could
then switch back to the daemon's user. So the daemon clears its ambient set before it starts any
thread (capabilities are per thread); it keeps them in its permitted and effective sets, which
``execve`` of an ordinary binary does not pass on. It also sets no_new_privs (as the unit's
``NoNewPrivileges=`` does), so no child gains privileges from a set-user-ID binary or file
capabilities either; switching users with a capability is not such a gain, so this does not get in
its own way. Before serving, a probe runs as the worker the way
workers run and the daemon refuses to start unless the probe holds no capability, cannot read the
database or list the state directory, and can reach the artifacts folder.

What the worker can still do is listed in README.md ("Running untrusted projects"): it shares the
kernel and the network with the daemon, reads every project's files whose path it knows, and all
workers share one uid, so concurrent attempts can see each other's processes and temporary files.

Files the worker wrote are untrusted: ``open_worker_file`` refuses symlinks, hard links and
anything but a regular file, so a log replaced by a link to the database is never served.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import grp
import json
import os
import pwd
import stat
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec

from ..config import Settings

WORKER_UMASK = 0o007
STATE_DIR_MODE = 0o711
SECRET_FILE_MODE = 0o600
TRAVERSE_DIR_MODE = 0o710
READ_DIR_MODE = 0o750
READ_FILE_MODE = 0o640
WRITE_DIR_MODE = 0o770
DB_SUFFIXES = ("", "-wal", "-shm")
PROBE_TIMEOUT_S = 30.0

# linux/capability.h
CAP_KILL, CAP_SETGID, CAP_SETUID = 5, 6, 7
REQUIRED_CAPABILITIES = {"CAP_SETUID": CAP_SETUID, "CAP_SETGID": CAP_SETGID, "CAP_KILL": CAP_KILL}
# linux/prctl.h
PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 47, 4
PR_SET_NO_NEW_PRIVS = 38

# What a worker keeps of the daemon's environment: the daemon's own may carry secrets (INTUNEDD_*
# overrides, cloud credentials for S3 sinks), and the worker needs only locale, paths and display.
_KEPT_VARIABLES = frozenset(
    {"PATH", "LANG", "LANGUAGE", "TZ", "DISPLAY", "WAYLAND_DISPLAY", "XAUTHORITY", "PYTHONUNBUFFERED"}
    | {"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "no_proxy", "all_proxy"}
)
_KEPT_PREFIXES = ("LC_", "PLAYWRIGHT_")


class SandboxError(Exception):
    """``pool.worker_user`` is set but cannot be used as configured."""


class WorkerUser(msgspec.Struct, frozen=True):
    name: str
    uid: int
    gid: int

    def popen_options(self) -> dict[str, Any]:
        """Arguments for ``open_process`` that start a process as this user. ``extra_groups=[]`` drops
        the daemon's supplementary groups; cwd ``/`` keeps a writable folder out of ``sys.path``."""
        return {"user": self.uid, "group": self.gid, "extra_groups": [], "umask": WORKER_UMASK, "cwd": "/"}


@functools.lru_cache(maxsize=4)
def _lookup(name: str) -> WorkerUser:
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise SandboxError(
            f"pool.worker_user {name!r} does not exist: create it (scripts/install does, as root) "
            'or set pool.worker_user = "" to run workers as the daemon\'s user'
        ) from None
    if entry.pw_uid == 0:
        raise SandboxError(f"pool.worker_user {name!r} is root, which would give automations the whole host")
    return WorkerUser(name=name, uid=entry.pw_uid, gid=entry.pw_gid)


def resolve(name: str) -> WorkerUser | None:
    """The configured worker user, or None for workers running as the daemon's own user."""
    return _lookup(name) if name else None


def worker_home(settings: Settings) -> Path:
    return settings.state_path / "worker-home"


def worker_environment(environ: Mapping[str, str], extra: Mapping[str, str]) -> dict[str, str]:
    """A sandboxed worker's environment: the harmless part of the daemon's, then ``extra``."""
    kept = {k: v for k, v in environ.items() if k in _KEPT_VARIABLES or k.startswith(_KEPT_PREFIXES)}
    return {**kept, **extra}


def spawn_options(user: WorkerUser | None, env: Mapping[str, str]) -> dict[str, Any]:
    """``open_process`` arguments for a worker: the daemon's environment plus ``env`` when it runs
    as the daemon's user, else only the harmless part of it, as ``user``."""
    if user is None:
        return {"env": {**os.environ, **env}}
    return {"env": worker_environment(os.environ, env), **user.popen_options()}


def prepare_worker_files(settings: Settings, user: WorkerUser) -> dict[str, str]:
    """Share what ``browser.prepare_ffmpeg`` made with the worker; returns the workers' extra
    environment: Chromium keeps caches and its NSS database under HOME, and the daemon's is not theirs."""
    browsers = settings.state_path / "playwright-browsers"
    if browsers.is_dir():
        _readable_tree(browsers, user.gid)
    return {"HOME": str(worker_home(settings))}


def missing_capabilities(effective: int) -> list[str]:
    """Which of the capabilities the daemon needs are absent from ``effective`` (a CapEff mask)."""
    return [name for name, bit in REQUIRED_CAPABILITIES.items() if not effective >> bit & 1]


def effective_capabilities() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapEff:"):
            return int(line.split()[1], 16)
    return 0


def _prctl(option: int, argument: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    zero = ctypes.c_ulong(0)
    if libc.prctl(option, ctypes.c_ulong(argument), zero, zero, zero) != 0:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))


def restrict_inheritance() -> None:
    """Pass no capability on to exec'd children, and let none of them gain one (set-user-ID binaries,
    file capabilities). Both are per thread and inherited: call before any thread starts."""
    try:
        _prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)
        _prctl(PR_SET_NO_NEW_PRIVS, 1)
    except OSError as e:
        raise SandboxError(f"cannot restrict what the daemon's children inherit: {e.strerror}") from e


def _check_privileges(user: WorkerUser) -> None:
    missing = missing_capabilities(effective_capabilities())
    if missing:
        raise SandboxError(
            f"pool.worker_user is {user.name!r} but the daemon lacks {', '.join(missing)}: run it as root, or "
            "grant them (AmbientCapabilities= and CapabilityBoundingSet= in systemd/intunedd.service)"
        )
    if os.geteuid() != 0 and user.gid not in (os.getegid(), *os.getgroups()):
        group = grp.getgrgid(user.gid).gr_name
        raise SandboxError(
            f"the daemon is not in group {group!r} of pool.worker_user {user.name!r}, so it could not read what "
            f"workers write: add it (SupplementaryGroups={group} in systemd/intunedd.service)"
        )


def _set(path: Path, gid: int, mode: int) -> None:
    os.chown(path, -1, gid, follow_symlinks=False)
    os.chmod(path, mode)


def _shared_dir(path: Path, gid: int, mode: int) -> None:
    path.mkdir(parents=True, exist_ok=True)
    _set(path, gid, mode)


def _readable_tree(root: Path, gid: int) -> None:
    """Every folder and file under ``root`` readable (never writable) by the group."""
    _set(root, gid, READ_DIR_MODE)
    for folder, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            path = Path(folder, name)
            mode = path.lstat().st_mode
            if stat.S_ISDIR(mode) or stat.S_ISREG(mode):  # never chmod through a symlink
                _set(path, gid, READ_DIR_MODE if stat.S_ISDIR(mode) or mode & stat.S_IXUSR else READ_FILE_MODE)


def share_project(directory: Path, worker_user: str) -> None:
    """Let the worker read a deployed project version (and reach it, without listing its siblings)."""
    user = resolve(worker_user)
    if user is not None:
        _share(directory, user)


def _share(directory: Path, user: WorkerUser) -> None:
    _set(directory.parent, user.gid, TRAVERSE_DIR_MODE)
    _readable_tree(directory, user.gid)


def prepare_attempt_directory(directory: Path, worker_user: str) -> None:
    """Create ``artifacts/<run>/<attempt>`` for the worker to write its log, trace and video into."""
    user = resolve(worker_user)
    if user is None:
        return
    _shared_dir(directory.parent, user.gid, TRAVERSE_DIR_MODE)
    _shared_dir(directory, user.gid, WRITE_DIR_MODE)


def _lay_out(settings: Settings, user: WorkerUser) -> None:
    state = settings.state_path
    state.mkdir(parents=True, exist_ok=True)
    os.chmod(state, STATE_DIR_MODE)
    # SQLite gives -wal and -shm the mode of the database file, so creating it 0600 covers them.
    fd = os.open(settings.db_path, os.O_CREAT | os.O_RDONLY | os.O_NOFOLLOW, SECRET_FILE_MODE)
    os.close(fd)
    for suffix in DB_SUFFIXES:
        path = settings.db_path.with_name(settings.db_path.name + suffix)
        if path.exists():
            os.chmod(path, SECRET_FILE_MODE)
    _shared_dir(settings.artifacts_path, user.gid, TRAVERSE_DIR_MODE)
    _shared_dir(worker_home(settings), user.gid, WRITE_DIR_MODE)
    _shared_dir(settings.projects_path, user.gid, TRAVERSE_DIR_MODE)
    for project in settings.projects_path.iterdir():
        if project.is_dir() and not project.is_symlink():
            for version in project.iterdir():
                if version.is_dir() and not version.is_symlink():
                    _share(version, user)


# Run as the worker, isolated from the environment (-I): prints what the sandbox fails to hold.
_PROBE = """
import json, os, sys
state, db, artifacts = sys.argv[1:4]
problems = []
status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines() if ":" in line)
for field in ("CapPrm", "CapEff", "CapAmb"):
    if int(status[field], 16):
        problems.append(f"it holds capabilities ({field} {status[field].strip()})")
try:
    open(db, "rb").close()
    problems.append(f"it can read {db}")
except PermissionError:
    pass
try:
    os.listdir(state)
    problems.append(f"it can list {state}")
except PermissionError:
    pass
try:
    os.stat(artifacts)
except OSError as e:
    problems.append(f"it cannot reach {artifacts} ({e.strerror}): every folder above it needs o+x")
print(json.dumps({"uid": os.getuid(), "problems": problems}))
"""


def _probe(settings: Settings, user: WorkerUser) -> None:
    command = [sys.executable, "-I", "-c", _PROBE, str(settings.state_path), str(settings.db_path)]
    try:
        done = subprocess.run(
            [*command, str(settings.artifacts_path)],
            capture_output=True,
            timeout=PROBE_TIMEOUT_S,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
            **user.popen_options(),
        )
        report = json.loads(done.stdout)
    except (OSError, subprocess.SubprocessError, ValueError) as e:
        raise SandboxError(f"cannot run {sys.executable} as pool.worker_user {user.name!r}: {e}") from e
    problems = list(report["problems"])
    if report["uid"] != user.uid:
        problems.append(f"it ran as uid {report['uid']}")
    if problems:
        raise SandboxError(f"pool.worker_user {user.name!r} would not be confined: " + "; ".join(problems))


def confine(settings: Settings) -> WorkerUser | None:
    """Check ``pool.worker_user`` can be used and lay out the state directory for it; raises
    SandboxError naming the problem. Blocking, and to be called before the daemon starts threads."""
    user = resolve(settings.pool.worker_user)
    if user is None:
        return None
    restrict_inheritance()
    _check_privileges(user)
    try:
        _lay_out(settings, user)
    except OSError as e:
        raise SandboxError(f"cannot prepare {settings.state_path} for pool.worker_user {user.name!r}: {e}") from e
    _probe(settings, user)
    return user


def open_worker_file(path: str, *, writable: bool = False) -> int:
    """A descriptor on a file a worker wrote (read-only unless ``writable``), or OSError. The worker
    may have replaced it: a symlink (to the database, say) or a FIFO is refused, and so is a hard
    link, which could name a file the worker itself cannot read."""
    fd = os.open(path, (os.O_RDWR if writable else os.O_RDONLY) | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    status = os.fstat(fd)
    if not stat.S_ISREG(status.st_mode) or status.st_nlink != 1:
        os.close(fd)
        raise OSError(errno.EPERM, "not a plain file with one name", path)
    return fd
