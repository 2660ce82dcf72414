from __future__ import annotations

import pytest

from intunedd.config import DeploySettings
from intunedd.policy.archive_budget import HEADER_ALLOWANCE, SLACK, ArchiveBudget, ArchiveError, shown

LIMITS = DeploySettings(max_unpacked_bytes=1000, max_members=3, max_file_bytes=600)


def test_members_past_the_limit() -> None:
    budget = ArchiveBudget(LIMITS)
    for name in "abc":
        budget.add_member(name, 0)
    with pytest.raises(ArchiveError, match="more than 3 files and folders .deploy.max_members"):
        budget.add_member("d", 0)


def test_a_declared_size_past_the_file_limit_is_refused_before_any_byte() -> None:
    with pytest.raises(ArchiveError, match="'big' is larger than 600 bytes .deploy.max_file_bytes"):
        ArchiveBudget(LIMITS).add_member("big", 601)


@pytest.mark.parametrize(
    ("writes", "refused"),
    [
        ([("a", 600)], None),
        ([("a", 601)], "deploy.max_file_bytes"),  # more than its header declared: counted, not trusted
        ([("a", 500), ("b", 500)], None),
        ([("a", 500), ("b", 501)], "deploy.max_unpacked_bytes"),
    ],
)
def test_written_bytes_are_counted(writes: list[tuple[str, int]], refused: str | None) -> None:
    budget = ArchiveBudget(LIMITS)

    def write_all() -> None:
        for name, size in writes:
            budget.add_member(name, 0)
            budget.add_written(name, size, size)

    if refused is None:
        write_all()
    else:
        with pytest.raises(ArchiveError, match=refused):
            write_all()


def test_decompressed_bytes_beyond_contents_are_bounded_per_member() -> None:
    budget = ArchiveBudget(LIMITS)
    budget.add_member("a", 0)
    budget.add_decompressed(2 * HEADER_ALLOWANCE + SLACK)  # one member's header, the next one's, and slack
    with pytest.raises(ArchiveError, match="tar headers and padding"):
        budget.add_decompressed(1)


def test_shown_names_are_escaped_and_cut() -> None:
    assert shown("a\udcff") == "'a\\udcff'"
    assert len(shown("x" * 10_000)) < 300
