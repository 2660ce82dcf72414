"""What a project says it needs: ``pyproject.toml`` ``[project].dependencies`` (else
``requirements.txt``) and ``requires-python``.

The files are untrusted. Only plain PEP 508 requirements are accepted: no options (``-e``,
``--index-url``, ``-r``), no direct references (``name @ url``), which could point uv at the
host's files or at another index; each is parsed by ``packaging``, not by us.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import msgspec
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name

MAX_FILE_BYTES = 256 * 1024
MAX_REQUIREMENTS = 300
MAX_REQUIREMENT_CHARS = 500

# Intuned's own packages and the Playwright pin that comes with them: the platform provides these.
INTUNED_PACKAGES = frozenset({"intuned-runtime", "intuned-browser", "intuned-sdk"})
PLAYWRIGHT = "playwright"


class DeclarationError(ValueError):
    """The project's dependency file is unreadable or asks for something not allowed."""


class Declared(msgspec.Struct, frozen=True):
    source: str | None  # "pyproject.toml", "requirements.txt", or None: nothing declared
    requirements: tuple[str, ...] = ()
    requires_python: str | None = None

    @property
    def names(self) -> frozenset[str]:
        return frozenset(canonicalize_name(Requirement(r).name) for r in self.requirements)

    @property
    def uses_intuned_runtime(self) -> bool:
        return "intuned-runtime" in self.names

    def without(self, names: frozenset[str]) -> tuple[str, ...]:
        return tuple(r for r in self.requirements if canonicalize_name(Requirement(r).name) not in names)


def read_declared(project_dir: Path) -> Declared:
    pyproject = project_dir / "pyproject.toml"
    if pyproject.is_file():
        data = _toml(pyproject)
        project = data.get("project")
        if isinstance(project, dict) and "dependencies" in project:
            return Declared(
                "pyproject.toml",
                _requirements(project["dependencies"], "pyproject.toml: [project].dependencies"),
                _requires_python(project.get("requires-python")),
            )
        requires_python = _requires_python(project.get("requires-python")) if isinstance(project, dict) else None
    else:
        requires_python = None
    requirements_txt = project_dir / "requirements.txt"
    if requirements_txt.is_file():
        lines = [_strip_comment(line) for line in _text(requirements_txt).splitlines()]
        return Declared("requirements.txt", _requirements([x for x in lines if x], "requirements.txt"), requires_python)
    return Declared(None, (), requires_python)


def _text(path: Path) -> str:
    if path.stat().st_size > MAX_FILE_BYTES:
        raise DeclarationError(f"{path.name} is larger than {MAX_FILE_BYTES} bytes")
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise DeclarationError(f"{path.name} is not UTF-8 (byte {e.start})") from e


def _toml(path: Path) -> dict[str, object]:
    try:
        return tomllib.loads(_text(path))
    except tomllib.TOMLDecodeError as e:
        raise DeclarationError(f"pyproject.toml: {e}") from e


def _strip_comment(line: str) -> str:
    # pip's rule: a comment starts at '#' at the line's start or after whitespace.
    text = line.strip()
    if text.startswith("#"):
        return ""
    return text.split(" #", 1)[0].split("\t#", 1)[0].strip()


def _requirements(raw: object, where: str) -> tuple[str, ...]:
    if not isinstance(raw, list) or not all(isinstance(item, str) for item in raw):
        raise DeclarationError(f"{where} must be a list of requirement strings")
    if len(raw) > MAX_REQUIREMENTS:
        raise DeclarationError(f"{where} lists {len(raw)} requirements; at most {MAX_REQUIREMENTS} are allowed")
    return tuple(_requirement(item, where) for item in raw)


def _requirement(text: str, where: str) -> str:
    shown = text[:100]
    if len(text) > MAX_REQUIREMENT_CHARS:
        raise DeclarationError(f"{where}: requirement {shown!r}... is longer than {MAX_REQUIREMENT_CHARS} characters")
    if text.startswith("-"):
        raise DeclarationError(f"{where}: {shown!r}: options are not allowed, only package requirements")
    try:
        requirement = Requirement(text)
    except InvalidRequirement as e:
        raise DeclarationError(f"{where}: {shown!r} is not a valid requirement: {e}") from e
    if requirement.url is not None:
        raise DeclarationError(
            f"{where}: {requirement.name!r} names a URL; only packages from the package index are allowed"
        )
    return str(requirement)


def _requires_python(raw: object) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str) or len(raw) > MAX_REQUIREMENT_CHARS:
        raise DeclarationError("pyproject.toml: requires-python must be a version specifier string")
    try:
        return str(SpecifierSet(raw))
    except InvalidSpecifier as e:
        raise DeclarationError(f"pyproject.toml: requires-python {raw[:100]!r} is not valid: {e}") from e
