"""`kepler monitor drift` (kepler/cli/monitor_cmd.py): JSON shape, the --fail-on-drift exit code, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from kepler.cli.main import app, exit_code_for, main
from kepler.errors import DataError, DriftDetected, MonitoringError
from kepler.monitoring import ReferenceProfile

runner = CliRunner()


def _table(rows: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "temperature": rng.normal(70 + shift, 6, rows),
            "pressure": rng.normal(1.0, 0.1, rows),
            "line": rng.choice(["north", "south", "east"], rows),
        }
    )


@pytest.fixture()
def tables(tmp_path: Path) -> dict[str, Path]:
    paths = {
        "reference": tmp_path / "reference.csv",
        "same": tmp_path / "same.csv",
        "drifted": tmp_path / "drifted.parquet",
        "other": tmp_path / "other.csv",
        "empty": tmp_path / "empty.csv",
        "profile": tmp_path / "profile.json",
    }
    reference = _table(2000, 1)
    reference.to_csv(paths["reference"], index=False)
    _table(2000, 2).to_csv(paths["same"], index=False)
    _table(2000, 3, shift=12.0).assign(line="west").to_parquet(paths["drifted"])
    pd.DataFrame({"x": [1, 2]}).to_csv(paths["other"], index=False)
    paths["empty"].write_text("temperature,pressure,line\n")
    ReferenceProfile.from_frame(reference).save(paths["profile"])
    return paths


def test_json_has_the_issues_shape(tables: dict[str, Path]) -> None:
    result = runner.invoke(
        app, ["monitor", "drift", str(tables["reference"]), str(tables["drifted"]), "--json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) == {"columns", "drift_share", "dataset_drift"}
    assert [(c["column"], c["method"], c["drifted"]) for c in data["columns"]] == [
        ("temperature", "wasserstein", True),
        ("pressure", "wasserstein", False),
        ("line", "jensenshannon", True),
    ]
    assert all(
        set(c) == {"column", "method", "statistic", "p_value", "threshold", "drifted"}
        for c in data["columns"]
    )
    assert data["dataset_drift"] is True and data["drift_share"] == pytest.approx(2 / 3)


def test_method_threshold_and_html(tables: dict[str, Path], tmp_path: Path) -> None:
    page = tmp_path / "drift.html"
    result = runner.invoke(
        app,
        [
            "monitor",
            "drift",
            str(tables["profile"]),
            str(tables["same"]),
            "--method",
            "psi",
            "--threshold",
            "0.2",
            "--html",
            str(page),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "psi" in result.stdout and "0 of 3 columns drifted" in result.stdout
    assert page.read_text().startswith("<!DOCTYPE html>")


def test_fail_on_drift_exits_14_after_printing_the_report(
    tables: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    result = runner.invoke(
        app, ["monitor", "drift", str(tables["reference"]), str(tables["drifted"]), "--fail-on-drift"]
    )
    assert isinstance(result.exception, DriftDetected) and exit_code_for(result.exception) == 14
    assert "temperature" in result.stdout  # the table came first
    code = main(
        ["monitor", "drift", str(tables["reference"]), str(tables["drifted"]), "--json", "--fail-on-drift"]
    )
    captured = capsys.readouterr()
    assert code == 14
    assert json.loads(captured.out)["dataset_drift"] is True
    assert captured.err.strip().splitlines() == [
        "error: 2 of 3 columns drifted (67%; the dataset drifts at 50%): dataset drift (drifted: temperature, line)"
    ]


def test_no_drift_with_fail_on_drift_exits_0(tables: dict[str, Path]) -> None:
    result = runner.invoke(
        app, ["monitor", "drift", str(tables["reference"]), str(tables["same"]), "--fail-on-drift"]
    )
    assert result.exit_code == 0, result.output
    assert "no dataset drift" in result.stdout


@pytest.mark.parametrize(
    ("arguments", "error", "code", "message"),
    [
        (["reference", "drifted", "--method", "kl"], MonitoringError, 13, "unknown drift method 'kl'"),
        (["reference", "drifted", "--threshold", "-0.5"], MonitoringError, 13, "must be above 0"),
        (["reference", "other"], MonitoringError, 13, "no column in common"),
        (["reference", "empty"], DataError, 6, "no data rows"),
        (["profile", "missing"], MonitoringError, 13, "no such file"),
    ],
)
def test_bad_input_is_one_error_line_and_its_exit_code(
    tables: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
    arguments: list[str],
    error: type[Exception],
    code: int,
    message: str,
) -> None:
    monkeypatch.chdir(tables["reference"].parent)  # no Kepler project here: "missing" is no data version
    argv = ["monitor", "drift", *[str(tables.get(a, a)) for a in arguments]]
    result = runner.invoke(app, argv)
    assert isinstance(result.exception, error), result.output
    assert message in str(result.exception) and "\n" not in str(result.exception)
    assert exit_code_for(result.exception) == code
