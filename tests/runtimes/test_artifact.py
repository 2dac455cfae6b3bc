"""The compiled artifact on disk: what kp.compile writes, what the manifest holds, and how
loading refuses tampered, corrupted or foreign folders."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

import kepler as kp
import kepler.runtimes as kr
from kepler.errors import ArtifactError, ParityError
from kepler.runtimes import read_artifact, sha256_file
from kepler.runtimes.manifest import FORMAT_VERSION, Manifest
from kepler.targets import ParityTolerance, load_profile

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture
def scratch(tmp_path, monkeypatch) -> Path:
    """Makes kp.compile stage its files under tmp_path, so tests can see what it leaves behind."""
    folder = tmp_path / "scratch"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


@pytest.fixture(scope="module")
def compiled(industrial, full_preprocessing, tmp_path_factory) -> dict[str, Any]:
    """One forest pipeline compiled with its benchmark, shared (read-only) by the manifest tests."""
    model = Pipeline(
        full_preprocessing("classifier")
        + [("model", RandomForestClassifier(n_estimators=11, max_depth=5, random_state=3))]
    ).fit(industrial.frame, industrial.failure)
    output = tmp_path_factory.mktemp("compiled") / "artifact"
    artifact = kp.compile(model, target="edge", sample=industrial.frame, output=output)
    return {"model": model, "artifact": artifact, "path": output}


def _copy_artifact(source: Path, destination: Path) -> Path:
    import shutil

    shutil.copytree(source, destination)
    return destination


def test_compile_writes_model_manifest_and_probe(compiled):
    path = compiled["path"]
    assert sorted(p.name for p in path.iterdir()) == [
        "manifest.json",
        "model.onnx",
        "probe.json",
        "reference.json",
    ]
    assert compiled["artifact"].path == path
    leftovers = [p.name for p in path.parent.iterdir() if p.name != "artifact"]
    assert leftovers == []  # no staging or retired folders beside it


def test_manifest_on_disk_equals_the_returned_one(compiled):
    on_disk = json.loads((compiled["path"] / "manifest.json").read_text(encoding="utf-8"))
    assert on_disk == json.loads(json.dumps(compiled["artifact"].manifest.to_dict()))
    assert on_disk["format_version"] == FORMAT_VERSION == 2
    assert Manifest.from_dict(on_disk) == compiled["artifact"].manifest


def test_manifest_schemas(compiled, industrial):
    manifest = compiled["artifact"].manifest
    columns = {c.name: c for c in manifest.input_schema.columns}
    assert list(columns) == list(industrial.frame.columns)
    assert {n: c.kind for n, c in columns.items()} == {
        "temperature": "numeric",
        "pressure": "numeric",
        "vibration": "numeric",
        "rpm": "numeric",
        "line": "categorical",
    }
    assert columns["temperature"].dtype == "float64"
    assert columns["line"].dtype == "string"
    assert columns["line"].categories == ("east", "north", "south")
    assert columns["line"].allow_unknown is True
    outputs = manifest.output_schema
    assert outputs.task == "classifier"
    assert outputs.classes == (0, 1)
    assert outputs.outputs == ("label", "probabilities")


def test_manifest_source_target_and_passes(compiled):
    manifest = compiled["artifact"].manifest
    source = manifest.source
    assert source.type == "sklearn.pipeline.Pipeline"
    assert source.estimator == "RandomForestClassifier"
    assert source.library == "sklearn"
    assert source.role == "classifier"
    assert source.params["n_estimators"] == 11 and source.params["max_depth"] == 5
    assert "OneHotEncoder" in source.steps and source.steps[-1] == "RandomForestClassifier"
    assert manifest.seed == 3
    assert manifest.target.name == "edge" and manifest.target.threads == 1
    assert manifest.target.latency_p99_ms == 50.0
    assert manifest.target == load_profile("edge")
    assert [p.name for p in manifest.passes] == ["ort_optimize", "prune_unused", "embed_metadata"]
    assert all(p.nodes_after <= p.nodes_before for p in manifest.passes)
    assert manifest.session.intra_op_num_threads == 1


def test_manifest_sha256_size_and_environment(compiled):
    manifest = compiled["artifact"].manifest
    model_path = compiled["path"] / "model.onnx"
    assert manifest.model_file == "model.onnx"
    assert manifest.sha256 == sha256_file(model_path)
    assert manifest.size_bytes == model_path.stat().st_size
    libraries = manifest.environment.libraries
    for name in (
        "onnx",
        "onnxruntime",
        "scikit-learn",
        "skl2onnx",
        "onnxmltools",
        "numpy",
        "xgboost",
        "lightgbm",
    ):
        assert isinstance(libraries[name], str) and libraries[name][0].isdigit(), name
    assert manifest.environment.machine.cpu
    assert manifest.environment.machine.cores >= 1
    assert manifest.format_version == 2
    assert manifest.opset["ai.onnx.ml"] >= 1


def test_manifest_parity_report(compiled, industrial):
    report = compiled["artifact"].parity
    assert report.passed is True
    assert report.rows == len(industrial.frame)
    assert report.label_agreement == 1.0
    assert 0 <= report.max_abs_diff < 1e-5
    assert report.rows_out_of_tolerance == 0
    assert report.tolerance == ParityTolerance(atol=1e-4, rtol=1e-3, min_label_agreement=1.0)
    assert len(report.worst_rows) <= 5


def test_manifest_benchmark_report(compiled):
    report = compiled["artifact"].benchmark
    assert report is not None
    assert report.target == "edge" and report.threads == 1
    assert [b.batch for b in report.batches] == [1, 100, 10000]
    for batch in report.batches:
        assert 0 < batch.p50_ms <= batch.p95_ms <= batch.p99_ms
        assert batch.iterations >= 1 and batch.throughput_rows_s > 0
    assert report.budgets["latency_p99_ms"].limit == 50.0
    assert report.budgets["size_mb"].ok is True
    assert report.size_mb == pytest.approx(compiled["artifact"].size_bytes / 2**20)


def test_probe_rows_hold_raw_values_with_null_for_missing(compiled, industrial):
    probe = compiled["artifact"].probe()
    head = industrial.frame.head(200)
    assert len(industrial.frame) > 200
    assert sorted(probe) == sorted(industrial.frame.columns)
    assert all(len(values) == 200 for values in probe.values())  # the first 200 rows of the sample
    assert [v is None for v in probe["temperature"]] == head["temperature"].isna().tolist()
    assert any(v is None for v in probe["temperature"])
    assert probe["line"] == head["line"].tolist()
    np.testing.assert_array_equal(np.array(probe["rpm"], dtype=float), head["rpm"].to_numpy())
    predictor = compiled["artifact"].predictor()
    np.testing.assert_array_equal(
        predictor.predict(probe), compiled["model"].predict(industrial.frame.head(200))
    )


def test_load_from_the_folder_gives_the_same_predictions(compiled, industrial):
    predictor = kr.load(compiled["path"])
    np.testing.assert_array_equal(
        predictor.predict_proba(industrial.frame),
        compiled["artifact"].predictor().predict_proba(industrial.frame),
    )


def test_tampered_model_file_is_refused(compiled, tmp_path):
    path = _copy_artifact(compiled["path"], tmp_path / "copy")
    model_path = path / "model.onnx"
    data = bytearray(model_path.read_bytes())
    data[len(data) // 2] ^= 0x01
    model_path.write_bytes(bytes(data))

    for opener in (kr.load, read_artifact, kr.benchmark):
        with pytest.raises(ArtifactError) as caught:
            opener(path)
        assert "sha256" in str(caught.value) and str(model_path) in str(caught.value)
    assert read_artifact(path, verify=False).manifest.sha256 != sha256_file(model_path)


@pytest.mark.parametrize(
    "content, expected",
    [
        ("{not json", "corrupted manifest"),
        ("", "corrupted manifest"),
        ("[1, 2]", "not a JSON object"),
        ('{"format_version": 1}', "manifest lacks model_file, sha256, input_schema, output_schema, target"),
    ],
    ids=["syntax", "empty", "array", "incomplete"],
)
def test_corrupted_manifest_names_the_file(content, expected, compiled, tmp_path):
    path = _copy_artifact(compiled["path"], tmp_path / "copy")
    (path / "manifest.json").write_text(content, encoding="utf-8")
    with pytest.raises(ArtifactError) as caught:
        kr.load(path)
    assert str(path / "manifest.json") in str(caught.value)
    assert expected in str(caught.value)


def test_manifest_of_another_format_version(compiled, tmp_path):
    path = _copy_artifact(compiled["path"], tmp_path / "copy")
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["format_version"] = 99
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="format 99 is not supported"):
        kr.load(path)


def test_model_file_outside_the_folder_is_refused(compiled, tmp_path):
    path = _copy_artifact(compiled["path"], tmp_path / "copy")
    (tmp_path / "evil.onnx").write_bytes((path / "model.onnx").read_bytes())
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["model_file"] = "../evil.onnx"
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="model file missing"):
        kr.load(path)


def test_missing_model_file(compiled, tmp_path):
    path = _copy_artifact(compiled["path"], tmp_path / "copy")
    (path / "model.onnx").unlink()
    with pytest.raises(ArtifactError, match="model file missing"):
        kr.load(path)


def test_folder_without_manifest(tmp_path):
    (tmp_path / "model.onnx").write_bytes(b"")
    with pytest.raises(ArtifactError, match="not a Kepler artifact"):
        kr.load(tmp_path)


def test_corrupted_probe(compiled, tmp_path):
    path = _copy_artifact(compiled["path"], tmp_path / "copy")
    (path / "probe.json").write_text("{", encoding="utf-8")
    with pytest.raises(ArtifactError, match="unreadable probe data"):
        read_artifact(path).probe()


@pytest.mark.parametrize("kind", ["file", "folder_with_files"])
def test_output_that_exists_and_is_not_an_artifact(kind, industrial, tmp_path, scratch):
    output = tmp_path / "out"
    if kind == "file":
        output.write_text("keep me", encoding="utf-8")
    else:
        output.mkdir()
        if kind == "folder_with_files":
            (output / "notes.txt").write_text("keep me", encoding="utf-8")
    before = sorted(p.name for p in tmp_path.iterdir())
    model = LogisticRegression(max_iter=2000).fit(industrial.numeric_filled, industrial.failure)

    with pytest.raises(ArtifactError, match="exists and is not a Kepler artifact"):
        kp.compile(model, target="edge", sample=industrial.numeric_filled, output=output)

    assert sorted(p.name for p in tmp_path.iterdir()) == before
    if kind == "file":
        assert output.read_text(encoding="utf-8") == "keep me"
    elif kind == "folder_with_files":
        assert [p.name for p in output.iterdir()] == ["notes.txt"]
    assert list(scratch.iterdir()) == []


def test_recompiling_into_an_artifact_folder_replaces_it(industrial, tmp_path, scratch):
    output = tmp_path / "out"
    rows = industrial.numeric_filled
    first = kp.compile(
        LogisticRegression(max_iter=2000).fit(rows, industrial.failure),
        target="edge",
        sample=rows,
        output=output,
        benchmark=False,
    )
    second = kp.compile(
        RandomForestClassifier(n_estimators=5, random_state=0).fit(rows, industrial.failure),
        target="edge",
        sample=rows,
        output=output,
        benchmark=False,
    )
    assert first.manifest.sha256 != second.manifest.sha256
    assert kr.load(output).manifest.source.estimator == "RandomForestClassifier"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "scratch"]
    assert list(scratch.iterdir()) == []


def test_parity_failure_leaves_nothing_behind(industrial, tmp_path, scratch):
    strict = tmp_path / "strict.toml"
    strict.write_text(
        'name = "strict"\nthreads = 1\nmemory_mb = 256\nlatency_p99_ms = 50\nsize_mb = 10\n'
        'batch_sizes = [1]\nartifact_format = "onnx"\npasses = ["prune_unused"]\n'
        "[parity]\natol = 0.0\nrtol = 0.0\nmin_label_agreement = 1.0\n",
        encoding="utf-8",
    )
    rows = industrial.numeric_filled
    # Forest probabilities are summed in float32 in the graph and in float64 natively.
    model = RandomForestClassifier(n_estimators=13, max_depth=6, random_state=0).fit(rows, industrial.failure)
    output = tmp_path / "artifact"

    with pytest.raises(ParityError) as caught:
        kp.compile(model, target=strict, sample=rows, output=output)

    report = caught.value.report
    assert report["passed"] is False and report["rows_out_of_tolerance"] > 0
    assert report["label_agreement"] == 1.0
    assert 0 < report["max_abs_diff"] < 1e-6
    assert report["worst_rows"] and report["worst_rows"][0]["abs_diff"] == report["max_abs_diff"]
    assert "strict" in str(caught.value) and "rows out of tolerance" in str(caught.value)
    assert not output.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scratch", "strict.toml"]
    assert list(scratch.iterdir()) == []


def test_compile_without_output_returns_a_private_folder(industrial, scratch):
    rows = industrial.numeric_filled
    model = LogisticRegression(max_iter=2000).fit(rows, industrial.failure)
    artifact = kp.compile(model, target="edge", sample=rows, benchmark=False)
    assert artifact.path.parent == scratch
    assert read_artifact(artifact.path).manifest.sha256 == artifact.manifest.sha256


def test_compile_into_an_existing_empty_folder(industrial, tmp_path):
    output = tmp_path / "out"
    output.mkdir()
    model = LogisticRegression(max_iter=2000).fit(industrial.numeric_filled, industrial.failure)
    artifact = kp.compile(
        model, target="edge", sample=industrial.numeric_filled, output=output, benchmark=False
    )
    assert artifact.path == output
    assert sorted(p.name for p in output.iterdir()) == [
        "manifest.json",
        "model.onnx",
        "probe.json",
        "reference.json",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


@pytest.mark.integration
def test_private_folder_is_removed_when_the_process_exits(tmp_path):
    code = (
        "import sys, numpy as np, kepler as kp\n"
        "from sklearn.linear_model import LogisticRegression\n"
        "x = np.random.default_rng(0).normal(size=(200, 3)); y = (x[:, 0] > 0).astype(int)\n"
        "artifact = kp.compile(LogisticRegression().fit(x, y), 'edge', x, benchmark=False)\n"
        "assert (artifact.path / 'model.onnx').is_file()\n"
        "kept = artifact.save(sys.argv[1])\n"
        "print(artifact.path)\n"
    )
    result = subprocess.run(
        [sys.executable, "-P", "-c", code, str(tmp_path / "kept")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    private = Path(result.stdout.strip().splitlines()[-1])
    assert private.name.startswith("kepler-artifact-")
    assert not private.exists()
    assert (tmp_path / "kept" / "model.onnx").is_file()


def test_save_copies_a_verified_artifact(compiled, tmp_path):
    copy = compiled["artifact"].save(tmp_path / "saved")
    assert copy.path == tmp_path / "saved"
    assert copy.manifest.sha256 == compiled["artifact"].manifest.sha256
    assert sorted(p.name for p in copy.path.iterdir()) == [
        "manifest.json",
        "model.onnx",
        "probe.json",
        "reference.json",
    ]
    assert compiled["path"].exists()  # the source stays
    assert "edge" in repr(copy)


def test_ort_format_artifact(industrial, tmp_path, parity):
    profile = tmp_path / "ort.toml"
    profile.write_text(
        'name = "ort-edge"\nthreads = 1\nmemory_mb = 256\nlatency_p99_ms = 50\nsize_mb = 10\n'
        'batch_sizes = [1]\nartifact_format = "ort"\npasses = ["prune_unused"]\n',
        encoding="utf-8",
    )
    rows = industrial.numeric_filled.to_numpy()
    model = RandomForestClassifier(n_estimators=7, max_depth=5, random_state=0).fit(rows, industrial.failure)

    artifact = kp.compile(model, target=profile, sample=rows, output=tmp_path / "artifact", benchmark=False)

    assert artifact.manifest.model_file == "model.ort"
    assert sorted(p.name for p in artifact.path.iterdir()) == [
        "manifest.json",
        "model.ort",
        "probe.json",
        "reference.json",
    ]
    assert artifact.manifest.sha256 == sha256_file(artifact.path / "model.ort")
    parity(model, kr.load(artifact.path), rows, "classifier")
