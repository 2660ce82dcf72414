"""The worker sandbox: who may read what in the state directory, the environment a worker gets,
and the daemon refusing to start when ``pool.worker_user`` cannot be used."""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from intunedd.config import PoolSettings, Settings
from intunedd.harness import INTUNEDD
from intunedd.workers import sandbox
from intunedd.workers.sandbox import SandboxError, WorkerUser

WORKER_USER = "intunedd-worker"
DAEMON_USER = "intunedd"
NO_SUCH_USER = "intunedd-no-such-user"


def _settings(state: Path, worker_user: str) -> Settings:
    return Settings(state_dir=str(state), pool=PoolSettings(worker_user=worker_user))


def test_worker_environment_keeps_only_harmless_variables() -> None:
    daemon_env = {
        "PATH": "/usr/bin",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PLAYWRIGHT_BROWSERS_PATH": "/x",
        "AWS_SECRET_ACCESS_KEY": "secret",
        "INTUNEDD_SINKS_SIGNING_SECRET": "secret",
        "HOME": "/var/lib/intunedd",
        "STATE_DIRECTORY": "/var/lib/intunedd",
    }
    env = sandbox.worker_environment(daemon_env, {"HOME": "/w"})
    assert env == {"PATH": "/usr/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "PLAYWRIGHT_BROWSERS_PATH": "/x",
                   "HOME": "/w"}  # fmt: skip


def test_spawn_options_as_the_daemons_user_keep_its_environment() -> None:
    options = sandbox.spawn_options(None, {"X": "1"})
    assert options == {"env": {**os.environ, "X": "1"}}
    user = WorkerUser(name="w", uid=1234, gid=1235)
    options = sandbox.spawn_options(user, {"X": "1"})
    assert (options["user"], options["group"], options["extra_groups"], options["cwd"]) == (1234, 1235, [], "/")
    assert options["env"]["X"] == "1"


@given(st.integers(min_value=0, max_value=2**41 - 1))
def test_missing_capabilities_names_each_absent_one(mask: int) -> None:
    missing = sandbox.missing_capabilities(mask)
    for name, bit in sandbox.REQUIRED_CAPABILITIES.items():
        assert (name in missing) == (not mask & (1 << bit))


def test_unknown_worker_user_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SandboxError, match=f"{NO_SUCH_USER}.*does not exist"):
        sandbox.confine(_settings(tmp_path, NO_SUCH_USER))


def test_root_as_worker_user_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SandboxError, match="is root"):
        sandbox.confine(_settings(tmp_path, "root"))


def test_no_worker_user_changes_nothing(tmp_path: Path) -> None:
    assert sandbox.confine(_settings(tmp_path, "")) is None
    sandbox.prepare_attempt_directory(tmp_path / "artifacts" / "r" / "1", "")
    assert not (tmp_path / "artifacts").exists()


def test_daemon_refuses_to_start_with_an_unknown_worker_user(tmp_path: Path) -> None:
    config = tmp_path / "intunedd.toml"
    config.write_text(f'state_dir = "{tmp_path}"\n[pool]\nworker_user = "{NO_SUCH_USER}"\n')
    done = subprocess.run([*INTUNEDD, "serve", "--config", str(config)], capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert f"pool.worker_user {NO_SUCH_USER!r} does not exist" in done.stderr


def test_open_worker_file_refuses_what_is_not_a_plain_file(tmp_path: Path) -> None:
    secret = tmp_path / "intunedd.db"
    secret.write_bytes(b"SQLite format 3")
    plain = tmp_path / "log.jsonl"
    plain.write_text("{}\n")
    fd = sandbox.open_worker_file(str(plain))
    assert os.read(fd, 10) == b"{}\n"
    os.close(fd)
    (tmp_path / "symlink").symlink_to(secret)
    os.link(secret, tmp_path / "hardlink")
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "folder").mkdir()
    for name in ("symlink", "hardlink", "fifo", "folder", "missing"):
        with pytest.raises(OSError):
            sandbox.open_worker_file(str(tmp_path / name))


# --- as root, with a real worker user -------------------------------------------------------------


@pytest.fixture
def worker() -> WorkerUser:
    if os.geteuid() != 0:
        pytest.skip("switching users needs root (CI runs the tests as root)")
    try:
        entry = pwd.getpwnam(WORKER_USER)
    except KeyError:
        pytest.skip(f"no user {WORKER_USER}: scripts/install creates it when run as root")
    user = WorkerUser(name=WORKER_USER, uid=entry.pw_uid, gid=entry.pw_gid)
    try:
        runs = subprocess.run([sys.executable, "-c", ""], timeout=60, **user.popen_options()).returncode == 0
    except PermissionError:
        runs = False
    if not runs:
        pytest.skip(f"{WORKER_USER} cannot run {sys.executable} (a folder above it is private, e.g. /root)")
    return user


