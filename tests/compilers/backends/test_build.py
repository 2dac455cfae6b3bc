"""Building the compiled backends a profile allows: each one's parity against the native model and the ONNX graph,
the choice per batch size, and what the manifest records when a backend is built, skipped or not allowed.

Compiling a c-trees artifact runs the C compiler (a subprocess): those tests are integration. Each model is
compiled once (a module cache) for a cloud profile timed at batch size 1 only, which keeps a compile under a
second; the full cloud profile is compiled once, for the record of every batch size.
"""

from __future__ import annotations

import platform
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pandas as pd
import pytest
from lightgbm import LGBMClassifier, LGBMRegressor
from sklearn.ensemble import (
    ExtraTreesClassifier,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.pipeline import Pipeline
from sklearn.tree import DecisionTreeClassifier
from xgboost import XGBClassifier, XGBRegressor

import kepler as kp
from kepler.automl.pipelines import preprocessing
from kepler.compilers.backends import BUILDERS, list_backends, read_tree_tables, register_backend
from kepler.compilers.backends.build import LIBRARY_NAME, PREFIX_NAME, fastest_per_batch
from kepler.errors import RegistryError
from kepler.runtimes.artifact import read_artifact, sha256_file
from kepler.runtimes.compiled_trees import BackendUnavailable
from kepler.runtimes.manifest import Backends
from kepler.runtimes.predictor import Predictor
from kepler.targets import TargetProfile, load_profile, profile_from_dict, read_profile_file
from kepler.targets.profile import BACKENDS

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
integration = pytest.mark.integration

NUMERIC = ["temperature", "pressure", "vibration", "rpm"]
FEATURES = 6


def cloud_profile(**changes: Any) -> TargetProfile:
    """The cloud profile with ``changes`` (validated as a profile file's fields are)."""
    data = load_profile("cloud").to_dict()
    data.pop("source")
    data.update(changes)
    return profile_from_dict(data, "test profile")


# Timed at batch 1 only (a compile stays under a second); two threads, so that a call of 3,001 rows is split.
PROFILE = cloud_profile(name="cloud-test", batch_sizes=[1], threads=2)


# --------------------------------------------------------------------------- data


def _table(rows: int, seed: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, FEATURES))
    score = x[:, 0] + 0.8 * x[:, 1] - 0.5 * x[:, 2] * x[:, 3] + rng.normal(0, 0.3, rows)
    labels = {
        "binary": (score > 0).astype(np.int64),
        "multiclass": np.digitize(score, [-0.7, 0.7]).astype(np.int64),
        "regressor": 2.0 * score + x[:, 4] + 10.0,
    }
    return x, labels


def _with_missing_blocks(x: np.ndarray, seed: int) -> np.ndarray:
    """NaNs in row blocks: rows 0-639 and from 2,500 have none (whole 64-row blocks without a missing value),
    rows 640-1,279 miss columns 0 and 2, rows 1,280-2,499 miss any column."""
    rng = np.random.default_rng(seed)
    mask = np.zeros(x.shape, dtype=bool)
    mask[640:1280, [0, 2]] = rng.random((640, 2))[: len(x[640:1280])] < 0.1
    mask[1280:2500] = rng.random((1220, x.shape[1]))[: len(x[1280:2500])] < 0.05
    return np.where(mask, np.nan, x)


TRAIN, LABELS = _table(1000, seed=1)
TRAIN_MISSING = _with_missing_blocks(TRAIN, seed=2)
ROWS = 3001  # over 2,048 rows: two threads split the call; not a multiple of the kernel's 64-row block
TEST, _ = _table(ROWS, seed=3)
TEST_MISSING = _with_missing_blocks(TEST, seed=4)


@dataclass(frozen=True)
class Case:
    """One model family under test.

    Attributes:
        name: Test id.
        make: Builds the unfitted estimator.
        task: binary, multiclass or regressor (the label it is fit on).
        missing: Whether it is fit and scored with missing values (the native model takes NaN).
        input_dtype: What the compiled kernel reads.
    """

    name: str
    make: Callable[[], Any]
    task: str
    missing: bool
    input_dtype: str = "float32"

    def __str__(self) -> str:
        return self.name

    @property
    def classifier(self) -> bool:
        return self.task != "regressor"


