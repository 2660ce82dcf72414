"""The ``pyproject.toml`` of an Intuned-style project: Intuned's runtime and browser helpers with the
libraries Intuned's examples use. The environment tests and ``bench.environments`` deploy it alike."""

from __future__ import annotations

DEPENDENCIES = ("playwright==1.58.0", "intuned-runtime", "intuned-browser", "beautifulsoup4>=4.12", "pydantic>=2")

_PYPROJECT = """
[project]
name = "{name}"
version = "0.1.0"
requires-python = ">=3.12,<3.13"
dependencies = [{dependencies}]

[tool.uv]
package = false
"""


def intuned_pyproject(name: str, *extra: str) -> str:
    """The project ``name``'s file, with ``extra`` requirements after the usual ones."""
    return _PYPROJECT.format(name=name, dependencies=", ".join(f'"{d}"' for d in (*DEPENDENCIES, *extra)))
