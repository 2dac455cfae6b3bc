"""Everything that runs on the ``local[2]`` Spark, in one module so that the suite starts one JVM (the module's
fixture in spark.py; it stops the JVM at the module's end, leaving no py4j thread behind).

Builds with their trials on Spark (kepler.automl.spark): a compliant model, recorded as completely as a build on this
machine, and executors that cannot load the trial failing the build at once in one line. Scoring on Spark
(kepler.scoring.spark): the same predictions (≤ 1e-6) as in this process and as the artifact's own Predictor, a
release's id and sha256 in every row, the artifact checked by sha256 on the executors, and a wrong master refused in
seconds with one line. The refusals and what an executor receives, which need no JVM, are in test_build_spark.py.
"""

from __future__ import annotations

import importlib.util
import json
import socket
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

import kepler as kp
from kepler.automl.families import FAMILIES
from kepler.errors import ArtifactError, EndpointError, InputSchemaError, KeplerError

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning"),
]
BIN = Path(sys.executable).parent
SENSORS = Path(__file__).resolve().parents[2] / "examples" / "data" / "sensors.csv"
FAMILY_NAMES = ["logistic_regression", "decision_tree"]
PROBAS = ["proba_0", "proba_1", "proba_2"]


# -- builds with their trials on Spark ---------------------------------------------------------------------------