CASES = [
    Case("xgboost-binary", lambda: XGBClassifier(n_estimators=15, max_depth=4), "binary", True),
    Case("xgboost-multiclass", lambda: XGBClassifier(n_estimators=10, max_depth=4), "multiclass", True),
    Case("xgboost-regressor", lambda: XGBRegressor(n_estimators=15, max_depth=4), "regressor", True),
    Case(
        "random-forest-binary",
        lambda: RandomForestClassifier(n_estimators=12, max_depth=4, random_state=0),
        "binary",
        True,
    ),
    Case(
        "random-forest-multiclass",
        lambda: RandomForestClassifier(n_estimators=12, max_depth=4, random_state=0),
        "multiclass",
        True,
    ),
    Case(
        "random-forest-regressor",
        lambda: RandomForestRegressor(n_estimators=12, max_depth=4, random_state=0),
        "regressor",
        True,
    ),
    Case(
        "extra-trees",
        lambda: ExtraTreesClassifier(n_estimators=12, max_depth=4, random_state=0),
        "multiclass",
        True,
    ),
    Case(
        "gradient-boosting-binary",
        lambda: GradientBoostingClassifier(n_estimators=12, max_depth=3, random_state=0),
        "binary",
        False,
    ),
    Case(
        "gradient-boosting-regressor",
        lambda: GradientBoostingRegressor(n_estimators=12, max_depth=3, random_state=0),
        "regressor",
        False,
    ),
    Case(
        "hist-gradient-boosting-binary",
        lambda: HistGradientBoostingClassifier(max_iter=12, random_state=0),
        "binary",
        True,
        "float64",
    ),
    Case(
        "lightgbm-binary",
        lambda: LGBMClassifier(n_estimators=15, num_leaves=15, verbose=-1),
        "binary",
        True,
        "float64",
    ),
    Case(
        "lightgbm-multiclass",
        lambda: LGBMClassifier(n_estimators=10, num_leaves=15, verbose=-1),
        "multiclass",
        True,
        "float64",
    ),
    Case(
        "lightgbm-regressor",
        lambda: LGBMRegressor(n_estimators=15, num_leaves=15, verbose=-1),
        "regressor",
        True,
        "float64",
    ),
    Case(
        "decision-tree",
        lambda: DecisionTreeClassifier(max_depth=5, random_state=0),
        "multiclass",
        True,
    ),
]
BY_NAME = {case.name: case for case in CASES}


@dataclass(frozen=True)
class Built:
    """A fitted model, its artifact (compiled for :data:`PROFILE`) and the rows it is scored on."""

    model: Any
    path: Path
    rows: np.ndarray

    def predictor(self, backend: str | None = None) -> Predictor:
        return Predictor(read_artifact(self.path), PROFILE, backend=backend)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Callable[[str], Built]:
    """``built(name)``: the case compiled once for the module."""
    cache: dict[str, Built] = {}

    def get(name: str) -> Built:
        if name not in cache:
            case = BY_NAME[name]
            train = TRAIN_MISSING if case.missing else TRAIN
            model = case.make().fit(train, LABELS[case.task])
            path = tmp_path_factory.mktemp(name) / "artifact"
            kp.compile(model, target=PROFILE, sample=train[:400], output=path, benchmark=False)
            cache[name] = Built(model, path, TEST_MISSING if case.missing else TEST)
        return cache[name]

    return get


def _outputs(predictor: Any, rows: Any, classifier: bool) -> tuple[np.ndarray, np.ndarray]:
    if classifier:
        return np.asarray(predictor.predict(rows)), np.asarray(predictor.predict_proba(rows))
    return np.array([]), np.ravel(predictor.predict(rows))


# --------------------------------------------------------------------------- parity, family by family


@integration
@pytest.mark.parametrize("case", CASES, ids=str)
def test_every_family_compiles_to_c_trees_with_its_parity_recorded(case: Case, built) -> None:
    artifact = read_artifact(built(case.name).path)
    backends = artifact.manifest.backends
    assert backends is not None and backends.skipped == {}
    record = backends.compiled_backend("c-trees")
    assert record is not None and record.parity is not None and record.parity.passed
    assert record.finish["input_dtype"] == case.input_dtype
    assert record.prefix is None  # a bare model's trees read the graph input
    assert sha256_file(artifact.path / LIBRARY_NAME) == record.sha256


