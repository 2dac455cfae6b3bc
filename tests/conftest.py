"""Shared fixtures: a small synthetic industrial table, labels, and helpers to compile and compare.

The table mimics sensor readings from a production line: numeric columns with
missing values (sensor dropouts) and one categorical column (the line), plus a
binary label (failure), a three-class label (grade) and a numeric target (wear).
"""

from __future__ import annotations

import gc
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

NUMERIC = ["temperature", "pressure", "vibration", "rpm"]
CATEGORICAL = "line"
LINES = ["north", "south", "east"]
ROWS = 240


@dataclass(frozen=True)
class IndustrialData:
    """One synthetic table and its labels.

    Attributes:
        frame: Feature columns: four numeric ones (with NaNs) and ``line`` (strings).
        failure: Binary label (0/1).
        grade: Three-class label (0/1/2).
        wear: Regression target.
        status: Binary label as strings ("ok"/"fail").
    """

    frame: pd.DataFrame
    failure: np.ndarray
    grade: np.ndarray
    wear: np.ndarray
    status: np.ndarray

    @property
    def numeric(self) -> pd.DataFrame:
        """Only the numeric columns, NaNs included."""
        return self.frame[NUMERIC]

    @property
    def numeric_filled(self) -> pd.DataFrame:
        """Only the numeric columns, NaNs replaced by column medians (for estimators that reject NaN)."""
        return self.numeric.fillna(self.numeric.median())


def make_industrial(rows: int = ROWS, seed: int = 7) -> IndustrialData:
    """Builds the table; deterministic for a given seed."""
    rng = np.random.default_rng(seed)
    line = rng.choice(LINES, rows)
    temperature = rng.normal(70.0, 6.0, rows) + np.where(line == "east", 4.0, 0.0)
    pressure = rng.normal(1.0, 0.12, rows)
    vibration = rng.gamma(2.0, 1.1, rows)
    rpm = rng.integers(900, 1600, rows).astype(np.float64)
    risk = (
        0.25 * (temperature - 70.0)
        + 1.2 * (vibration - 2.2)
        + 8.0 * (pressure - 1.0)
        + np.where(line == "south", 1.0, 0.0)
        + rng.normal(0.0, 0.8, rows)
    )
    failure = (risk > 0.5).astype(np.int64)
    grade = np.digitize(risk, [-0.8, 1.2]).astype(np.int64)
    wear = (
        0.02 * rpm
        + 0.6 * vibration
        + 0.1 * temperature
        + np.where(line == "north", 2.0, 0.0)
        + rng.normal(0, 0.3, rows)
    )
    frame = pd.DataFrame(
        {
            "temperature": temperature,
            "pressure": pressure,
            "vibration": vibration,
            "rpm": rpm,
            CATEGORICAL: pd.Series(line, dtype=object),
        }
    )
    # Sensor dropouts: about 8% missing in three numeric columns, never a whole row.
    for column, share in (("temperature", 0.08), ("vibration", 0.08), ("pressure", 0.05)):
        frame.loc[rng.random(rows) < share, column] = np.nan
    status = np.where(failure == 1, "fail", "ok")
    return IndustrialData(frame=frame, failure=failure, grade=grade, wear=wear, status=status)


@pytest.fixture(scope="session")
def industrial() -> IndustrialData:
    """The shared table (session-scoped: tests must not modify it; copy first)."""
    return make_industrial()


@pytest.fixture(scope="session")
def holdout() -> IndustrialData:
    """Unseen rows from the same process (another seed), to check parity beyond the compile sample."""
    return make_industrial(rows=160, seed=11)