@pytest.fixture
def state(tmp_path: Path) -> Path:
    """A state directory the worker can reach: pytest keeps its temporary folders 0700."""
    for folder in (tmp_path, *tmp_path.parents):
        if folder.is_relative_to("/tmp") and folder != Path("/tmp"):
            folder.chmod(folder.stat().st_mode | 0o001)
    return tmp_path / "state"


def _in_worker_group(name: str, worker: WorkerUser) -> bool:
    try:
        return name in grp.getgrgid(worker.gid).gr_mem
    except KeyError:
        return False


def _as_worker(user: WorkerUser, code: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-I", "-c", code, *args], capture_output=True, text=True, timeout=60, **user.popen_options()
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


TRY = """
import os, sys
try:
    {action}
    print("allowed")
except OSError as e:
    print(type(e).__name__)
"""


# In a child process: confining sets no_new_privs, for good, on the process that does it.
CONFINE = """
import sys
from intunedd.config import PoolSettings, Settings
from intunedd.workers import sandbox
if sys.argv[2] == "keep-ambient":  # what the daemon did before it cleared its ambient capabilities
    sandbox._prctl = lambda option, argument: None
try:
    sandbox.confine(Settings(state_dir=sys.argv[1], pool=PoolSettings(worker_user="intunedd-worker")))
    print("confined")
except sandbox.SandboxError as e:
    print(f"refused: {e}")
"""


def _confine(state: Path, *, prefix: tuple[str, ...] = (), mode: str = "") -> str:
    done = subprocess.run(
        [*prefix, sys.executable, "-c", CONFINE, str(state), mode], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_state_directory_the_worker_cannot_reach_is_refused(worker: WorkerUser, tmp_path: Path) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    assert "cannot reach" in _confine(private / "state")


def test_workers_inherit_no_capability_from_a_non_root_daemon(worker: WorkerUser, state: Path) -> None:
    """The daemon as systemd runs it: its own user, CAP_SETUID, CAP_SETGID and CAP_KILL as ambient
    capabilities. Left in the ambient set they would pass to every worker, which could then switch
    to the daemon's user and read the database."""
    if shutil.which("setpriv") is None or not _in_worker_group(DAEMON_USER, worker):
        pytest.skip(f"needs setpriv and a user {DAEMON_USER} in group {WORKER_USER} (scripts/install as root)")
    state.mkdir()
    shutil.chown(state, DAEMON_USER, DAEMON_USER)
    as_daemon = ("setpriv", f"--reuid={DAEMON_USER}", f"--regid={DAEMON_USER}", "--init-groups",
                 "--inh-caps=+setuid,+setgid,+kill", "--ambient-caps=+setuid,+setgid,+kill", "--")  # fmt: skip
    assert "holds capabilities" in _confine(state, prefix=as_daemon, mode="keep-ambient")
    assert _confine(state, prefix=as_daemon) == "confined"


def test_confined_worker_reads_projects_writes_its_attempt_and_never_the_database(
    worker: WorkerUser, state: Path
) -> None:
    settings = _settings(state, WORKER_USER)
    assert _confine(state) == "confined"
    assert stat.S_IMODE(state.stat().st_mode) == 0o711
    assert stat.S_IMODE(settings.db_path.stat().st_mode) == 0o600
    for folder in (settings.projects_path, settings.artifacts_path):
        assert (stat.S_IMODE(folder.stat().st_mode), folder.stat().st_gid) == (0o710, worker.gid)

    version = settings.projects_path / "demo" / "1"
    (version / "api").mkdir(parents=True, mode=0o700)
    (version / "api" / "a.py").write_text("X = 1\n")
    (version / "api" / "a.py").chmod(0o600)
    sandbox.share_project(version, WORKER_USER)
    attempt = settings.artifacts_path / "run" / "1"
    sandbox.prepare_attempt_directory(attempt, WORKER_USER)

    read = TRY.format(action="open(sys.argv[1], 'rb').close()")
    assert _as_worker(worker, read, str(version / "api" / "a.py")) == "allowed"
    assert _as_worker(worker, read, str(settings.db_path)) == "PermissionError"
    write = TRY.format(action="open(sys.argv[1], 'w').write('x')")
    assert _as_worker(worker, write, str(attempt / "log.jsonl")) == "allowed"
    assert _as_worker(worker, write, str(attempt.parent / "2")) == "PermissionError"
    listing = TRY.format(action="os.listdir(sys.argv[1])")
    for private in (state, settings.projects_path, settings.artifacts_path):
        assert _as_worker(worker, listing, str(private)) == "PermissionError"
    assert (attempt / "log.jsonl").read_text() == "x"  # the daemon reads what the worker wrote