@integration
@pytest.mark.parametrize("case", CASES, ids=str)
def test_the_compiled_backend_answers_as_the_native_model(case: Case, built) -> None:
    made = built(case.name)
    labels, values = _outputs(made.predictor("c-trees"), made.rows, case.classifier)
    native_labels, native_values = _outputs(made.model, made.rows, case.classifier)
    np.testing.assert_array_equal(labels, native_labels)
    np.testing.assert_allclose(values, native_values, rtol=1e-5, atol=1e-5)


@integration
@pytest.mark.parametrize("case", CASES, ids=str)
def test_the_compiled_backend_answers_as_the_onnx_graph(case: Case, built) -> None:
    made = built(case.name)
    labels, values = _outputs(made.predictor("c-trees"), made.rows, case.classifier)
    onnx_labels, onnx_values = _outputs(made.predictor("onnxruntime"), made.rows, case.classifier)
    np.testing.assert_array_equal(labels, onnx_labels)
    np.testing.assert_allclose(values, onnx_values, rtol=1e-6, atol=1e-6)
    assert values.dtype == onnx_values.dtype


@integration
@pytest.mark.parametrize("name", ["xgboost-multiclass", "lightgbm-multiclass", "random-forest-regressor"])
def test_any_split_of_the_rows_gives_the_same_answers(name: str, built) -> None:
    """Blocks of 64 rows and thread shares: a row's answer does not depend on the call it came in."""
    made = built(name)
    predictor = made.predictor("c-trees")
    call = predictor.predict_proba if BY_NAME[name].classifier else predictor.predict
    whole = call(made.rows)
    start = 0
    for size in (1, 63, 64, 65, 129, 2049, 630):
        np.testing.assert_array_equal(call(made.rows[start : start + size]), whole[start : start + size])
        start += size
    assert start == ROWS