def make_full_preprocessing(task: str) -> list[tuple[str, Any]]:
    """Pipeline steps with every preprocessing family at once: imputers, both scalers,
    polynomial features, one-hot encoding and, when there is a label, SelectKBest."""
    from sklearn.compose import ColumnTransformer
    from sklearn.feature_selection import SelectKBest, f_classif, f_regression
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import MinMaxScaler, OneHotEncoder, PolynomialFeatures, StandardScaler

    columns = ColumnTransformer(
        [
            (
                "standard",
                Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]),
                ["temperature", "pressure"],
            ),
            (
                "minmax",
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="mean")),
                        ("scale", MinMaxScaler()),
                        ("poly", PolynomialFeatures(degree=2, include_bias=False)),
                    ]
                ),
                ["vibration", "rpm"],
            ),
            ("onehot", OneHotEncoder(handle_unknown="ignore"), [CATEGORICAL]),
        ]
    )
    steps: list[tuple[str, Any]] = [("columns", columns)]
    if task != "outlier":
        steps.append(("select", SelectKBest(f_classif if task == "classifier" else f_regression, k=7)))
    return steps


@pytest.fixture(scope="session")
def full_preprocessing() -> Callable[[str], list[tuple[str, Any]]]:
    """``full_preprocessing(task)``: fresh preprocessing steps for a Pipeline (see make_full_preprocessing)."""
    return make_full_preprocessing


@pytest.fixture
def artifact_dir(tmp_path: Path) -> Path:
    """Where a test's artifact goes (not created: kp.compile creates it)."""
    return tmp_path / "artifact"


