"""The builder with the real uv against the host's package index (CI may reach the registries)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from intunedd.config import EnvironmentSettings
from intunedd.environments.builder import INPUTS, META_FILE, PARTIAL_SUFFIX, Builder, BuildError, python_of
from intunedd.environments.index import from_pip
from intunedd.environments.interpreters import daemon_interpreter
from intunedd.environments.plan import Plan
from intunedd.environments.sweep import MIN_UNUSED_S, sweep


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    # One root, and so one uv cache, for the module: only the first build downloads anything.
    yield tmp_path_factory.mktemp("environments")


def _builder(root: Path, **settings: object) -> Builder:
    return Builder(root, EnvironmentSettings(**settings), from_pip())  # type: ignore[arg-type]


def _plan(*requirements: str) -> Plan:
    return Plan("intunedd", daemon_interpreter(), ("msgspec", *requirements))


class Steps:
    def __init__(self) -> None:
        self.seen: list[str] = []

    async def __call__(self, step: str) -> None:
        self.seen.append(step)


async def test_a_built_environment_runs_intunedds_worker_code_and_the_projects_packages(root: Path) -> None:
    steps = Steps()
    built = await _builder(root).ensure(_plan("six"), steps)
    assert not built.reused and steps.seen == ["resolving", "installing"]
    python = python_of(root / built.environment.key)
    code = "import six, msgspec, intunedd.workers.protocol, sys; print(sys.prefix)"
    done = await trio.run_process([str(python), "-c", code], capture_stdout=True)
    assert done.stdout.decode().strip() == str(root / built.environment.key)


async def test_the_same_declaration_again_is_reused_without_resolving(root: Path) -> None:
    first = await _builder(root).ensure(_plan("six"), Steps())
    steps = Steps()
    again = await _builder(root).ensure(_plan("six"), steps)
    assert (again.reused, again.environment, steps.seen) == (True, first.environment, [])


async def test_declarations_that_resolve_the_same_share_one_environment(root: Path) -> None:
    first = await _builder(root).ensure(_plan("six"), Steps())
    steps = Steps()
    other = await _builder(root).ensure(_plan("six>=1.0"), steps)
    assert (other.reused, other.environment.key, steps.seen) == (True, first.environment.key, ["resolving"])


async def test_a_package_that_does_not_exist_is_refused_with_uvs_explanation_and_leaves_nothing(root: Path) -> None:
    before = sorted(p.name for p in root.iterdir())
    with pytest.raises(BuildError, match="intunedd-no-such-package-zq"):
        await _builder(root).ensure(_plan("intunedd-no-such-package-zq>=1"), Steps())
    assert sorted(p.name for p in root.iterdir() if not p.name.startswith(".")) == [
        n for n in before if not n.startswith(".")
    ]
    assert not list(root.glob(f"*{PARTIAL_SUFFIX}"))


async def test_an_environment_over_the_size_limit_is_refused_and_removed(root: Path) -> None:
    with pytest.raises(BuildError, match="max_environment_mb"):
        await _builder(root, max_environment_mb=1).ensure(_plan("pydantic"), Steps())
    assert not list(root.glob(f"*{PARTIAL_SUFFIX}"))


def test_the_sweep_keeps_used_environments_and_removes_unused_ones_once_old_enough(root: Path) -> None:
    keys = [p.name for p in root.iterdir() if (p / META_FILE).is_file()]
    assert keys, "the tests above built at least one environment"
    now = (root / keys[0] / META_FILE).stat().st_mtime
    assert sweep(root, set(keys), keep_unused_s=0, build_timeout_s=1, now=now + 10 * MIN_UNUSED_S) == []
    assert sweep(root, set(), keep_unused_s=0, build_timeout_s=1, now=now + MIN_UNUSED_S / 2) == []
    removed = sweep(root, set(keys[1:]), keep_unused_s=0, build_timeout_s=1, now=now + 20 * MIN_UNUSED_S)
    assert removed == [keys[0]] and not (root / keys[0]).exists()
    assert all((root / link.read_text() / META_FILE).is_file() for link in (root / INPUTS).iterdir())


def test_uv_is_the_one_installed_with_intunedd() -> None:
    import uv

    assert os.access(uv.find_uv_bin(), os.X_OK)
    assert subprocess.run([uv.find_uv_bin(), "--version"], capture_output=True, check=True).stdout.startswith(b"uv ")