@integration
@pytest.mark.parametrize("name", ["xgboost-binary", "lightgbm-regressor", "hist-gradient-boosting-binary"])
def test_the_scored_rows_take_the_missing_value_directions(name: str, built) -> None:
    """The models send missing values down learned branches, and the test rows reach them: the parity above
    covers blocks with and without a missing value."""
    made = built(name)
    tables = read_tree_tables(onnx.load(str(read_artifact(made.path).model_path)))
    assert tables.missing_true.any() and not tables.missing_true.all()
    blocks = np.isnan(made.rows[: ROWS // 64 * 64]).reshape(-1, 64, FEATURES).any(axis=(1, 2))
    assert blocks.any() and not blocks.all()


@integration
@pytest.mark.parametrize(
    ("task", "names"),
    [("binary", ["fail", "ok"]), ("multiclass", [30, 10, 20])],
    ids=["binary-texts", "multiclass-unordered-numbers"],
)
def test_a_classifier_fit_on_codes_answers_its_labels(task: str, names: list[Any], tmp_path) -> None:
    """``compile(class_labels=...)``: the graph maps the codes back to the labels, and so does the backend."""
    model = XGBClassifier(n_estimators=10, max_depth=3).fit(TRAIN_MISSING, LABELS[task])
    artifact = kp.compile(
        model,
        target=PROFILE,
        sample=TRAIN_MISSING[:400],
        output=tmp_path / "a",
        benchmark=False,
        class_labels=names,
    )
    backends = artifact.manifest.backends
    assert backends is not None and backends.skipped == {}
    record = backends.compiled_backend("c-trees")
    assert record is not None and record.finish["classes"] == names
    opened = read_artifact(tmp_path / "a")
    compiled = Predictor(opened, PROFILE, backend="c-trees")
    graph = Predictor(opened, PROFILE, backend="onnxruntime")
    expected = np.asarray(names, dtype=object)[model.predict(TEST_MISSING)]
    assert compiled.predict(TEST_MISSING).tolist() == expected.tolist()
    assert compiled.predict(TEST_MISSING).tolist() == graph.predict(TEST_MISSING).tolist()
    assert compiled.predict(TEST_MISSING).dtype == graph.predict(TEST_MISSING).dtype
    np.testing.assert_allclose(
        compiled.predict_proba(TEST_MISSING), model.predict_proba(TEST_MISSING), rtol=1e-5, atol=1e-5
    )


# LightGBM's graph reads float64 (its exact thresholds), so behind preprocessing the trees read a float64 tensor
# that no Cast names; XGBoost's reads the float32 cast Kepler's precision pass adds.
AUTOML_MODELS = {
    "xgboost": lambda: XGBClassifier(n_estimators=10, max_depth=3),
    "lightgbm": lambda: LGBMClassifier(n_estimators=10, num_leaves=8, verbose=-1),
}


@integration
@pytest.mark.parametrize(
    "family",
    ["xgboost", "lightgbm"],
)
def test_an_automl_pipeline_compiles_its_preprocessing_as_a_prefix_graph(
    family: str, industrial, holdout, tmp_path
) -> None:
    """Kepler's AutoML candidate shape: its ColumnTransformer (imputation, one-hot encoding), then trees."""
    model = Pipeline(
        [
            ("preprocessing", preprocessing(NUMERIC, ["line"], scaled=False)),
            ("model", AUTOML_MODELS[family]()),
        ]
    ).fit(industrial.frame, industrial.grade)
    path = tmp_path / "artifact"
    kp.compile(model, target=PROFILE, sample=industrial.frame, output=path, benchmark=False)
    artifact = read_artifact(path)
    backends = artifact.manifest.backends
    assert backends is not None and backends.skipped == {}
    record = backends.compiled_backend("c-trees")
    assert record is not None and record.prefix == PREFIX_NAME
    assert record.prefix_sha256 == sha256_file(path / PREFIX_NAME)
    assert record.files() == {LIBRARY_NAME: record.sha256, PREFIX_NAME: record.prefix_sha256}
    unseen = holdout.frame.head(5).assign(line="west")
    frame = pd.concat([holdout.frame, unseen], ignore_index=True)
    compiled = Predictor(artifact, PROFILE, backend="c-trees")
    graph = Predictor(artifact, PROFILE, backend="onnxruntime")
    np.testing.assert_array_equal(compiled.predict(frame), model.predict(frame))
    np.testing.assert_allclose(
        compiled.predict_proba(frame), model.predict_proba(frame), rtol=1e-5, atol=1e-5
    )
    np.testing.assert_array_equal(compiled.predict(frame), graph.predict(frame))
    np.testing.assert_allclose(
        compiled.predict_proba(frame), graph.predict_proba(frame), rtol=1e-6, atol=1e-6
    )


# --------------------------------------------------------------------------- the manifest's record


@pytest.fixture(scope="module")
def cloud_artifact(tmp_path_factory) -> Path:
    """An XGBoost classifier compiled for the shipped cloud profile (every batch size timed)."""
    model = XGBClassifier(n_estimators=20, max_depth=4).fit(TRAIN_MISSING, LABELS["binary"])
    path = tmp_path_factory.mktemp("cloud") / "artifact"
    kp.compile(model, target="cloud", sample=TRAIN_MISSING[:800], output=path, benchmark=False)
    return path


@integration
def test_the_manifest_records_the_backends_their_timings_and_the_choice(cloud_artifact) -> None:
    artifact = read_artifact(cloud_artifact)
    backends = artifact.manifest.backends
    assert backends is not None
    assert [b.name for b in backends.compiled] == ["c-trees"] and backends.skipped == {}
    record = backends.compiled[0]
    assert record.machine == platform.machine().lower()
    assert (
        record.library == LIBRARY_NAME and record.size_bytes == (cloud_artifact / LIBRARY_NAME).stat().st_size
    )
    assert record.compiler and record.isa
    assert record.parity is not None and record.parity.passed
    sizes = {str(b) for b in load_profile("cloud").batch_sizes}
    assert set(backends.timings_ms) == {"onnxruntime", "c-trees"}
    for figures in backends.timings_ms.values():
        assert set(figures) == sizes and all(ms > 0 for ms in figures.values())
    # The choice is the measurement's: whichever backend it names at each size, it follows the figures.
    assert backends.choice == fastest_per_batch(backends.timings_ms)
    assert backends.choice[0][0] == 1
    predictor = kp.runtimes.load(cloud_artifact)
    assert predictor.backend_notes == []
    for rows in (1, 50, 100, 5000, 10000, 20000):
        assert predictor.backend_for(rows) == backends.backend_for(rows)


@integration
def test_a_custom_profile_with_one_thread_serves_the_compiled_backend(tmp_path) -> None:
    toml = tmp_path / "plant-server.toml"
    toml.write_text(
        'name = "plant-server"\nthreads = 1\nmemory_mb = 512\nlatency_p99_ms = 50.0\nsize_mb = 20\n'
        'batch_sizes = [1, 500]\nartifact_format = "onnx"\npasses = ["prune_unused", "embed_metadata"]\n'
        'backends = ["onnxruntime", "c-trees"]\n',
        encoding="utf-8",
    )
    profile = read_profile_file(toml)
    assert profile.backends == ("onnxruntime", "c-trees") and profile.resolved_threads == 1
    model = RandomForestClassifier(n_estimators=10, max_depth=6, random_state=0).fit(
        TRAIN_MISSING, LABELS["multiclass"]
    )
    artifact = kp.compile(
        model, target=toml, sample=TRAIN_MISSING[:600], output=tmp_path / "a", benchmark=False
    )
    backends = artifact.manifest.backends
    assert backends is not None and [b.name for b in backends.compiled] == ["c-trees"]
    assert {name: set(figures) for name, figures in backends.timings_ms.items()} == {
        "onnxruntime": {"1", "500"},
        "c-trees": {"1", "500"},
    }
    predictor = kp.runtimes.load(tmp_path / "a", backend="c-trees")
    assert predictor.profile.name == "plant-server"
    np.testing.assert_allclose(
        predictor.predict_proba(TEST_MISSING), model.predict_proba(TEST_MISSING), rtol=1e-5, atol=1e-5
    )


# --------------------------------------------------------------------------- ONNX only


def _xgboost() -> Any:
    return XGBClassifier(n_estimators=8, max_depth=3).fit(TRAIN_MISSING, LABELS["binary"])


def test_a_profile_without_compiled_backends_gets_onnx_only(tmp_path) -> None:
    assert load_profile("edge").backends == ("onnxruntime",)
    model = _xgboost()
    artifact = kp.compile(
        model, target="edge", sample=TRAIN_MISSING[:600], output=tmp_path / "a", benchmark=False
    )
    assert artifact.manifest.backends is None
    assert sorted(p.name for p in (tmp_path / "a").iterdir() if p.name.startswith("trees")) == []
    predictor = kp.runtimes.load(tmp_path / "a")
    assert predictor.backend_notes == []
    assert {predictor.backend_for(rows) for rows in (1, 100, 10000)} == {"onnxruntime"}
    np.testing.assert_allclose(
        predictor.predict_proba(TEST_MISSING), model.predict_proba(TEST_MISSING), atol=1e-5
    )
    with pytest.raises(BackendUnavailable, match="holds no compiled backend 'c-trees'"):
        kp.runtimes.load(tmp_path / "a", target="cloud", backend="c-trees")


def test_without_a_c_compiler_the_artifact_compiles_onnx_only_and_says_why(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("CC", str(tmp_path / "nonexistent" / "cc"))
    model = _xgboost()
    artifact = kp.compile(
        model, target=PROFILE, sample=TRAIN_MISSING[:600], output=tmp_path / "a", benchmark=False
    )
    backends = artifact.manifest.backends
    assert backends is not None and backends.compiled == ()
    reason = backends.skipped["c-trees"]
    assert "no C compiler found" in reason and str(tmp_path / "nonexistent" / "cc") in reason
    assert backends.choice == ((1, "onnxruntime"),) and backends.timings_ms == {}
    assert not (tmp_path / "a" / LIBRARY_NAME).exists()
    assert read_artifact(tmp_path / "a").manifest.backends == backends
    predictor = kp.runtimes.load(tmp_path / "a")
    assert predictor.backend_for(10000) == "onnxruntime" and predictor.backend_notes == []
    np.testing.assert_allclose(
        predictor.predict_proba(TEST_MISSING), model.predict_proba(TEST_MISSING), atol=1e-5
    )


@integration
def test_a_compiler_that_fails_leaves_onnx_only_with_its_error(tmp_path, monkeypatch) -> None:
    broken = tmp_path / "broken-cc"
    broken.write_text(
        '#!/bin/sh\nif [ "$1" = "--version" ]; then echo "broken-cc 1.0"; exit 0; fi\n'
        'echo "broken-cc: error: out of licences" >&2\nexit 1\n',
        encoding="utf-8",
    )
    broken.chmod(0o755)
    monkeypatch.setenv("CC", str(broken))
    artifact = kp.compile(
        _xgboost(), target=PROFILE, sample=TRAIN_MISSING[:600], output=tmp_path / "a", benchmark=False
    )
    backends = artifact.manifest.backends
    assert backends is not None and backends.compiled == ()
    assert backends.skipped["c-trees"].endswith("failed: broken-cc: error: out of licences")
    assert not (tmp_path / "a" / LIBRARY_NAME).exists()


def test_a_graph_the_kernel_does_not_cover_is_skipped_with_its_reason(tmp_path) -> None:
    from sklearn.ensemble import IsolationForest

    model = IsolationForest(n_estimators=5, random_state=0).fit(TRAIN)
    artifact = kp.compile(model, target=PROFILE, sample=TRAIN[:300], output=tmp_path / "a", benchmark=False)
    backends = artifact.manifest.backends
    assert backends is not None and backends.compiled == ()
    assert backends.skipped == {"c-trees": "the graph holds 5 tree ensembles, the compiled backend takes one"}
    assert backends.choice == ((1, "onnxruntime"),)


# --------------------------------------------------------------------------- the registry and the choice


def test_every_compiled_backend_a_profile_may_name_has_a_builder() -> None:
    assert set(list_backends()) == set(BACKENDS) - {"onnxruntime"}
    assert "c-trees" in BUILDERS


def test_a_backend_name_is_registered_once() -> None:
    with pytest.raises(RegistryError):
        register_backend("c-trees", BUILDERS.get("c-trees"))


def test_a_compiled_backend_serves_a_batch_size_only_beyond_the_margin() -> None:
    assert fastest_per_batch({"onnxruntime": {"1": 1.0}, "c-trees": {"1": 0.95}}) == ((1, "onnxruntime"),)
    assert fastest_per_batch({"onnxruntime": {"1": 1.0}, "c-trees": {"1": 0.85}}) == ((1, "c-trees"),)
    assert fastest_per_batch({"onnxruntime": {"1": 1.0}, "c-trees": {"1": 1.0}}) == ((1, "onnxruntime"),)


def test_the_choice_merges_neighbouring_sizes_of_one_backend() -> None:
    timings = {
        "onnxruntime": {"1": 0.01, "100": 0.08, "1000": 0.9, "10000": 5.0},
        "c-trees": {"1": 0.02, "100": 0.04, "1000": 0.4, "10000": 9.0},
    }
    choice = fastest_per_batch(timings)
    assert choice == ((1, "onnxruntime"), (100, "c-trees"), (10000, "onnxruntime"))
    plan = Backends(timings_ms=timings, choice=choice)
    assert [plan.backend_for(rows) for rows in (1, 99, 100, 9999, 10000, 10**6)] == [
        "onnxruntime",
        "onnxruntime",
        "c-trees",
        "c-trees",
        "onnxruntime",
        "onnxruntime",
    ]


def test_the_first_choice_starts_from_one_row_whatever_size_was_measured_first() -> None:
    timings = {"onnxruntime": {"32": 1.0, "1000": 10.0}, "c-trees": {"32": 0.5, "1000": 20.0}}
    assert fastest_per_batch(timings) == ((1, "c-trees"), (1000, "onnxruntime"))
    # Sizes sort as numbers, not as the texts the manifest keys them by.
    timings = {"onnxruntime": {"100": 1.0, "20": 1.0, "3": 1.0}, "c-trees": {"100": 0.1, "20": 2.0, "3": 2.0}}
    assert fastest_per_batch(timings) == ((1, "onnxruntime"), (100, "c-trees"))


def test_a_backend_not_measured_at_a_size_is_not_chosen_there() -> None:
    timings = {"onnxruntime": {"1": 1.0, "100": 5.0}, "c-trees": {"1": 0.1}}
    assert fastest_per_batch(timings) == ((1, "c-trees"), (100, "onnxruntime"))
    assert fastest_per_batch({}) == ((1, "onnxruntime"),)
