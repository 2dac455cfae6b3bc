"""kepler.errors: every kind of failure carries the exit code the README documents for it."""

from __future__ import annotations

import re
from pathlib import Path

import kepler.errors
from kepler.cli.app import UsageError
from kepler.errors import KeplerError

README = Path(__file__).resolve().parents[1] / "README.md"

# The README's exit-code paragraph, class by class. Two pairs share a code on purpose: a profile and a
# registry entry are both "the target's settings", a bad input table and input that breaks the compiled
# schema are both "input data".
DOCUMENTED = {
    "KeplerError": 1,
    "UsageError": 2,
    "ProfileError": 3,
    "RegistryError": 3,
    "ModelLoadError": 4,
    "UnsupportedModelError": 5,
    "InputSchemaError": 6,
    "DataError": 6,
    "ParityError": 7,
    "ArtifactError": 8,
    "CompileError": 9,
    "BudgetError": 10,
    "VersioningError": 11,
    "ProjectNotFoundError": 12,
    "MonitoringError": 13,
    "DriftDetected": 14,
    "EndpointError": 15,
    "BackendUnavailable": 16,
}
SHARED = {3: {"ProfileError", "RegistryError"}, 6: {"InputSchemaError", "DataError"}}


def exported() -> dict[str, type[KeplerError]]:
    """Every Kepler error class a user can catch: kepler.errors' exports and the CLI's usage error."""
    classes = {name: getattr(kepler.errors, name) for name in kepler.errors.__all__}
    return {**classes, "UsageError": UsageError}


def test_every_exported_error_declares_its_documented_code() -> None:
    classes = exported()
    assert set(classes) == set(DOCUMENTED), "a new error class needs its exit code here and in the README"
    for name, cls in classes.items():
        assert issubclass(cls, KeplerError), name
        assert "exit_code" in vars(cls), f"{name} inherits its exit code: declare its own"
        assert cls.exit_code == DOCUMENTED[name], name


def test_codes_are_distinct_except_the_documented_pairs() -> None:
    by_code: dict[int, set[str]] = {}
    for name, cls in exported().items():
        by_code.setdefault(cls.exit_code, set()).add(name)
    assert {code: names for code, names in by_code.items() if len(names) > 1} == SHARED


def test_a_subclass_reports_its_own_code_not_its_parents() -> None:
    assert kepler.errors.ParityError("x", {}).exit_code == 7 != kepler.errors.CompileError("x").exit_code
    assert (
        kepler.errors.ProjectNotFoundError("x").exit_code
        == 12
        != kepler.errors.VersioningError("x").exit_code
    )


def test_the_readme_lists_every_code() -> None:
    text = README.read_text(encoding="utf-8")
    start = text.index("Exit codes:")
    paragraph = text[start : text.index("\n\n", start)]
    listed = {int(code) for code in re.findall(r"(?:Exit codes:|,)\s+(\d+)\s", paragraph)}
    assert set(DOCUMENTED.values()) | {70, 130, 143} <= listed