@pytest.fixture
def compile_edge(tmp_path: Path) -> Callable[..., Any]:
    """``compile_edge(model, sample, **kwargs)``: kp.compile to the edge target into tmp_path, no benchmark."""
    import kepler as kp

    counter = iter(range(10_000))

    def run(model: Any, sample: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("target", "edge")
        kwargs.setdefault("benchmark", False)
        kwargs.setdefault("output", tmp_path / f"artifact-{next(counter)}")
        return kp.compile(model, sample=sample, **kwargs)

    return run


def assert_parity(
    model: Any, predictor: Any, rows: Any, task: str, *, atol: float = 1e-5, rtol: float = 1e-4
) -> None:
    """Compares the compiled predictor with the native model on the same ``rows``.

    Classifiers: probabilities within tolerance and identical labels.
    Regressors: values within tolerance.
    Outlier detectors: identical labels, and the compiled scores against ``decision_function``.
    """
    if task == "classifier":
        np.testing.assert_allclose(
            predictor.predict_proba(rows), model.predict_proba(rows), atol=atol, rtol=rtol
        )
        np.testing.assert_array_equal(predictor.predict(rows), model.predict(rows))
    elif task == "regressor":
        np.testing.assert_allclose(
            predictor.predict(rows), np.ravel(model.predict(rows)), atol=atol, rtol=rtol
        )
    elif task == "outlier":
        np.testing.assert_array_equal(predictor.predict(rows), model.predict(rows))
        np.testing.assert_allclose(
            predictor.decision_function(rows), model.decision_function(rows), atol=atol, rtol=rtol
        )
    else:  # pragma: no cover - a typo in a test
        raise AssertionError(f"unknown task {task!r}")


@pytest.fixture
def parity() -> Callable[..., None]:
    """The :func:`assert_parity` helper, as a fixture (test modules cannot import conftest)."""
    return assert_parity


def float32_grid(start: float, count: int) -> np.ndarray:
    """``count`` adjacent float32 numbers from ``start`` upward (each one ulp above the previous)."""
    values = [np.float32(start)]
    for _ in range(count - 1):
        values.append(np.nextafter(values[-1], np.float32(np.inf)))
    return np.asarray(values, dtype=np.float32)


def threshold_table(count: int = 48, repeats: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Data whose class changes between adjacent float32 values of feature 0.

    Feature 0 walks ``count`` adjacent float32 numbers above 1000 (one ulp is 6e-5 there,
    well above the 1e-7 below which scikit-learn treats values as equal); the label flips
    every two steps, so a fitted tree needs split thresholds that fall between adjacent
    float32 numbers. Feature 1 takes the same ``repeats`` values at every step, so it
    carries no information. Returned as float64, as data usually arrives.
    """
    grid = float32_grid(1000.0, count)
    x0 = np.repeat(grid, repeats).astype(np.float64)
    labels = ((np.arange(count) // 2) % 2).repeat(repeats).astype(np.int64)
    x1 = np.tile(np.arange(repeats, dtype=np.float64), count)
    return np.column_stack([x0, x1]), labels


@pytest.fixture(scope="session")
def threshold_data() -> tuple[np.ndarray, np.ndarray]:
    """(X, y) of :func:`threshold_table`."""
    return threshold_table()


def floor32(value: float) -> np.float32:
    """The largest float32 not above ``value``."""
    rounded = np.float32(value)
    if float(rounded) > value:
        rounded = np.nextafter(rounded, np.float32(-np.inf))
    return rounded


def float64_splits(estimator: Any) -> list[tuple[int, float]]:
    """(feature, threshold) of every ``x <= t`` split of a LightGBM or HistGradientBoosting model,
    the two families that compare float64 features with float64 thresholds natively."""
    splits: list[tuple[int, float]] = []
    if hasattr(estimator, "booster_"):  # LightGBM

        def walk(node: dict[str, Any]) -> None:
            if "split_index" in node:
                splits.append((int(node["split_feature"]), float(node["threshold"])))
                walk(node["left_child"])
                walk(node["right_child"])

        for tree in estimator.booster_.dump_model()["tree_info"]:
            walk(tree["tree_structure"])
        return splits
    for iteration in estimator._predictors:  # HistGradientBoosting
        for predictor in iteration:
            nodes = predictor.nodes[~predictor.nodes["is_leaf"].astype(bool)]
            splits.extend(zip(nodes["feature_idx"].tolist(), nodes["num_threshold"].tolist(), strict=False))
    return splits


def float32_sensitive_rows(estimator: Any, features: np.ndarray) -> list[int]:
    """Rows for which some split decides differently in the compiled graph than natively.

    Natively ``x <= t`` in float64; the graph compares ``float32(x) <= floor32(t)``, which
    agrees for every float32 number x and can differ only for float64 values within
    half a float32 step of a threshold.
    """
    rows: set[int] = set()
    for feature, threshold in float64_splits(estimator):
        column = features[:, feature]
        native = column <= threshold
        graph = column.astype(np.float32) <= floor32(threshold)
        rows.update(np.flatnonzero((native != graph) & ~np.isnan(column)).tolist())
    return sorted(rows)


@pytest.fixture(scope="session")
def sensitive_rows() -> Callable[[Any, np.ndarray], list[int]]:
    """The :func:`float32_sensitive_rows` helper, as a fixture."""
    return float32_sensitive_rows


# --------------------------------------------------------------------------- test tiers
# `pytest -m unit` runs the fast tier: no subprocess, server, Docker or search over 2 s. Everything else is
# `integration`: a test marks itself, or its module is listed here (a test marked `unit` in a listed folder stays
# unit). A unit test that starts a process fails (see `_unit_tests_start_no_process`), so the tiers stay honest.
TESTS = Path(__file__).resolve().parent
INTEGRATION = (
    "automl/",
    "benchmarks/",
    "cli/",
    "deploy/",
    "versioning/",
    "test_corpus.py",
    "test_readme.py",
    "test_source_tree_import.py",
    "data/test_splunk.py",
    "runtimes/test_benchmark.py",
    "runtimes/test_light_imports.py",
)


# The scale-out modules leave threads behind in their (xdist worker) process: s3fs's event-loop thread, and, until
# the module's end (tests/scale/spark.py stops the JVM and joins them), a Spark JVM's py4j threads. A fork in a
# process with threads may inherit a held lock and hang (the eight-process tests, the search's forked child), so they
# run last, the JVM one at the very end. This order holds in one process; under `--dist loadfile` xdist hands out
# whole files, the files with the most tests first (its default --loadscope-reorder).
RUN_LAST = ("scale/",)
STARTS_A_JVM = ("scale/test_spark.py",)


def _run_order(item: pytest.Item) -> int:
    where = Path(str(item.fspath)).resolve().relative_to(TESTS).as_posix()
    return 2 if where in STARTS_A_JVM else 1 if where.startswith(RUN_LAST) else 0


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Marks every test ``unit`` or ``integration``, and puts the scale-out modules last (:data:`RUN_LAST`)."""
    items.sort(key=_run_order)
    for item in items:
        where = Path(str(item.fspath)).resolve().relative_to(TESTS).as_posix()
        explicit = item.get_closest_marker("integration") or item.get_closest_marker("unit")
        if explicit is None and where.startswith(INTEGRATION):  # a test marked unit stays unit (and guarded)
            item.add_marker(pytest.mark.integration)
        if item.get_closest_marker("integration") is None:
            item.add_marker(pytest.mark.unit)


# --------------------------------------------------------------------------- the garbage collector
# What the collection imported (the libraries, the test modules: hundreds of thousands of objects) is never garbage,
# yet every full collection of the cyclic garbage collector scanned it all again, and once more when each worker
# exits (seconds). gc.freeze() moves it out of the collector's reach: the suite ran about 5% faster in one process.
# Objects the tests make are collected as before.


def pytest_collection_finish(session: pytest.Session) -> None:
    """Freezes what the collection imported (see above)."""
    gc.freeze()


def pytest_unconfigure(config: pytest.Config) -> None:
    """Freezes what the tests left, so that the process's exit does not scan it."""
    gc.freeze()


@pytest.fixture(autouse=True)
def _unit_tests_start_no_process(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """A unit test that starts a process fails and says how to mark it."""
    if request.node.get_closest_marker("integration") is not None:
        return
    import subprocess

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(
            f"{request.node.nodeid} is a unit test but started a process ({args[1] if len(args) > 1 else kwargs.get('args')}); "
            f"mark it @pytest.mark.integration or list its module in tests/conftest.py INTEGRATION"
        )

    monkeypatch.setattr(subprocess.Popen, "__init__", refuse)


# --------------------------------------------------------------------------- temporary files
# Tests leave nothing in /tmp. The session's temporary folder (Python's tempfile and, through TMPDIR, every child
# process: the CLI, git, DVC, MLflow, `bentoml serve`) is a folder inside pytest's own base folder, and the
# session fails if anything is left in it, naming the test that made each entry.
# onnxruntime 1.32 starts its telemetry when first imported (a .ses file in the temp folder, an event store
# under ~/.cache) unless this is set first; kepler sets it too, but a test module may import onnxruntime first.
os.environ["ORT_DISABLE_TELEMETRY"] = "1"


def _count_physical_cores_once() -> None:
    """loky (through scikit-learn and LightGBM) counts physical cores with `cat /proc/cpuinfo`, once per process
    (cached): count them here, so that a unit test that is first to ask does not trip the no-process guard."""
    from joblib.externals.loky import cpu_count

    cpu_count(only_physical_cores=True)


_count_physical_cores_once()
_TEMP_ORIGINS: dict[str, str] = {}


@pytest.fixture(scope="session", autouse=True)
def _session_temp_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The session's temporary folder; fails the session, naming the entries, if it is not empty at the end."""
    folder = tmp_path_factory.getbasetemp() / "tmp"
    folder.mkdir()
    saved = os.environ.get("TMPDIR"), tempfile.tempdir
    os.environ["TMPDIR"] = str(folder)
    tempfile.tempdir = str(folder)
    try:
        yield folder
    finally:
        if saved[0] is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = saved[0]
        tempfile.tempdir = saved[1]
    left = sorted(entry.name for entry in folder.iterdir())
    if left:
        named = "; ".join(f"{name} (from {_TEMP_ORIGINS.get(name, 'a fixture')})" for name in left)
        pytest.fail(
            f"the tests left {len(left)} entr{'y' if len(left) == 1 else 'ies'} in the session's temporary folder "
            f"{folder}: {named}; write under tmp_path, and remove what the code makes",
            pytrace=False,
        )


@pytest.fixture(autouse=True)
def _temp_entries_of_each_test(request: pytest.FixtureRequest, _session_temp_folder: Path) -> Iterator[None]:
    """Notes which test made each new entry of the temporary folder, for the session's report."""
    before = set(os.listdir(_session_temp_folder))
    yield
    for name in set(os.listdir(_session_temp_folder)) - before:
        _TEMP_ORIGINS.setdefault(name, request.node.nodeid)
