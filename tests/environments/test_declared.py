from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from packaging.requirements import Requirement

from intunedd.environments.declared import DeclarationError, Declared, read_declared

INTUNED_PYPROJECT = """
[project]
name = "example"
version = "0.1.0"
requires-python = ">=3.12,<3.13"
dependencies = ["playwright==1.61.0", "intuned-runtime==1.3.49", "intuned-browser", "beautifulsoup4>=4.12"]

[tool.uv]
package = false
"""


def _project(tmp_path: Path, **files: str) -> Path:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    return tmp_path


def test_an_intuned_pyproject_is_read_with_its_python_and_its_own_packages_told_apart(tmp_path: Path) -> None:
    declared = read_declared(_project(tmp_path, **{"pyproject.toml": INTUNED_PYPROJECT}))
    assert declared.source == "pyproject.toml"
    assert declared.requires_python == "<3.13,>=3.12"
    assert declared.uses_intuned_runtime
    assert declared.without(frozenset({"intuned-runtime", "intuned-browser", "playwright"})) == (
        "beautifulsoup4>=4.12",
    )


def test_requirements_txt_is_read_when_pyproject_declares_no_dependencies(tmp_path: Path) -> None:
    project = _project(
        tmp_path,
        **{
            "pyproject.toml": '[project]\nname = "x"\nrequires-python = ">=3.11"\n',
            "requirements.txt": "# scraping\nbeautifulsoup4  # parser\n\nhttpx>=0.27\n",
        },
    )
    assert read_declared(project) == Declared("requirements.txt", ("beautifulsoup4", "httpx>=0.27"), ">=3.11")


def test_a_project_without_a_dependency_file_declares_nothing(tmp_path: Path) -> None:
    assert read_declared(tmp_path) == Declared(None)


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("-e /etc", "options are not allowed"),
        ("--index-url http://evil.example/simple", "options are not allowed"),
        ("-r /etc/passwd", "options are not allowed"),
        ("evil @ file:///etc/passwd", "names a URL"),
        ("evil @ https://example.com/evil.whl", "names a URL"),
        ("not a requirement!!", "is not a valid requirement"),
        ("x" * 600, "longer than"),
    ],
)
def test_requirements_that_could_reach_beyond_the_index_are_refused(tmp_path: Path, line: str, says: str) -> None:
    with pytest.raises(DeclarationError, match=says):
        read_declared(_project(tmp_path, **{"requirements.txt": line + "\n"}))


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("[project\n", "pyproject.toml"),
        ('[project]\ndependencies = "bs4"\n', "must be a list"),
        ("[project]\ndependencies = [1]\n", "must be a list"),
        ('[project]\nrequires-python = ">>3"\ndependencies = []\n', "requires-python"),
        ("[project]\ndependencies = [" + ", ".join(['"a"'] * 400) + "]\n", "at most 300"),
    ],
)
def test_a_malformed_pyproject_is_refused_with_what_is_wrong(tmp_path: Path, text: str, says: str) -> None:
    with pytest.raises(DeclarationError, match=says):
        read_declared(_project(tmp_path, **{"pyproject.toml": text}))


def test_a_huge_or_binary_file_is_refused_before_it_is_parsed(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_bytes(b"a\n" * 200_000)
    with pytest.raises(DeclarationError, match="larger than"):
        read_declared(tmp_path)
    (tmp_path / "requirements.txt").write_bytes(b"\xff\xfe")
    with pytest.raises(DeclarationError, match="not UTF-8"):
        read_declared(tmp_path)


@given(st.text(st.characters(exclude_categories=("Cs",)), max_size=200))
def test_any_requirements_file_is_either_read_or_refused_with_a_declaration_error(text: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "requirements.txt").write_text(text, encoding="utf-8")
        try:
            declared = read_declared(Path(folder))
        except DeclarationError:
            return
        assert all(not r.startswith("-") and Requirement(r).url is None for r in declared.requirements)
