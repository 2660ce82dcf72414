"""prepare_project on real tar.gz archives: a deploy either succeeds whole or is a ProjectError
naming the problem, within the [deploy] limits, and leaves no folder behind when it fails."""

from __future__ import annotations

import gzip
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from intunedd.config import DeploySettings
from intunedd.projects import DEFAULT_LIMITS, PreparedProject, ProjectError, prepare_project, remove_partial_deploys
from intunedd.unpack import unpack

from .hostile_archives import (
    ECHO,
    Member,
    MiB,
    archive,
    gz,
    hostile_cases,
    member,
    project,
    settings_json,
    tar_bytes,
    zeros_bomb,
)

HEAVY = {"zeros bomb", "100,000 members"}  # at the default limits; the e2e test sends these
TIME_BOUND_S = 5.0


def limits(**changes: int) -> DeploySettings:
    return msgspec.structs.replace(DEFAULT_LIMITS, **changes)


def prepare(tmp: Path, data: bytes, deploy_limits: DeploySettings = DEFAULT_LIMITS) -> PreparedProject:
    return prepare_project(data, tmp / "projects" / "p" / "1", deploy_limits)


def refused(tmp: Path, data: bytes, deploy_limits: DeploySettings = DEFAULT_LIMITS) -> str:
    """The ProjectError's message; also checks the failed deploy left nothing behind."""
    with pytest.raises(ProjectError) as caught:
        prepare(tmp, data, deploy_limits)
    assert list((tmp / "projects" / "p").iterdir()) == []
    return str(caught.value)


def test_a_valid_project_is_unpacked_and_read(tmp_path: Path) -> None:
    settings = b'{\n  // comments and trailing commas\n  "replication": {"maxConcurrentRequests": 3,},\n}'
    job = settings_json({"payload": [{"apiName": "echo", "parameters": {"a": [[[1]]]}}], "configuration": {}})
    files = {"api/sub/list.py": ECHO, "intuned-resources/jobs/nightly.job.json": job}
    prepared = prepare(tmp_path, project(settings, "Intuned.jsonc", files))
    assert prepared.apis == ["echo", "sub/list"]
    assert prepared.settings.replication.max_concurrent_requests == 3
    assert list(prepared.code_jobs) == ["nightly"]
    assert (tmp_path / "projects" / "p" / "1" / "api" / "echo.py").read_bytes() == ECHO
    assert [p.name for p in (tmp_path / "projects" / "p").iterdir()] == ["1"]  # the staging folder is gone


def test_a_stale_folder_of_the_same_version_is_replaced(tmp_path: Path) -> None:
    stale = tmp_path / "projects" / "p" / "1"
    (stale / "api").mkdir(parents=True)
    (stale / "api" / "old.py").write_bytes(ECHO)
    assert prepare(tmp_path, project()).apis == ["echo"]
    assert not (stale / "api" / "old.py").exists()


def test_staging_folders_a_killed_deploy_left_are_removed_and_versions_kept(tmp_path: Path) -> None:
    root = tmp_path / "projects"
    prepare(tmp_path, project())
    left = root / "p" / ".2.x1y2z3.partial"
    (left / "api").mkdir(parents=True)
    (left / "api" / "half.py").write_bytes(ECHO)
    assert remove_partial_deploys(root) == [left]
    assert [p.name for p in (root / "p").iterdir()] == ["1"]


@pytest.mark.parametrize(
    ("name", "build", "phrase"), [case for case in hostile_cases() if case[0] not in HEAVY], ids=lambda v: v
)  # fmt: skip
def test_each_hostile_archive_is_a_project_error(
    tmp_path: Path, name: str, build: Callable[[], bytes], phrase: str
) -> None:
    started = time.monotonic()
    assert phrase in refused(tmp_path, build())
    assert time.monotonic() - started < TIME_BOUND_S


def test_the_gzip_crc_is_checked_even_after_tar_ends(tmp_path: Path) -> None:
    valid = archive({"api/echo.py": ECHO}, level=0)
    crc_at = len(valid) - 8  # the gzip trailer: CRC32 then length
    damaged = valid[:crc_at] + bytes([valid[crc_at] ^ 0xFF]) + valid[crc_at + 1 :]
    assert "corrupt" in refused(tmp_path, damaged)


