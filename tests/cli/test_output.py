"""Tables and lines the CLI prints: whole values on one line when output is not a terminal, fitted on one."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest

from kepler.cli import output as out
from kepler.cli.main import main

REPO = Path(__file__).resolve().parents[2]
LONG = "sensor_" + "x" * 143  # 150 characters, wider than any default terminal


def lines_with(text: str, value: str) -> list[str]:
    """The lines of ``text`` that hold ``value`` whole."""
    return [line for line in text.splitlines() if value in line]


@pytest.mark.unit
def test_targets_show_keeps_a_long_value_on_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    description = "Plant floor gateway " + "y" * 130
    profile = tmp_path / f"{LONG}.toml"
    profile.write_text(
        (REPO / "targets" / "edge.toml")
        .read_text(encoding="utf-8")
        .replace('name = "edge"', f'name = "{LONG}"')
        .replace(
            'description = "Edge device: CPU only, one thread, offline; p99 <= 50 ms at batch 1 and <= 10 MB."',
            f'description = "{description}"',
        ),
        encoding="utf-8",
    )
    assert main(["targets", "show", str(profile)]) == 0
    printed = capsys.readouterr().out
    assert len(lines_with(printed, f"Target '{LONG}'")) == 1, printed
    assert len(lines_with(printed, description)) == 1, printed
    assert len(lines_with(printed, LONG)) == 3, printed  # the title, the name row and the path row
    assert "…" not in printed


@pytest.mark.unit
def test_build_summary_keeps_long_column_names_and_notes_on_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    note = "values read as missing: " + ", ".join(f"'n.a.{i}'" for i in range(20))
    report: dict[str, Any] = {
        "kind": "search",
        "test_rows": 60,
        "data": {
            "rows": 300,
            "features": ["a", LONG],
            "columns": [
                {"name": f"{LONG}_empty", "role": "dropped", "note": "empty: every value is missing"},
                {"name": LONG, "role": "feature", "note": note},
            ],
            "notes": [],
        },
        "constraint_report": [
            {
                "budget": "latency_p99_ms",
                "limit": 50.0,
                "source": f"profile {LONG}",
                "measured": 0.1,
                "ok": True,
            }
        ],
        "test_metrics": {f"roc_auc_{LONG}": 0.93},
    }
    out.console().print(out.build_summary(report))
    printed = capsys.readouterr().out
    assert len(lines_with(printed, f"{LONG}_empty")) == 1, printed
    assert len(lines_with(printed, note)) == 1 and lines_with(printed, note)[0].count(LONG) == 1, printed
    assert len(lines_with(printed, f"profile {LONG}")) == 1, printed
    assert len(lines_with(printed, f"roc_auc_{LONG}")) == 1, printed


@pytest.mark.unit
def test_the_error_console_keeps_long_values_on_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    broken = {"latency_p99_ms": {"over_by": 2.5}, f"budget_{LONG}": {"over_by": 1.5}}
    report = {
        "closest": [
            {"trial": 3, "family": "xgboost", "val_score": 0.9, "p99_ms": 120, "size_mb": 1, "broken": broken}
        ]
    }
    out.console(stderr=True).print(out.closest_table(report))
    captured = capsys.readouterr()
    assert captured.out == ""
    assert len(lines_with(captured.err, f"budget_{LONG} 1.5× over")) == 1, captured.err


@pytest.mark.unit
def test_a_terminal_still_gets_tables_fitted_to_its_width(monkeypatch: pytest.MonkeyPatch) -> None:
    leader, follower = os.openpty()
    try:
        with open(follower, "w", encoding="utf-8", closefd=False) as terminal:
            monkeypatch.setattr(sys, "stdout", terminal)
            monkeypatch.delenv("COLUMNS", raising=False)
            console = out.console()
            assert console.is_terminal
            assert console.width < out.PLAIN_WIDTH
            assert not console.soft_wrap
    finally:
        os.close(follower)
        os.close(leader)
    plain = out.console()  # capture: not a terminal
    assert plain.width == out.PLAIN_WIDTH and plain.soft_wrap


def test_compile_prints_a_long_output_path_whole(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    sample = pd.DataFrame({LONG: rng.normal(size=120), "pressure": rng.normal(size=120)})
    labels = (sample[LONG] > 0).astype(int)
    joblib.dump(LogisticRegression().fit(sample, labels), tmp_path / "model.joblib")
    sample.to_csv(tmp_path / "sample.csv", index=False)
    output = tmp_path / LONG / "artifact"
    code = main(
        [
            "compile",
            str(tmp_path / "model.joblib"),
            "--sample",
            str(tmp_path / "sample.csv"),
            "-o",
            str(output),
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0, printed
    done = lines_with(printed, f"→ {output}")
    assert len(done) == 1 and done[0].startswith("compiled LogisticRegression"), printed
    assert len(lines_with(printed, "Parity against the native model")) == 1, printed


def test_list_releases_prints_long_components_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from kepler.versioning.project import init
    from kepler.versioning.releases import create_release

    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    project = init(tmp_path / "proj")
    monkeypatch.chdir(project.root)
    model_line = "line-" + "z" * 145
    create_release("first", components={"data_version": LONG}, model_line=model_line)
    assert main(["versioning", "list-releases"]) == 0
    printed = capsys.readouterr().out
    rows = lines_with(printed, f"data_version={LONG}")
    assert len(rows) == 1 and model_line in rows[0] and "first" in rows[0], printed
