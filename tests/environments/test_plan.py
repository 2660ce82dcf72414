from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from packaging.specifiers import SpecifierSet

from intunedd.environments.declared import Declared
from intunedd.environments.interpreters import Interpreter
from intunedd.environments.plan import WorkerNeeds, plan

NEEDS = WorkerNeeds(common=("msgspec", "markdownify"), playwright="playwright==1.65.2")
PY311 = Interpreter((3, 11, 2), "/usr/bin/python3.11")
PY312 = Interpreter((3, 12, 1), "/opt/py312/bin/python3.12")
PY313 = Interpreter((3, 13, 0), "/opt/py313/bin/python3.13")
INTUNED = Declared(
    "pyproject.toml",
    ("playwright==1.61.0", "intuned-runtime", "intuned-browser", "beautifulsoup4"),
    ">=3.12,<3.13",
)


def test_an_intuned_project_runs_on_intuneds_runtime_with_its_own_pins_where_python_3_12_exists() -> None:
    chosen = plan(INTUNED, [PY313, PY312, PY311], NEEDS, intuned_runtime=True)
    assert (chosen.runtime, chosen.interpreter, chosen.warnings) == ("intuned", PY312, ())
    assert chosen.requirements == (*INTUNED.requirements, "msgspec", "markdownify")


def test_on_a_python_3_11_host_it_runs_on_our_modules_without_intuneds_packages_and_says_why() -> None:
    chosen = plan(INTUNED, [PY311], NEEDS, intuned_runtime=True)
    assert (chosen.runtime, chosen.interpreter) == ("intunedd", PY311)
    assert chosen.requirements == ("beautifulsoup4", "msgspec", "markdownify", "playwright==1.65.2")
    assert "needs Python 3.12 or newer" in chosen.warnings[0]
    assert "cannot be satisfied" in chosen.warnings[1]


def test_with_intuneds_runtime_turned_off_the_satisfying_interpreter_still_runs_our_path() -> None:
    chosen = plan(INTUNED, [PY313, PY312, PY311], NEEDS, intuned_runtime=False)
    assert (chosen.runtime, chosen.interpreter) == ("intunedd", PY312)
    assert "turned off" in chosen.warnings[0]


def test_a_requires_python_nothing_satisfies_takes_the_newest_usable_interpreter_with_a_warning() -> None:
    declared = Declared("pyproject.toml", ("httpx",), ">=3.14")
    chosen = plan(declared, [PY313, PY311], NEEDS, intuned_runtime=True)
    assert (chosen.runtime, chosen.interpreter) == ("intunedd", PY313)
    assert chosen.warnings == (
        "requires-python '>=3.14' cannot be satisfied on this host: the project runs on Python 3.13.0 instead",
    )


interpreters = st.lists(
    st.builds(lambda minor, micro: Interpreter((3, minor, micro), f"/py/3.{minor}.{micro}"),
              st.integers(11, 14), st.integers(0, 9)),
    min_size=1, max_size=5, unique=True,
).map(lambda found: sorted(found, reverse=True))  # fmt: skip


@given(interpreters, st.sampled_from([None, ">=3.12", "<3.12", ">=3.12,<3.13", "==3.13.*"]), st.booleans())
def test_the_plan_always_runs_and_never_hands_intuneds_packages_to_our_path(
    found: list[Interpreter], requires: str | None, runtime_on: bool
) -> None:
    declared = Declared(
        "pyproject.toml", ("intuned-runtime", "intuned-browser", "playwright==1.61.0", "httpx"), requires
    )
    chosen = plan(declared, found, NEEDS, intuned_runtime=runtime_on)
    assert chosen.interpreter in found
    if chosen.runtime == "intuned":
        assert runtime_on and chosen.interpreter.version >= (3, 12)
    else:
        assert not {"intuned-runtime", "intuned-browser", "playwright==1.61.0"} & set(chosen.requirements)
    satisfied = requires is None or chosen.interpreter.version_text in SpecifierSet(requires)
    assert satisfied or any("cannot be satisfied" in w for w in chosen.warnings)


def test_on_intuneds_runtime_a_project_without_a_playwright_pin_gets_ours() -> None:
    declared = Declared("pyproject.toml", ("intuned-runtime", "intuned-browser"), ">=3.12,<3.13")
    chosen = plan(declared, [PY313, PY312, PY311], NEEDS, intuned_runtime=True)
    assert chosen.runtime == "intuned"
    assert chosen.requirements == ("intuned-runtime", "intuned-browser", "msgspec", "markdownify", "playwright==1.65.2")
