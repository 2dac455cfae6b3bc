"""The manifest's schema (kepler.runtimes.manifest): typed records of format 2, artifacts of format 1 that still
load and predict, missing words stored once, the profile an artifact was compiled for, and no reader of the
manifest by key outside its module."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import kepler as kp
import kepler.runtimes as kr
from kepler.errors import ArtifactError, ProfileError
from kepler.runtimes.manifest import (
    FORMAT_VERSION,
    Column,
    InputSchema,
    Manifest,
    profile_from_manifest,
    profile_from_record,
    read_manifest,
)
from kepler.targets import load_profile, profile_from_dict

V1 = Path(__file__).parent / "data" / "manifest_v1"
ROOT = Path(__file__).parents[2]
PANDAS_WORDS = [
    "#N/A",
    "#N/A N/A",
    "#NA",
    "-1.#IND",
    "-1.#QNAN",
    "-NaN",
    "-nan",
    "1.#IND",
    "1.#QNAN",
    "<NA>",
    "N/A",
    "NA",
    "NULL",
    "NaN",
    "None",
    "n/a",
    "nan",
    "null",
]


def _raw(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((V1 / name / "manifest.json").read_text(encoding="utf-8"))
    return data


def _expected(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((V1 / name / "expected.json").read_text(encoding="utf-8"))
    return data


# --------------------------------------------------------------------------- format 1, as an older Kepler wrote it


def test_the_fixtures_are_format_1() -> None:
    assert FORMAT_VERSION == 2
    assert _raw("classifier")["format_version"] == _raw("regressor")["format_version"] == 1
    columns = _raw("classifier")["input_schema"]["columns"]
    assert all(len(c["missing_words"]) >= 18 for c in columns)  # each column repeats the reader's words


def test_a_format_1_classifier_loads_and_predicts_as_its_native_model() -> None:
    predictor = kr.load(V1 / "classifier")  # verifies the model file's sha256 against the format 1 manifest
    probe = predictor.artifact.probe()
    expected = _expected("classifier")
    assert predictor.profile == profile_from_manifest(predictor.manifest)
    assert predictor.profile.name == "edge" and predictor.profile.threads == 1
    assert predictor.predict(probe).tolist() == expected["labels"]
    np.testing.assert_allclose(predictor.predict_proba(probe), expected["probabilities"], atol=1e-6)
    assert predictor.classes_.tolist() == ["fail", "ok"] and predictor.ignored_columns == ["id", "status"]


def test_a_format_1_regressor_loads_and_predicts_as_its_native_model() -> None:
    predictor = kr.load(V1 / "regressor")
    expected = _expected("regressor")
    np.testing.assert_allclose(predictor.predict(np.asarray(expected["rows"])), expected["values"], rtol=1e-6)
    assert predictor.profile.name == "cloud" and predictor.task == "regressor"


@pytest.mark.parametrize("name", ["classifier", "regressor"])
def test_a_format_1_manifest_reads_into_the_typed_records_with_its_values(name: str) -> None:
    raw = _raw(name)
    manifest = read_manifest(V1 / name)
    assert manifest.kepler_version == raw["kepler_version"] and manifest.created_at == raw["created_at"]
    assert (manifest.model_file, manifest.sha256, manifest.size_bytes) == (
        raw["model_file"],
        raw["sha256"],
        raw["size_bytes"],
    )
    assert manifest.opset == raw["opset"] and manifest.seed == raw["seed"]
    assert manifest.precision == raw["precision"]
    assert manifest.source.to_dict() == raw["source"]
    assert manifest.source.estimator == raw["source"]["estimator"]
    assert manifest.session.to_dict() == raw["session"]
    assert [p.to_dict() for p in manifest.passes] == raw["passes"]
    assert manifest.environment.to_dict() == raw["environment"]
    assert manifest.output_schema.to_dict() == raw["output_schema"]
    assert manifest.parity is not None and manifest.parity.to_dict() == raw["parity"]
    recorded = {k: v for k, v in raw["target"].items() if k != "source"}
    assert manifest.target == dataclasses.replace(
        profile_from_dict(recorded, "x"), source=raw["target"]["source"]
    )
    assert manifest.target.to_dict() == raw["target"]
    if "benchmark" in raw:
        assert manifest.benchmark is not None and manifest.benchmark.to_dict() == raw["benchmark"]
        assert manifest.benchmark.batch(1) is not None
    else:
        assert manifest.benchmark is None
    schema = manifest.input_schema.to_dict()
    for key in ("by_name", "numeric", "categorical", "estimator_family", "converter_float"):
        assert schema[key] == raw["input_schema"][key], key
    assert list(manifest.input_schema.ignored_columns) == raw["input_schema"].get("ignored_columns", [])


def test_format_1_missing_words_move_to_the_schema_and_every_column_reads_the_same() -> None:
    raw = _raw("classifier")
    schema = read_manifest(V1 / "classifier").input_schema
    assert list(schema.missing_words) == PANDAS_WORDS  # the CSV reader's words, once
    own = {c.name: c.missing_words for c in schema.columns}
    assert own["rpm"] == own["line"] == ()
    assert "—" in own["temp [C]"] and "n.a." in own["temp [C]"] and "NA" not in own["temp [C]"]
    for recorded in raw["input_schema"]["columns"]:  # what each column reads as missing is unchanged
        assert schema.words(schema.column(recorded["name"])) == set(recorded["missing_words"])
    # And the runtime reads them so: text a column holds for a gap is a gap, as null is.
    predictor = kr.load(V1 / "classifier")
    gaps = [
        {"temp [C]": "n.a.", "rpm": 1200, "line": "NA"},
        {"temp [C]": " — ", "rpm": "NULL", "line": "north"},
        {"temp [C]": "NaN", "rpm": 1200, "line": None},
    ]
    nulls = [
        {"temp [C]": None, "rpm": 1200, "line": None},
        {"temp [C]": None, "rpm": None, "line": "north"},
        {"temp [C]": None, "rpm": 1200, "line": None},
    ]
    for name, value in predictor.feed(gaps).items():
        np.testing.assert_array_equal(value, predictor.feed(nulls)[name])


def test_a_format_1_manifest_is_written_back_as_format_2() -> None:
    manifest = read_manifest(V1 / "classifier")
    written = manifest.to_dict()
    assert written["format_version"] == manifest.format_version == 2
    assert written["input_schema"]["missing_words"] == PANDAS_WORDS
    assert all(
        "missing_words" not in c for c in written["input_schema"]["columns"] if c["name"] != "temp [C]"
    )
    assert Manifest.from_dict(json.loads(json.dumps(written))) == manifest
    assert len(json.dumps(written)) < len(json.dumps(_raw("classifier")))


# --------------------------------------------------------------------------- format 2, as kp.compile writes it


@pytest.mark.integration  # kp.compile describes the machine: platform runs `uname -p`
def test_compile_stores_the_readers_missing_words_once(tmp_path: Path) -> None:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder
    from sklearn.tree import DecisionTreeClassifier

    rng = np.random.default_rng(0)
    table = tmp_path / "table.csv"
    lines = ["temp,line,failure"] + [
        f"{'NA' if i % 17 == 0 else round(60 + rng.normal() * 5, 2)},{'NULL' if i % 13 == 0 else 'ab'[i % 2]},"
        f"{i % 3 == 0:d}"
        for i in range(90)
    ]
    table.write_text("\n".join(lines) + "\n", encoding="utf-8")
    dataset = kp.data.load(table, label="failure")
    model = Pipeline(
        [
            (
                "columns",
                ColumnTransformer(
                    [
                        ("num", SimpleImputer(), ["temp"]),
                        ("cat", OneHotEncoder(handle_unknown="ignore"), ["line"]),
                    ]
                ),
            ),
            ("tree", DecisionTreeClassifier(max_depth=3, random_state=0)),
        ]
    ).fit(dataset.frame, dataset.label)
    artifact = kp.compile(
        model,
        sample=dataset.frame,
        output=tmp_path / "artifact",
        benchmark=False,
        input_typing=dataset.input_typing(),
    )
    on_disk = json.loads((artifact.path / "manifest.json").read_text(encoding="utf-8"))
    assert on_disk["format_version"] == 2
    assert on_disk["input_schema"]["missing_words"] == PANDAS_WORDS
    assert all("missing_words" not in c for c in on_disk["input_schema"]["columns"])
    assert on_disk["input_schema"]["ignored_columns"] == ["failure"]
    predictor = kr.load(artifact.path)
    np.testing.assert_array_equal(
        predictor.predict([{"temp": "NA", "line": "NULL"}]), predictor.predict([{"temp": None, "line": None}])
    )


def test_sharing_missing_words_moves_only_words_every_column_holds() -> None:
    schema = InputSchema(
        columns=(
            Column("a", "numeric", "float64", missing_words=("NA", "-", "?")),
            Column("b", "categorical", "string", missing_as="missing", missing_words=("?", "NA")),
            Column("c", "numeric", "float64", missing_words=("NA", "?", "n.a.")),
        )
    )
    shared = schema.sharing_missing_words()
    assert shared.missing_words == ("NA", "?")
    assert [c.missing_words for c in shared.columns] == [("-",), (), ("n.a.",)]
    assert all(
        shared.words(s) == schema.words(c) for s, c in zip(shared.columns, schema.columns, strict=True)
    )
    assert shared.sharing_missing_words() == shared
    # A column without words keeps every word where it is: no column reads a word it did not read before.
    bare = dataclasses.replace(schema, columns=(*schema.columns, Column("d", "numeric", "float64")))
    assert bare.sharing_missing_words() == bare


def test_input_schema_round_trips() -> None:
    schema = read_manifest(V1 / "classifier").input_schema
    assert InputSchema.from_dict(schema.to_dict()) == schema
    assert schema.names == ("temp [C]", "rpm", "line")
    assert schema.column("line").categories == ("east", "missing", "north", "south")
    with pytest.raises(KeyError):
        schema.column("nope")


# --------------------------------------------------------------------------- refusals: one line, naming the field


def _write(tmp_path: Path, data: Any) -> Path:
    folder = tmp_path / "artifact"
    shutil.copytree(V1 / "regressor", folder)
    (folder / "manifest.json").write_text(json.dumps(data), encoding="utf-8")
    return folder


@pytest.mark.parametrize(
    "change, expected",
    [
        (
            lambda m: m.update(format_version=3),
            "artifact format 3 is not supported (this Kepler reads 1 and 2)",
        ),
        (lambda m: m.update(format_version="2"), "artifact format '2' is not supported"),
        (lambda m: m.update(format_version=True), "artifact format True is not supported"),
        (lambda m: m.pop("format_version"), "manifest lacks format_version"),
        (lambda m: m.pop("session"), "manifest lacks session"),
        (lambda m: m["output_schema"].pop("task"), "manifest lacks output_schema.task"),
        (
            lambda m: m.update(size_bytes="699"),
            "manifest field 'size_bytes' must be a whole number, got '699'",
        ),
        (
            lambda m: m["input_schema"]["columns"][1].update(kind="text"),
            "manifest field 'input_schema.columns[1].kind' must be one of numeric, categorical, got 'text'",
        ),
        (
            lambda m: m["input_schema"]["columns"][0].update(name=None),
            "manifest field 'input_schema.columns[0].name' must be text, got None",
        ),
        (lambda m: m["target"].update(threads=-1), "the recorded target is not a valid profile"),
        (lambda m: m.update(input_schema=[]), "manifest field 'input_schema' must be an object"),
    ],
    ids=[
        "newer",
        "text version",
        "boolean version",
        "no version",
        "no session",
        "no task",
        "text size",
        "unknown kind",
        "null name",
        "bad target",
        "schema not an object",
    ],
)
def test_a_bad_manifest_is_refused_in_one_line_naming_the_field(
    change: Any, expected: str, tmp_path: Path
) -> None:
    data = _raw("regressor")
    change(data)
    folder = _write(tmp_path, data)
    for reader in (read_manifest, kr.read_artifact, kr.load):
        with pytest.raises(ArtifactError) as caught:
            reader(folder)
        message = str(caught.value)
        assert expected in message and str(folder / "manifest.json") in message and "\n" not in message
        assert (
            message.endswith("recompile the artifact") or "recompile the artifact with this Kepler" in message
        )


def test_read_manifest_takes_the_folder_or_the_file(tmp_path: Path) -> None:
    assert read_manifest(V1 / "regressor" / "manifest.json") == read_manifest(V1 / "regressor")
    with pytest.raises(ArtifactError, match="not a Kepler artifact"):
        read_manifest(tmp_path)


# --------------------------------------------------------------------------- the profile an artifact was compiled for


def test_profile_from_manifest_is_the_recorded_profile() -> None:
    manifest = read_manifest(V1 / "classifier")
    profile = profile_from_manifest(manifest)
    assert profile is manifest.target
    assert profile_from_manifest(V1 / "classifier") == profile
    assert dataclasses.replace(profile, source="") == dataclasses.replace(load_profile("edge"), source="")
    assert profile.source.endswith("edge.toml")  # where it was read from at compile time


def test_profile_from_record_validates_and_keeps_the_source() -> None:
    recorded = load_profile("cloud").to_dict()
    assert profile_from_record(recorded, "record") == load_profile("cloud")
    with pytest.raises(ProfileError, match="record: field 'threads'"):
        profile_from_record({**recorded, "threads": "all"}, "record")


# --------------------------------------------------------------------------- readers use attributes

# A read of the manifest (or of its parts) by key: manifest["sha256"], manifest.get("target"), input_schema["x"],
# artifact.parity["passed"], data["output_schema"], or manifest.json parsed by hand.
KEY_READS = re.compile(
    r"""\bmanifest\w*\s*\[\s*["']"""
    r"""|\bmanifest\w*\.get\("""
    r"""|\b(?:input|output)_schema\s*\[\s*["']"""
    r"""|\b(?:input|output)_schema\.get\("""
    r"""|\.(?:parity|benchmark)\s*\[\s*["']"""
    r"""|\.(?:parity|benchmark)\.get\("""
    r"""|\[\s*["'](?:input_schema|output_schema|format_version)["']\s*\]"""
    r"""|json\.loads?\(.*(?:manifest|MANIFEST_NAME)"""
)
SOURCE_FOLDERS = ("kepler", "compilers", "runtimes", "targets", "benchmarks", "scripts", "examples")


def test_the_key_read_pattern_finds_key_reads() -> None:
    for line in (
        'artifact.manifest["sha256"]',
        "manifest.get('target')",
        'opened.input_schema["layout"]',
        'outputs = self.predictor.manifest["output_schema"]',
        'artifact.parity["passed"]',
        'data["input_schema"]',
        'json.loads((folder / "manifest.json").read_text())',
    ):
        assert KEY_READS.search(line), line
    for line in ("artifact.manifest.sha256", "manifest.input_schema.columns", 'report["artifact"]'):
        assert not KEY_READS.search(line), line


def test_no_reader_outside_the_manifest_module_reads_the_manifest_by_key() -> None:
    own = ROOT / "runtimes" / "manifest.py"
    offenders = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for folder in SOURCE_FOLDERS
        for path in sorted((ROOT / folder).rglob("*.py"))
        if path != own
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if KEY_READS.search(line)
    ]
    assert offenders == [], "read these through kepler.runtimes.manifest's attributes:\n" + "\n".join(
        offenders
    )