def test_a_build_on_spark_finds_a_compliant_model_and_records_it_completely(
    spark_session: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kepler.versioning.project import init

    init(tmp_path)
    (tmp_path / "data").mkdir()
    pd.read_csv(SENSORS).head(600).to_csv(tmp_path / "data" / "sensors.csv", index=False)
    monkeypatch.chdir(tmp_path)
    built = kp.build(
        "data/sensors.csv",
        label="failure",
        target="edge",
        time_budget=6,  # the search's; Spark's start and its workers' warm-up come on top
        seed=1,
        constraints={"families": FAMILY_NAMES},
        spark="local[2]",
        concurrent_trials=2,
    )
    report = built.report.to_dict()

    # Found on Spark, and the driver's re-measurement decided.
    assert report["search_isolation"] == "spark"
    assert report["spark"]["master"] == "local[2]" and report["spark"]["concurrent_trials"] == 2
    assert "re-measured on the driver" in report["spark"]["note"]
    assert report["trials"] and {t["family"] for t in report["trials"]} <= set(FAMILY_NAMES)
    assert report["deployment_ready"] is True
    assert all(row["ok"] for row in report["constraint_report"])
    assert report["constraint_report"][0]["measured"] == built.result["constraint_report"][0]["measured"]
    assert (built.path / "artifact" / "manifest.json").is_file()
    assert report["spark"]["note"].replace("'", "&#x27;") in (built.path / "report.html").read_text("utf-8")

    # The same records as a build on this machine: MLflow run with a child per trial, registered model, data
    # version, unified version, lineage.
    tracking = report["tracking"]
    client = MlflowClient(tracking_uri=kp.Project(".").tracking_uri)
    run = client.get_run(tracking["mlflow_run_id"])
    assert run.data.params["family"] == report["best_algorithm"]
    assert run.data.tags["kepler.data_versions"] == tracking["data_version"]
    children = client.search_runs(
        [run.info.experiment_id], f"tags.mlflow.parentRunId = '{run.info.run_id}'", max_results=1000
    )
    assert len(children) == len(report["trials"])
    model = tracking["registered_model"]
    assert client.get_model_version(model["name"], model["version"]).run_id == run.info.run_id
    unified = kp.versioning.get_unified_version(tracking["unified_version"])
    assert unified.mlflow_run_id == run.info.run_id
    assert unified.artifact_sha256 == report["artifact"]["sha256"]
    lineage = kp.versioning.get_complete_lineage(tracking["unified_version"])
    assert [step["node_id"] for step in lineage] == [tracking["data_version"], tracking["unified_version"]]
    assert not tracking["notes"]


def test_executors_that_cannot_load_the_trial_fail_the_build_at_once_in_one_line(
    spark_session: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kepler.automl.families import Family

    # A family only this process knows: an executor unpickling the search finds no such family, as one without
    # Kepler finds no such module.
    tree = FAMILIES.get("decision_tree")
    family = Family("only_on_the_driver", tree.build, tree.space, tree.tasks, tree.estimators)
    monkeypatch.setitem(FAMILIES._entries, family.name, family)
    table = tmp_path / "sensors.csv"
    pd.read_csv(SENSORS).head(300).to_csv(table, index=False)
    with pytest.raises(KeplerError) as raised:
        kp.build(
            table,
            label="failure",
            time_budget=60,
            constraints={"families": [family.name]},
            spark="local[2]",
            output=tmp_path / "builds",
            track=False,
        )
    message = str(raised.value)
    assert "executors of Spark local[2] cannot run Kepler's trials" in message and "\n" not in message
    assert "only_on_the_driver" in message and "pip install 'kepler-ml[spark]'" in message
    assert not (tmp_path / "builds").exists() or not any((tmp_path / "builds").iterdir())


# -- scoring on Spark ------------------------------------------------------------------------------------------


def _helpers() -> ModuleType:
    path = Path(__file__).resolve().parents[1] / "scoring" / "artifacts.py"
    spec = importlib.util.spec_from_file_location("kepler_tests_scale_scoring_artifacts", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


scoring = _helpers()


@pytest.fixture(scope="module")
def released(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A project whose release pm-1.0 names a unified version with a compiled artifact; its tables."""
    from kepler.versioning.project import init
    from kepler.versioning.releases import create_release
    from kepler.versioning.unified import create_unified_version

    root = tmp_path_factory.mktemp("score") / "proj"
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        patch.setenv("DVC_NO_ANALYTICS", "1")
        init(root)
        patch.chdir(root)
        built = scoring.compile_artifact(root / "builds" / "b1" / "artifact")
        create_unified_version("b1-build", artifact=built.artifact, metadata={"build_path": "builds/b1"})
        create_release("pm-1.0", "1.0.0", unified_version="b1-build", model_line="pm")
        tables = root / "tables"
        (tables / "parts").mkdir(parents=True)
        frame = scoring.table(2400, seed=5)
        frame.to_csv(tables / "rows.csv", index=False)
        for i, part in enumerate(np.array_split(np.arange(len(frame)), 3)):
            frame.iloc[part].to_parquet(tables / "parts" / f"part-{i}.parquet")
        yield root, built.artifact, frame


def _read(output: Path) -> pd.DataFrame:
    """An output file, or a Spark output folder's part files."""
    if output.suffix == ".parquet":
        return pd.read_parquet(output)
    parts = sorted(output.glob("part-*.csv")) if output.is_dir() else [output]
    return pd.concat([pd.read_csv(p) for p in parts], ignore_index=True)


def _parity(artifact: Path, source: pd.DataFrame, out: pd.DataFrame) -> None:
    labels, probabilities = scoring.reference(artifact, source)
    np.testing.assert_allclose(out[PROBAS].to_numpy(dtype=np.float64), probabilities, atol=1e-6, rtol=0)
    np.testing.assert_array_equal(out["prediction"].to_numpy(), labels)


def test_spark_and_local_scoring_equal_the_predictor(
    spark_session: Any, released: Any, tmp_path: Path
) -> None:
    root, artifact, frame = released
    sha = kp.runtimes.read_artifact(artifact).manifest.sha256
    tables = root / "tables"
    outputs = {}
    for name, source, spark in (
        ("spark-parquet", tables / "parts", spark_session),
        ("spark-csv", tables / "rows.csv", "local[2]"),  # the active session of that master is reused
        ("local-csv", tables / "rows.csv", None),
    ):
        suffix = ".csv" if name.endswith("csv") else ".parquet"
        result = kp.score(
            "pm-1.0",
            source,
            tmp_path / f"{name}{suffix}",
            spark=spark,
            keep=["id"],
            project=root,
            batch_size=500,
        )
        out = _read(Path(result.output))
        outputs[name] = out.assign(id=out["id"].astype(np.int64)).sort_values("id").reset_index(drop=True)
        assert result.rows == len(frame) and result.model_kind == "release", name
        assert result.engine == ("local" if spark is None else "spark:local[2]")
    for name, out in outputs.items():
        assert out["id"].tolist() == list(range(len(frame))), name
        _parity(artifact, frame, out)
        assert set(out["model_id"]) == {"pm-1.0"} and set(out["model_sha256"]) == {sha}, name
        assert list(out.columns) == ["id", "prediction", *PROBAS, "model_id", "model_sha256"], name
    assert (tmp_path / "spark-parquet.parquet" / "_SUCCESS").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left


def test_a_tampered_artifact_is_refused_on_the_executor(
    spark_session: Any, released: Any, tmp_path: Path
) -> None:
    from kepler.scoring.model import resolve_model
    from kepler.scoring.spark import score_on_spark, ship
    from kepler.scoring.tables import open_input

    root, artifact, _ = released
    model = resolve_model(artifact)
    shipped = ship(model, [], threads=1, text_input=False)
    name = shipped.model_file
    altered = replace(shipped, files={**shipped.files, name: shipped.files[name] + b"\x00"})
    output = tmp_path / "scores.parquet"
    with pytest.raises(
        ArtifactError, match=r"on the Spark executor: the shipped model's sha256 .* is not the"
    ):
        score_on_spark(
            model,
            open_input(root / "tables" / "parts"),
            str(output),
            spark=spark_session,
            keep=[],
            batch_rows=500,
            overwrite=False,
            shipped=altered,
        )
    assert not output.exists() and not [p for p in tmp_path.iterdir()]


def test_bad_rows_and_missing_columns_on_spark(spark_session: Any, released: Any, tmp_path: Path) -> None:
    _, artifact, frame = released
    broken = frame.astype({"line": object})
    broken.loc[7, "line"] = None  # the model's categorical column takes no missing value
    broken.to_parquet(tmp_path / "broken.parquet")
    with pytest.raises(
        InputSchemaError, match=r"on the Spark executor: column 'line' is categorical and takes no missing"
    ):
        kp.score(artifact, tmp_path / "broken.parquet", tmp_path / "out.parquet", spark=spark_session)
    frame.drop(columns=["rpm"]).to_parquet(tmp_path / "narrow.parquet")
    with pytest.raises(InputSchemaError, match=r"narrow\.parquet: missing columns 'rpm'"):
        kp.score(artifact, tmp_path / "narrow.parquet", tmp_path / "out.parquet", spark=spark_session)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.parquet", "narrow.parquet"]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_wrong_master_fails_in_seconds_with_one_line(released: Any, tmp_path: Path) -> None:
    _, artifact, _ = released
    master = f"spark://127.0.0.1:{_closed_port()}"
    with pytest.raises(
        EndpointError,
        match=rf"Spark master {master} cannot be reached at 127\.0\.0\.1:\d+ \(connection refused\)",
    ):
        kp.score(artifact, tmp_path / "missing.parquet", tmp_path / "out", spark=master)
    source = tmp_path / "rows.parquet"
    scoring.table(10).to_parquet(source)
    for given, expected, code in (
        (master, f"error: Spark master {master} cannot be reached", EndpointError.exit_code),
        ("sprak://host:7077", "error: Spark master 'sprak://host:7077' is not a master URL", 1),
    ):
        done = subprocess.run(
            [
                str(BIN / "kepler"),
                "score",
                str(artifact),
                str(source),
                "--output",
                str(tmp_path / "out"),
                "--spark",
                given,
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == code, done.stderr
        assert done.stderr.strip().splitlines() == [done.stderr.strip()] and done.stderr.startswith(
            expected
        ), done.stderr
        assert "Traceback" not in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rows.parquet"]
    done = subprocess.run(
        [
            str(BIN / "kepler"),
            "score",
            str(artifact),
            str(source),
            "-o",
            str(tmp_path / "out.csv"),
            "--keep",
            "id",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert (answer["rows"], answer["engine"], answer["model_kind"]) == (10, "local", "artifact")
    assert pd.read_csv(tmp_path / "out.csv")["id"].tolist() == list(range(10))