def test_the_unpacked_total_is_counted_on_written_bytes(tmp_path: Path) -> None:
    message = refused(tmp_path, zeros_bomb(4, MiB), limits(max_unpacked_bytes=3 * MiB))
    assert "deploy.max_unpacked_bytes" in message
    assert prepare(tmp_path, zeros_bomb(2, MiB), limits(max_unpacked_bytes=3 * MiB)).apis == ["echo"]


def test_one_file_over_the_file_limit(tmp_path: Path) -> None:
    assert "deploy.max_file_bytes" in refused(tmp_path, zeros_bomb(1, 2 * MiB), limits(max_file_bytes=MiB))


def test_members_over_the_member_limit(tmp_path: Path) -> None:
    files = {"api/echo.py": ECHO, **{f"f/{i}": b"" for i in range(50)}}
    assert "deploy.max_members" in refused(tmp_path, archive(files), limits(max_members=50))
    assert prepare(tmp_path, archive(files), limits(max_members=52)).apis == ["echo"]  # 51 files and f/ implied


def test_settings_and_job_files_over_the_size_limit(tmp_path: Path) -> None:
    big = settings_json({"padding": "x" * 2000})
    assert "deploy.max_settings_bytes" in refused(tmp_path, project(big), limits(max_settings_bytes=1000))
    job = project(None, extra={"intuned-resources/jobs/j.job.jsonc": big})
    assert "intuned-resources/jobs/j.job.jsonc" in refused(tmp_path, job, limits(max_settings_bytes=1000))


def test_json_nesting_limit_applies_to_settings_and_jobs(tmp_path: Path) -> None:
    deep = b'{"defaults": {"x": ' + b"[" * 20 + b"]" * 20 + b"}}"
    assert "deploy.max_json_depth" in refused(tmp_path, project(deep), limits(max_json_depth=10))
    job = project(None, extra={"intuned-resources/jobs/j.job.json": b'{"payload": ' + b"[" * 100_000})
    assert "intuned-resources/jobs/j.job.json" in refused(tmp_path, job)
    assert prepare(tmp_path, project(deep), limits(max_json_depth=30)).apis == ["echo"]


def test_a_job_file_that_is_not_utf8(tmp_path: Path) -> None:
    job = project(None, extra={"intuned-resources/jobs/j.job.json": b'{"payload": "\xc3\x28"}'})
    assert "not UTF-8" in refused(tmp_path, job)


def test_a_default_sink_in_the_deployed_form_is_checked_too(tmp_path: Path) -> None:
    bad = settings_json({"defaults": {"sink": {"deployed": {"type": "s3", "bucket": "b"}}}})
    assert "defaults.sink" in refused(tmp_path, project(bad))
    good = settings_json({"defaults": {"sink": {"type": "webhook", "url": "https://example.com/hook"}}})
    assert prepare(tmp_path, project(good)).settings.default_sink == {
        "type": "webhook",
        "url": "https://example.com/hook",
    }


@pytest.mark.parametrize(
    ("members", "phrase"),
    [
        ([member("api/echo.py", ECHO), member("h", kind=tarfile.LNKTYPE, link="api/echo.py")], "'h' is a link"),
        ([member("api/echo.py", ECHO), member("api/in", kind=tarfile.SYMTYPE, link="echo.py")], "'api/in' is a link"),
        ([member("api/echo.py", ECHO), member("dev", kind=tarfile.CHRTYPE)], "'dev' is a link or special file"),
        ([member("api/echo.py", ECHO), member("fifo", kind=tarfile.FIFOTYPE)], "'fifo' is a link or special file"),
        ([member("api/echo.py", ECHO), member("api/echo.py/x", ECHO)], "could not be unpacked at 'api/echo.py/x'"),
        ([member("api/a/../../../x.py", ECHO)], "contains '..'"),
        ([member("api/\udcff.py", ECHO)], "must be UTF-8"),
        ([member("./", kind=tarfile.DIRTYPE), member(".", ECHO)], "has no name"),
    ],
)
def test_only_plain_files_and_folders_inside_the_project(tmp_path: Path, members: list[Member], phrase: str) -> None:
    assert phrase in refused(tmp_path, gz(tar_bytes(members, tarfile.GNU_FORMAT)))


