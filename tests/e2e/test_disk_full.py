"""A full disk: writes answer a clear 503, reads go on, and writes work again once space
returns, without a restart. The state directory is a real 20 MiB tmpfs, filled by a file."""

from __future__ import annotations

import errno
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from .conftest import Daemon, project_archive

pytestmark = pytest.mark.e2e
MiB = 1024 * 1024
FILES = {"api/hello.py": "async def automation(page, params, **kwargs):\n    return {'hello': params.get('name')}\n"}


@dataclass
class _SmallDiskDaemon(Daemon):
    """Its log stays off the small disk, so filling the disk loses none of it."""

    log_dir: Path = Path("/nonexistent")

    @property
    def log_path(self) -> Path:
        return self.log_dir / "daemon.log"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount_point = tmp_path / "state"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=20m", "tmpfs", str(mount_point)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN): {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "--lazy", str(mount_point)], check=True)


def _fill(path: Path) -> None:
    """Write zeros until the file system says ENOSPC."""
    chunk = b"\0" * MiB
    with open(path, "wb", buffering=0) as f:
        while True:
            try:
                f.write(chunk)  # unbuffered: a partial write returns, the next one fails
            except OSError as e:
                assert e.errno == errno.ENOSPC, e
                return


def _health_disk(client: httpx.Client, ready: Any, timeout: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        r = client.get("/health")
        assert r.status_code == 200, r.text
        disk = r.json().get("disk")
        if disk is not None and ready(disk):
            return dict(disk)
        assert time.monotonic() < deadline, f"/health disk never became as expected: {disk}"
        time.sleep(0.2)


def _assert_disk_full(r: httpx.Response) -> None:
    assert r.status_code == 503, r.text
    body = r.json()
    assert "disk" in body["message"] and "full" in body["message"]
    assert body["details"] == {"reason": "disk-full"}
    assert body["retirable"] is True


def test_a_full_disk_refuses_writes_serves_reads_and_recovers_by_itself(small_disk: Path, tmp_path: Path) -> None:
    daemon = _SmallDiskDaemon(
        small_disk,
        {"pool": {"size": 1}, "retention": {"disk_usage_interval_s": 0.5}},
        log_dir=tmp_path,
    )
    daemon.start()
    try:
        with daemon.client() as c:
            deploy = daemon.path("hello", "/deploy")
            assert c.post(deploy, content=project_archive(FILES)).status_code == 201, daemon.log_tail()
            before = _health_disk(c, lambda d: d["usedBytes"]["projects"] > 0)
            assert before["stateDir"] == str(small_disk)
            assert before["usedBytes"]["db"] > 0

            _fill(small_disk / "ballast")
            assert shutil.disk_usage(small_disk).free < MiB

            # Writes: a deploy (files) and a run whose parameters must grow the database.
            _assert_disk_full(c.post(deploy, content=project_archive(FILES)))
            big = {"api": "hello", "parameters": {"name": "x" * (4 * MiB)}}
            _assert_disk_full(c.post(daemon.path("hello", "/run/start"), json=big))

            # Reads keep working, and /health shows the disk as it is.
            runs = c.get(daemon.path("hello", "/runs"))
            assert runs.status_code == 200 and runs.json()["total"] == 0, runs.text
            assert c.get(f"/api/v1/workspace/{daemon.workspace}/projects").status_code == 200
            _health_disk(c, lambda d: d["freeBytes"] < MiB)

            (small_disk / "ballast").unlink()

            # No restart: the same process takes writes again.
            redeployed = c.post(deploy, content=project_archive(FILES))
            assert redeployed.status_code == 201, redeployed.text
            assert redeployed.json()["version"] == 2
            run_id = daemon.start_run("hello", {"api": "hello", "parameters": {"name": "back"}})
            result = daemon.wait_for("hello", run_id)
            assert (result["status"], result.get("result")) == ("completed", {"hello": "back"}), result
            _health_disk(c, lambda d: d["freeBytes"] > 10 * MiB)
        assert daemon.process is not None and daemon.process.poll() is None
    finally:
        daemon.stop()
    assert "Traceback" not in daemon.log_tail()
