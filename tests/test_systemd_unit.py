"""systemd/intunedd.service: the sandboxing and resource limits it promises, and that systemd accepts it."""

from __future__ import annotations

import configparser
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
UNIT = ROOT / "systemd" / "intunedd.service"
WORKER_USER = "intunedd-worker"
DAEMON_CAPABILITIES = {"CAP_SETUID", "CAP_SETGID", "CAP_KILL"}
HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ReadWritePaths": "/var/lib/intunedd",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "LockPersonality": "yes",
    "RestrictRealtime": "yes",
    "RestrictSUIDSGID": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectKernelLogs": "yes",
    "ProtectControlGroups": "yes",
    "SystemCallArchitectures": "native",
    "UMask": "0077",
    "StateDirectoryMode": "0711",
    "SupplementaryGroups": WORKER_USER,
}


class _Repeatable(dict[str, Any]):
    """Options systemd allows more than once (Environment=) keep every value, one per line."""

    def __setitem__(self, key: str, value: Any) -> None:
        if isinstance(value, list) and isinstance(self.get(key), list):
            value = self[key] + value
        super().__setitem__(key, value)


def _service() -> configparser.SectionProxy:
    parser = configparser.ConfigParser(strict=False, interpolation=None, dict_type=_Repeatable, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment, method-assign]
    parser.read_string(UNIT.read_text())
    return parser["Service"]


def test_hardening_options_are_set() -> None:
    service = _service()
    assert {key: service.get(key) for key in HARDENING} == HARDENING
    assert set(service["RestrictAddressFamilies"].split()) == {"AF_UNIX", "AF_INET", "AF_INET6", "AF_NETLINK"}
    # Would hide the workers (another uid) from the daemon that measures and reaps them.
    assert "ProtectProc" not in service


def test_resource_limits_are_set() -> None:
    service = _service()
    assert int(service["TasksMax"]) >= 200
    assert service["MemoryMax"].endswith("G")


def test_workers_run_as_their_own_user_with_only_the_capabilities_to_switch_and_signal() -> None:
    service = _service()
    assert f"INTUNEDD_POOL_WORKER_USER={WORKER_USER}" in service["Environment"].splitlines()
    assert set(service["AmbientCapabilities"].split()) == DAEMON_CAPABILITIES
    assert set(service["CapabilityBoundingSet"].split()) == DAEMON_CAPABILITIES
    assert service["User"] != WORKER_USER


def test_install_script_creates_the_worker_user() -> None:
    script = (ROOT / "scripts" / "install").read_text()
    assert f"WORKER_USER={WORKER_USER}" in script
    assert "useradd --system" in script


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    # verify also checks that ExecStart= exists; point it at a binary that does.
    copy = tmp_path / UNIT.name
    copy.write_text(UNIT.read_text().replace("/opt/intunedd/.venv/bin/intunedd", shutil.which("true") or "/bin/true"))
    done = subprocess.run(["systemd-analyze", "verify", str(copy)], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout + done.stderr) == (0, "")
