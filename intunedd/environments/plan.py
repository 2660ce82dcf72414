"""Which path and interpreter a project runs on, and what its environment must hold. Pure.

Two paths: **Intuned's runtime** (the project's own ``intuned-runtime``, ``intuned-browser`` and
Playwright pin, driven through the runtime's platform contract) where the project declares
``intuned-runtime`` and an interpreter of 3.12 or newer is on the host, since Intuned's packages
need one; **intunedd's own** modules everywhere else: the project's other dependencies, with
intunedd's Playwright and our ``intuned_runtime``/``intuned_browser`` in place of Intuned's.
A ``requires-python`` the host cannot satisfy never refuses a deploy: the best interpreter there
is runs the project, and a warning says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import msgspec
from packaging.specifiers import SpecifierSet

from .declared import INTUNED_PACKAGES, PLAYWRIGHT, Declared
from .interpreters import Interpreter

Runtime = Literal["intunedd", "intuned"]
INTUNED_RUNTIME_MIN = (3, 12)
OUR_MIN = (3, 11)  # what intunedd's worker code needs


class Plan(msgspec.Struct, frozen=True):
    runtime: Runtime
    interpreter: Interpreter
    requirements: tuple[str, ...]
    warnings: tuple[str, ...] = ()


class WorkerNeeds(msgspec.Struct, frozen=True):
    """What intunedd's worker imports: ``common`` always, and ``playwright`` (the daemon's own pin)
    on intunedd's own path, or on Intuned's where the project pins no Playwright of its own."""

    common: tuple[str, ...]
    playwright: str


def plan(declared: Declared, interpreters: Sequence[Interpreter], needs: WorkerNeeds, *, intuned_runtime: bool) -> Plan:
    """``interpreters`` are the host's, highest first (``interpreters.available``)."""
    spec = SpecifierSet(declared.requires_python or "")
    satisfying = [i for i in interpreters if spec.contains(i.version_text, prereleases=True)]
    warnings: list[str] = []
    if declared.uses_intuned_runtime:
        recent = [i for i in interpreters if i.version[:2] >= INTUNED_RUNTIME_MIN]
        if not intuned_runtime:
            warnings.append("Intuned's runtime is turned off here (environments.intuned_runtime): "
                            "intunedd's own intuned_runtime and intuned_browser run this project")  # fmt: skip
        elif recent:
            chosen = _first(satisfying, recent) or recent[0]
            warnings += _python_warning(declared, chosen, satisfying)
            # The worker drives the browser with the project's Playwright pin; ours if it has none.
            playwright = () if PLAYWRIGHT in declared.names else (needs.playwright,)
            return Plan("intuned", chosen, (*declared.requirements, *needs.common, *playwright), tuple(warnings))
        else:
            warnings.append("Intuned's runtime needs Python 3.12 or newer, which this host does not have: "
                            "intunedd's own intuned_runtime and intuned_browser run this project")  # fmt: skip
    usable = [i for i in interpreters if i.version[:2] >= OUR_MIN]
    chosen = _first(satisfying, usable) or usable[0]
    warnings += _python_warning(declared, chosen, satisfying)
    requirements = declared.without(INTUNED_PACKAGES | {PLAYWRIGHT})
    return Plan("intunedd", chosen, (*requirements, *needs.common, needs.playwright), tuple(warnings))


def _first(preferred: Sequence[Interpreter], allowed: Sequence[Interpreter]) -> Interpreter | None:
    return next((i for i in preferred if i in allowed), None)


def _python_warning(declared: Declared, chosen: Interpreter, satisfying: Sequence[Interpreter]) -> list[str]:
    if chosen in satisfying:
        return []
    return [f"requires-python {declared.requires_python!r} cannot be satisfied on this host: "
            f"the project runs on Python {chosen.version_text} instead"]  # fmt: skip