def test_names_with_dot_components_stay_inside(tmp_path: Path) -> None:
    members = [member("./", kind=tarfile.DIRTYPE), member("./api/echo.py", ECHO), member("api/./x/y.py", ECHO)]
    assert prepare(tmp_path, gz(tar_bytes(members))).apis == ["echo", "x/y"]


def test_error_messages_do_not_show_daemon_paths(tmp_path: Path) -> None:
    message = refused(tmp_path, gz(tar_bytes([member("api/echo.py", ECHO), member("api/echo.py/x", ECHO)])))
    assert str(tmp_path) not in message


def test_unpack_counts_header_overhead(tmp_path: Path) -> None:
    """A PAX record is read into memory whole by tarfile: its size counts against the budget."""
    info = tarfile.TarInfo("api/echo.py")
    info.size = len(ECHO)
    info.pax_headers = {"comment": "x" * (3 * MiB)}
    data = gz(tar_bytes([(info, ECHO)]))
    with pytest.raises(ValueError, match="tar headers and padding"):
        unpack(data, tmp_path, DEFAULT_LIMITS)


# -- properties ------------------------------------------------------------------------------

VALID = project(
    b'{"apiAccess": {"enabled": true}, /* c */ "defaults": {"x": [1, 2,]}}',
    "Intuned.jsonc",
    extra={"intuned-resources/jobs/a.job.json": settings_json({"payload": [{"apiName": "echo"}], "configuration": {}})},
)
PROPERTY_SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


def outcome(data: bytes, deploy_limits: DeploySettings = DEFAULT_LIMITS) -> PreparedProject | ProjectError:
    """Success or a ProjectError, quickly, and never a leftover folder; anything else fails the test."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        started = time.monotonic()
        try:
            result: PreparedProject | ProjectError = prepare(root, data, deploy_limits)
            left = {p.name for p in (root / "projects" / "p").iterdir()}
            assert left == {"1"}, left
        except ProjectError as e:
            result = e
            assert list((root / "projects" / "p").iterdir()) == []
        assert time.monotonic() - started < TIME_BOUND_S
        return result


@PROPERTY_SETTINGS
@given(st.binary(max_size=4096))
def test_random_bytes(data: bytes) -> None:
    assert isinstance(outcome(data), ProjectError)  # not even gzip magic, or gzip garbage


@PROPERTY_SETTINGS
@given(st.binary(max_size=4096))
def test_random_bytes_after_a_gzip_header(data: bytes) -> None:
    outcome(gz(b"")[:10] + data)


@PROPERTY_SETTINGS
@given(st.integers(0, len(VALID) - 1))
def test_truncations_of_a_valid_archive(length: int) -> None:
    assert isinstance(outcome(VALID[:length]), ProjectError)


@PROPERTY_SETTINGS
@given(st.lists(st.tuples(st.integers(0, len(VALID) - 1), st.integers(0, 7)), min_size=1, max_size=4))
def test_bit_flips_of_a_valid_archive(flips: list[tuple[int, int]]) -> None:
    damaged = bytearray(VALID)
    for at, bit in flips:
        damaged[at] ^= 1 << bit
    if not isinstance(outcome(bytes(damaged)), ProjectError):
        # Accepted only when the flips changed nothing gzip protects (its header's mtime and OS
        # bytes, the padding bits after the last deflate block): the tar is then the same.
        assert gzip.decompress(bytes(damaged)) == gzip.decompress(VALID)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=40,
)


@PROPERTY_SETTINGS
@given(JSON, st.integers(0, 300))
def test_random_settings_files(value: object, depth: int) -> None:
    nested = b"[" * depth + settings_json(value) + b"]" * depth
    result = outcome(project(nested, "Intuned.jsonc"), limits(max_json_depth=64))
    if not isinstance(result, ProjectError):
        assert depth <= 64


@PROPERTY_SETTINGS
@given(st.binary(max_size=2048))
def test_random_settings_bytes(text: bytes) -> None:
    outcome(project(text, "Intuned.jsonc", extra={"intuned-resources/jobs/j.job.jsonc": text}))
