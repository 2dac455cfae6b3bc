"""The main job on tables nobody here made: scikit-learn's bundled tables, generated tables with hostile
headers, and a mixed machine log. Each builds for edge; the artifact answers raw rows, keyed by the original
headers and carrying the columns the build dropped, exactly as the native model does."""

from __future__ import annotations

import importlib.util
import json
import math
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import kepler as kp
from kepler.automl.run import split_test

_CORPUS = Path(__file__).resolve().parents[1] / "benchmarks" / "corpus.py"
_spec = importlib.util.spec_from_file_location("kepler_corpus", _CORPUS)
corpus = importlib.util.module_from_spec(_spec)
sys.modules["kepler_corpus"] = corpus  # dataclasses look their module up there
_spec.loader.exec_module(corpus)  # type: ignore[union-attr]

# A short search, with room for a trial while the other test worker is busy: the test checks that
# every table builds and answers, not the score.
BUDGET_S = 4
NAMES = [*corpus.SKLEARN_TABLES, *(f"headers_{kind}" for kind in corpus.HEADER_KINDS), "mixed"]


@pytest.fixture(scope="module")
def tables(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return {table.name: table for table in corpus.write_corpus(tmp_path_factory.mktemp("corpus"))}


def raw_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as a client sends them: every column of the source table, missing values as null."""
    rows = frame.astype(object).to_dict(orient="records")
    return [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()} for row in rows
    ]


def held_out(table: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The build's held-out test rows: typed (as the native model was fit) and raw (as the CSV holds them)."""
    dataset = kp.data.load(table.path, label=table.label)
    _, _, x_test, _ = split_test(dataset.frame, dataset.label, dataset.task, 0)
    raw = pd.read_csv(table.path)
    return x_test, raw.loc[x_test.index]


@pytest.mark.parametrize("name", NAMES)
def test_every_table_builds_and_answers_raw_rows_like_the_native_model(
    name: str, tables: dict[str, Any], tmp_path: Path
) -> None:
    table = tables[name]
    built = kp.build(
        str(table.path), label=table.label, target="edge", time_budget=BUDGET_S, output=tmp_path, track=False
    )
    report = built.report
    assert (built.path / "report.html").is_file() and (built.artifact_path / "model.onnx").is_file()
    assert report["deployment_ready"] and report["artifact"]["parity"]["passed"]
    assert all(row["ok"] for row in report["constraint_report"])

    # The manifest keeps the headers as they are; the graph's names are Kepler's own.
    manifest = json.loads((built.artifact_path / "manifest.json").read_text(encoding="utf-8"))
    header = list(pd.read_csv(table.path, nrows=0).columns)
    inputs = [column["name"] for column in manifest["input_schema"]["columns"]]
    assert set(inputs) <= set(header) and inputs
    assert set(manifest["input_schema"].get("ignored_columns", [])) >= {table.label, *table.dropped}
    dropped = set(report["data"]["dropped_columns"])
    assert set(table.dropped) <= dropped

    # Held-out rows, sent raw with every column of the source table (label and dropped columns included),
    # give the native model's answers.
    typed, raw = held_out(table)
    native = built.result.model
    predictor = kp.runtimes.load(built.artifact_path)
    records = raw_records(raw)
    expected = native.predict(typed)
    if table.task == "classification":
        expected = built.result.labels_of(expected)  # the native Pipeline predicts label codes
        np.testing.assert_array_equal(predictor.predict(records), expected)
        np.testing.assert_allclose(
            predictor.predict_proba(records), native.predict_proba(typed), atol=1e-5, rtol=1e-4
        )
    else:
        np.testing.assert_allclose(predictor.predict(records), expected, rtol=1e-5, atol=1e-6)


def test_the_cli_builds_a_table_with_bracketed_headers(tables: dict[str, Any], tmp_path: Path) -> None:
    table = tables["headers_brackets"]
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "kepler"),
            "build",
            str(table.path),
            "--label",
            table.label,
            "--target",
            "edge",
            "--time-budget",
            f"{BUDGET_S}s",
            "--output",
            str(tmp_path),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert report["deployment_ready"] and report["data"]["label"] == "failure [brackets]"


def test_a_served_release_answers_rows_as_they_stand_in_the_source_table(
    tables: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Build, release, reproduce and serve the mixed table (brackets, text label, dropped columns) for real."""
    import httpx

    from kepler.versioning.project import init
    from kepler.versioning.releases import create_release

    table = tables["mixed"]
    root = tmp_path / "plant"
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("BENTOML_HOME", raising=False)
    init(root)
    (root / "data").mkdir()
    (root / "data" / "machine log.csv").write_bytes(table.path.read_bytes())
    monkeypatch.chdir(root)
    built = kp.build("data/machine log.csv", label=table.label, target="edge", time_budget=BUDGET_S)
    unified = built.report["tracking"]["unified_version"]
    create_release("log-1.0", "1.0.0", unified_version=unified, model_line="log")

    reproduced = kp.reproduce.from_version(unified)
    assert reproduced.success, reproduced.error_message

    _, raw = held_out(table)
    records = raw_records(raw.head(20))
    local = kp.runtimes.load(built.path / "artifact")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    deployed = kp.deploy("log-1.0", platform="local", port=port)
    try:
        with httpx.Client(base_url=deployed.url, timeout=30) as client:
            answer = client.post("/predict", json=records)
            assert answer.status_code == 200, answer.text[:500]
            assert answer.json() == local.predict(records).tolist()
            assert set(answer.json()) <= {"ok", "warning", "failure"}
            proba = client.post("/predict_proba", json=records)
            assert proba.status_code == 200, proba.text[:500]
            np.testing.assert_array_equal(np.asarray(proba.json()), local.predict_proba(records))
            meta = client.get("/metadata").json()
        assert "Air temperature [K]" in [column["name"] for column in meta["model"]["inputs"]]
    finally:
        from kepler.deployment import stop

        stop(port, bentoml_home=root / ".kepler" / "bentoml")
