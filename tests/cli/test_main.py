"""kepler.cli.main: an error's exit code is its class's ``exit_code``; anything else is internal (70)."""

from __future__ import annotations

import pytest

from kepler.cli.main import EXIT_INTERNAL, exit_code_for, main
from kepler.errors import DataError, KeplerError, ParityError, ProjectNotFoundError

pytestmark = pytest.mark.unit  # no process: the module's folder is integration by default


class ProjectGone(ProjectNotFoundError):
    """A subclass a caller might define: it inherits its parent's code."""


class Custom(KeplerError):
    exit_code = 42


class ParityErrorLookalike(KeplerError):
    """Named like a Kepler class, as the former name-based table matched: the attribute decides."""


def test_the_attribute_decides() -> None:
    assert exit_code_for(ParityError("x", {})) == 7
    assert exit_code_for(DataError("x")) == 6
    assert exit_code_for(ProjectGone("x")) == 12
    assert exit_code_for(Custom("x")) == 42
    ParityErrorLookalike.__name__ = "ParityError"
    assert exit_code_for(ParityErrorLookalike("x")) == 1


def test_other_exceptions_are_internal() -> None:
    assert exit_code_for(ValueError("x")) == EXIT_INTERNAL == 70


def test_main_exits_with_the_code_and_one_error_line(
    tmp_path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["versioning", "list-data"]) == 12
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "kepler init" in err and len(err.strip().splitlines()) == 1


def test_usage_errors_exit_2(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compile"]) == 2  # Typer's own: a missing argument
    table = tmp_path / "table.csv"
    table.write_text("a,b\n1,2\n", encoding="utf-8")
    assert main(["build", str(table), "--no-track"]) == 2  # Kepler's UsageError: a search without a label
    assert "a search needs the label column" in capsys.readouterr().err
