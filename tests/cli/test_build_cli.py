"""`kepler build` and the guide's `kepler automl` commands, run as a user would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import joblib
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder
from sklearn.tree import DecisionTreeClassifier

REPO = Path(__file__).resolve().parents[2]
KEPLER = str(Path(sys.executable).with_name("kepler"))
NUMERIC = [
    "air_temperature_k",
    "process_temperature_k",
    "rotational_speed_rpm",
    "torque_nm",
    "tool_wear_min",
    "vibration_mm_s",
]


def kepler(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "KEPLER_DEBUG"}
    return subprocess.run([KEPLER, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=600)


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("build") / "sensors.csv"
    pd.read_csv(REPO / "examples" / "data" / "sensors.csv").head(1200).to_csv(path, index=False)
    return path


def only_build(folder: Path) -> Path:
    builds = [p for p in folder.iterdir()]
    assert len(builds) == 1 and not builds[0].name.startswith("."), builds
    return builds[0]


def test_build_searches_and_writes_the_build_folder(table: Path, tmp_path: Path) -> None:
    result = kepler(
        "build",
        str(table),
        "--label",
        "failure",
        "--target",
        "edge",
        "--time-budget",
        "4s",
        "--output",
        str(tmp_path / "builds"),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    build = only_build(tmp_path / "builds")
    assert sorted(p.name for p in build.iterdir()) == ["artifact", "report.html", "report.json"]
    report = json.loads((build / "report.json").read_text())
    assert report["schema_version"] == 1 and report["kind"] == "search" and report["deployment_ready"] is True
    assert report["artifact"]["path"] == str(build / "artifact")
    assert (build / "artifact" / "model.onnx").is_file()
    html = (build / "report.html").read_text()
    assert "<svg" in html and "http://" not in html and "https://" not in html
    assert "built" in result.stdout and "search" in result.stderr  # tables on stdout, progress on stderr


def test_build_with_a_given_model(table: Path, tmp_path: Path) -> None:
    frame = pd.read_csv(table)
    model = Pipeline(
        [
            (
                "pre",
                ColumnTransformer(
                    [
                        ("num", SimpleImputer(), NUMERIC),
                        ("cat", OneHotEncoder(handle_unknown="ignore"), ["machine_type"]),
                    ]
                ),
            ),
            ("model", DecisionTreeClassifier(max_depth=5, random_state=0)),
        ]
    ).fit(frame[NUMERIC + ["machine_type"]], frame["failure"])
    joblib.dump(model, tmp_path / "tree.joblib")
    result = kepler(
        "build",
        str(table),
        "--label",
        "failure",
        "--model",
        str(tmp_path / "tree.joblib"),
        "--output",
        str(tmp_path / "builds"),
        "--json",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["kind"] == "model" and report["best_estimator"] == "DecisionTreeClassifier"
    assert report["artifact"]["parity"]["passed"] and report["test_metrics"]["accuracy"] > 0.9
    build = only_build(tmp_path / "builds")
    assert (build / "report.html").is_file()
    # --json prints report.json's keys (and the build folder); a model build has no search keys.
    assert report == {"build": str(build), **json.loads((build / "report.json").read_text())}
    assert report["schema_version"] == 1 and "trials" not in report and "best_algorithm" not in report
    # The table's columns the model does not read are ignored, as a search build ignores them: a row sent as it
    # stands in the source table (timestamp, id, label and all) gets the model's answer.
    from kepler.runtimes import load

    predictor = load(build / "artifact")
    assert set(predictor.manifest.input_schema.ignored_columns) == set(frame.columns) - set(
        NUMERIC + ["machine_type"]
    )
    raw = json.loads(frame.head(5).to_json(orient="records"))
    assert (
        predictor.predict(raw).tolist() == model.predict(frame.head(5)[NUMERIC + ["machine_type"]]).tolist()
    )


def test_impossible_budget_fails_shows_the_report_and_writes_nothing(table: Path, tmp_path: Path) -> None:
    constraints = tmp_path / "impossible.json"
    constraints.write_text(json.dumps({"latency_p99_ms": 0.001}))
    result = kepler(
        "build",
        str(table),
        "--label",
        "failure",
        "--time-budget",
        "3s",
        "--constraints-file",
        str(constraints),
        "--output",
        str(tmp_path / "builds"),
        cwd=tmp_path,
    )
    assert result.returncode == 10, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert "closest" in result.stderr and "latency_p99_ms" in result.stderr
    assert [line for line in result.stderr.splitlines() if line.startswith("error: ")][0].startswith(
        "error: no candidate fits the budgets"
    )
    assert not (tmp_path / "builds").exists()


def test_build_whose_every_trial_fails_to_compile_says_why_and_exits_9(
    table: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from kepler.automl.families import CLASSIFICATION, FAMILIES, Family
    from kepler.cli.main import main

    # A tree no converter knows, in a family that claims DecisionTreeClassifier: every trial fails to compile.
    # The family lives in this process only, so the CLI runs in-process.
    unconvertible = type("UnconvertibleTree", (DecisionTreeClassifier,), {})
    family = Family(
        "test_unconvertible",
        lambda p, task, seed: unconvertible(max_depth=int(p["max_depth"])),
        FAMILIES.get("decision_tree").space,
        (CLASSIFICATION,),
        ("DecisionTreeClassifier",),
    )
    monkeypatch.setitem(FAMILIES._entries, family.name, family)
    monkeypatch.chdir(tmp_path)
    constraints = tmp_path / "families.json"
    constraints.write_text(json.dumps({"families": [family.name]}))
    code = main(
        [
            "build",
            str(table),
            "--label",
            "failure",
            "--time-budget",
            "3s",
            "--constraints-file",
            str(constraints),
            "--output",
            str(tmp_path / "builds"),
        ]
    )
    stderr = capsys.readouterr().err
    assert code == 9, stderr
    [error] = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert (
        error.startswith("error: all ")
        and " trials failed to compile: " in error
        and "UnconvertibleTree" in error
    )
    assert "budget" not in stderr and "Traceback" not in stderr
    assert not (tmp_path / "builds").exists()


def test_guide_automl_commands(table: Path, tmp_path: Path) -> None:
    constraints = tmp_path / "industrial.json"
    constraints.write_text(json.dumps({"latency_p99_ms": 20, "size_mb": 5}))
    run = kepler(
        "automl",
        "run",
        str(table),
        "--target",
        "failure",
        "--optimization-time",
        "3s",
        "--constraints-file",
        str(constraints),
        "--output",
        str(tmp_path / "run"),
        "--json",
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["budgets"]["latency_p99_ms"] == {"limit": 20.0, "source": "constraints"}
    assert report["budgets"]["size_mb"] == {"limit": 5.0, "source": "constraints"}
    industrial = kepler(
        "automl",
        "industrial",
        str(table),
        "--target",
        "failure",
        "--use-case",
        "predictive_maintenance",
        "--environment",
        "edge",
        "--optimization-time",
        "3s",
        "--output",
        str(tmp_path / "industrial"),
        "--json",
        cwd=tmp_path,
    )
    assert industrial.returncode == 0, industrial.stderr
    assert json.loads(industrial.stdout)["use_case"] == "predictive_maintenance"


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["--label", "nope"], 6, "nope"),
        (["--label", "failure", "--time-budget", "soon"], 3, "time budget"),
        (["--label", "failure", "--use-case", "cooking"], 3, "unknown use case"),
        (["--label", "failure", "--target", "mars"], 3, "unknown target"),
    ],
)
def test_build_bad_arguments(table: Path, tmp_path: Path, args: list[str], code: int, needle: str) -> None:
    result = kepler("build", str(table), *args, "--output", str(tmp_path / "builds"), cwd=tmp_path)
    assert result.returncode == code, (result.stdout, result.stderr)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and needle in errors[0] and "Traceback" not in result.stderr
    assert (
        result.stderr == errors[0] + "\n"
    )  # the error alone: no progress bar of a search that never started
    assert not (tmp_path / "builds").exists()


def test_build_of_a_missing_table_prints_only_the_error(tmp_path: Path) -> None:
    result = kepler(
        "build",
        str(tmp_path / "missing.csv"),
        "--label",
        "failure",
        "--output",
        str(tmp_path / "builds"),
        cwd=tmp_path,
    )
    assert result.returncode == 6, (result.stdout, result.stderr)
    assert (
        result.stderr.startswith("error: ")
        and result.stderr.count("\n") == 1
        and "missing.csv" in result.stderr
    )
    assert result.stdout == "" and not (tmp_path / "builds").exists()


@pytest.mark.parametrize("toml", [None, '[build]\ndata = "sensors.csv"\n'], ids=["argument", "kepler.toml"])
def test_a_search_without_a_label_is_a_usage_error(table: Path, tmp_path: Path, toml: str | None) -> None:
    args = ["build", str(table)] if toml is None else ["build"]
    if toml is not None:
        (tmp_path / "sensors.csv").write_bytes(table.read_bytes())
        (tmp_path / "kepler.toml").write_text(toml)
    result = kepler(*args, "--target", "edge", "--output", str(tmp_path / "builds"), cwd=tmp_path)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stderr.startswith("error: a search needs the label column: add --label <column>")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert not (tmp_path / "builds").exists()


def test_build_reads_the_table_and_label_from_kepler_toml(table: Path, tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "sensors.csv").write_bytes(table.read_bytes())
    (tmp_path / "kepler.toml").write_text('[build]\ndata = "data/sensors.csv"\nlabel = "failure"\n')
    (
        tmp_path / "sub"
    ).mkdir()  # run from a subfolder: the file is found as git finds .git, data is relative to it
    result = kepler(
        "build", "--target", "edge", "--time-budget", "3s", "--no-track", "--json", cwd=tmp_path / "sub"
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (
        report["data"]["path"] == str(tmp_path / "data" / "sensors.csv")
        and report["data"]["label"] == "failure"
    )
    assert (
        only_build(tmp_path / "builds").name == report["build_id"]
    )  # beside kepler.toml, not in the subfolder
    assert list((tmp_path / "sub").iterdir()) == []


@pytest.mark.parametrize(
    ("toml", "needle"),
    [
        (None, "pass the data table"),
        ('[build]\nlabel = "failure"\n', 'add [build] data = "data/table.csv" to'),
        ('[build]\ndata = "data/none.csv"\n', "is not a file"),
        ('[build]\ndata = "x.csv"\nlable = "failure"\n', "unknown key lable in [build]"),
    ],
)
def test_build_without_a_table_says_where_to_name_it(tmp_path: Path, toml: str | None, needle: str) -> None:
    if toml is not None:
        (tmp_path / "kepler.toml").write_text(toml)
    result = kepler("build", "--target", "edge", "--output", str(tmp_path / "builds"), cwd=tmp_path)
    assert result.returncode == 6, (result.stdout, result.stderr)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and needle in errors[0] and "Traceback" not in result.stderr
    assert not (tmp_path / "builds").exists()
