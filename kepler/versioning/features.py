"""Versioned feature pipelines: steps declared as data, stored as a manifest, fitted once, then replayed.

A pipeline is a list of steps, each ``{"type": <name>, **params}``; the type comes from an allow-list of
scikit-learn transformers mapped to classes here (:data:`TRANSFORMERS`); nothing is ever imported from a
name the user gives. The declaration is a record ``.kepler/records/pipelines/<name>@<version>.json``,
committed to git.

The fitted state belongs to the version. The first :func:`apply_versioned_pipeline` fits on the data it
gets (and ``y=``), saves the fitted scikit-learn Pipeline with joblib beside the record
(``<name>@<version>.joblib``, committed, its sha256 and the md5 of the data it was fit on kept in the
record); every later apply loads that file, checks its sha256 and only transforms, so the same input
always gives the same output, on any clone of the project.

Decisions:

* Selectors (``SelectKBest``, ``SelectPercentile``) score features with the labels given as ``y=``
  on the first apply. Without labels, a selector that names no ``score_func`` keeps the features of
  highest variance (an unsupervised score, written in the record as ``labels: "none: selected by
  variance"``), so the guide's call without ``y`` works; one that names a supervised ``score_func``
  raises :class:`~kepler.errors.VersioningError` asking for ``y=``. Once fitted, ``y`` is ignored.
* Output: a pandas DataFrame in gives a DataFrame out, with the columns of ``get_feature_names_out()``
  and the input's index; anything else gives a 2-D float numpy array. Sparse results are made dense.
* Re-declaring ``name@version`` with the same steps (compared as declared, so ``{"type": "PCA"}`` and
  ``{"type": "PCA", "n_components": None}`` differ) does nothing; with other steps it is an error:
  declare a new version instead.
* Mixed tables (a DataFrame with text, category or date columns): every step applies to the numeric
  (and boolean) columns, and the other columns pass through unchanged, after the numeric ones, until an
  encoder step (``OneHotEncoder``, ``OrdinalEncoder``) comes: the first one encodes the text and category
  columns, whose codes then are numeric columns like the others for the steps after it. Dates always
  pass through. A table without such columns goes through the steps as a plain scikit-learn Pipeline.
  On a mixed table sparse outputs are asked for dense (``sparse_output=False``), as the record says.
* The label: the column named by ``label=``, else by ``[build] label`` in kepler.toml, is kept out of the
  steps and of the output (the output keeps the input's index, so ``out.join(data[label])`` puts it
  back). On the first apply it gives the labels of a supervised step when no ``y=`` is passed.
* With labels (``y=`` or the label column), a selector that names no ``score_func`` scores with
  ``f_regression`` for a regression label (numbers that are not a few classes, as kepler.data reads a
  label) and with ``f_classif``, scikit-learn's default, otherwise. The record keeps the label's name, and the steps as
  fitted (``fit_steps``) beside the steps as declared.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kepler import atomic_files
from kepler._compat.sklearn import validate_params
from kepler.clock import now
from kepler.errors import VersioningError
from kepler.records import Record, Section
from kepler.versioning.data_versions import check_metadata, commit_paths
from kepler.versioning.names import check_name
from kepler.versioning.project import Project, current

KIND = "pipelines"

# type name -> (module, class). The only transformers a declared step can name.
TRANSFORMERS: dict[str, tuple[str, str]] = {
    "StandardScaler": ("sklearn.preprocessing", "StandardScaler"),
    "MinMaxScaler": ("sklearn.preprocessing", "MinMaxScaler"),
    "RobustScaler": ("sklearn.preprocessing", "RobustScaler"),
    "MaxAbsScaler": ("sklearn.preprocessing", "MaxAbsScaler"),
    "Normalizer": ("sklearn.preprocessing", "Normalizer"),
    "Binarizer": ("sklearn.preprocessing", "Binarizer"),
    "QuantileTransformer": ("sklearn.preprocessing", "QuantileTransformer"),
    "PowerTransformer": ("sklearn.preprocessing", "PowerTransformer"),
    "KBinsDiscretizer": ("sklearn.preprocessing", "KBinsDiscretizer"),
    "PolynomialFeatures": ("sklearn.preprocessing", "PolynomialFeatures"),
    "SplineTransformer": ("sklearn.preprocessing", "SplineTransformer"),
    "OneHotEncoder": ("sklearn.preprocessing", "OneHotEncoder"),
    "OrdinalEncoder": ("sklearn.preprocessing", "OrdinalEncoder"),
    "SimpleImputer": ("sklearn.impute", "SimpleImputer"),
    "KNNImputer": ("sklearn.impute", "KNNImputer"),
    "VarianceThreshold": ("sklearn.feature_selection", "VarianceThreshold"),
    "SelectKBest": ("sklearn.feature_selection", "SelectKBest"),
    "SelectPercentile": ("sklearn.feature_selection", "SelectPercentile"),
    "PCA": ("sklearn.decomposition", "PCA"),
    "TruncatedSVD": ("sklearn.decomposition", "TruncatedSVD"),
}
SUPERVISED = frozenset({"SelectKBest", "SelectPercentile"})
# Steps that turn text and category columns into numbers; on a mixed table they apply to those columns.
ENCODERS = frozenset({"OneHotEncoder", "OrdinalEncoder"})
NUMERIC_DTYPES = ("number", "bool")
TEXT_DTYPES = ("object", "string", "category")
WRAPPED = "columns"  # the name of the step inside each ColumnTransformer of a mixed-table pipeline
# score_func of the selectors, by name (a step cannot carry a function).
SCORE_FUNCTIONS = ("f_classif", "f_regression", "chi2", "mutual_info_classif", "mutual_info_regression")


@dataclass
class FittedState(Section):
    """What the first apply fitted (``record.fitted``; it also reads as its dict: ``fitted["sha256"]``).

    Attributes:
        file: The joblib file of the fitted scikit-learn Pipeline, beside the record.
        sha256: Its sha256, checked on every load.
        fit_data_md5: md5 of the table it was fitted on (values, column names, dtypes).
        fit_labels_md5: md5 of the labels it was fitted with, or None.
        fitted_at: UTC time of fitting.
        n_features_in: Columns it was fitted on.
        feature_names_out: The output columns, or None.
        sklearn_version: The scikit-learn that fitted it.
        labels: Where the labels came from (``y``, ``column 'failure'``, or :data:`UNLABELLED`).
        label: The label column kept out of the steps, or None. A record fitted before the label was
            recorded has no ``label`` key (``recorded("label")`` is False): the project's label applies.
        fit_steps: The steps as fitted (a selector's score function filled in), or None in older records.
        layout: ``{"kind": "plain"}``, or ``"mixed"`` with the ``numeric``, ``encoded`` and ``passthrough``
            columns; None in older records.
    """

    KIND = "feature pipeline's fitted state"
    ERROR = VersioningError

    file: str
    sha256: str
    fit_data_md5: str | None = None
    fit_labels_md5: str | None = None
    fitted_at: str | None = None
    n_features_in: int | None = None
    feature_names_out: list[str] | None = None
    sklearn_version: str | None = None
    labels: str | None = None
    label: str | None = None
    fit_steps: list[dict[str, Any]] | None = None
    layout: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass
class FeaturePipeline(Record):
    """One declared version of a feature pipeline (record: ``.kepler/records/pipelines/<name>@<version>.json``).

    Schema versions: 1, the record as written before records carried ``schema_version``.

    Attributes:
        pipeline_name: The pipeline's name.
        version: Its version (any safe name, e.g. ``v1.2.0``).
        steps: The declared steps, ``{"type": ..., **params}`` each.
        created_at: UTC time of declaration.
        fitted: None until the first apply; then its :class:`FittedState`.
    """

    pipeline_name: str
    version: str
    steps: list[dict[str, Any]]
    created_at: str
    fitted: FittedState | None = None

    KIND = "feature pipeline"
    ERROR = VersioningError
    NESTED = {"fitted": FittedState}

    @property
    def pipeline_id(self) -> str:
        """``name@version``, the record's name."""
        return f"{self.pipeline_name}@{self.version}"

    @property
    def supervised(self) -> bool:
        """True when a step needs labels to be fitted."""
        return any(step["type"] in SUPERVISED for step in self.steps)

    def to_sklearn(self) -> Any:
        """A new, unfitted scikit-learn Pipeline of the declared steps."""
        return _build(self.steps)

    def to_dict(self) -> dict[str, Any]:
        """The pipeline as JSON-ready values (``pipeline_id`` included)."""
        return {**super().to_dict(), "pipeline_id": self.pipeline_id}


# --------------------------------------------------------------------------- steps


def _normalize(steps: Any) -> list[dict[str, Any]]:
    if not isinstance(steps, (list, tuple)) or not steps:
        raise VersioningError("steps must be a non-empty list of {'type': ..., **params} dicts")
    normalized = []
    for index, step in enumerate(steps):
        if not isinstance(step, dict) or not isinstance(step.get("type"), str):
            raise VersioningError(f"step {index} must be a dict with a 'type' string, got {step!r}")
        normalized.append(check_metadata(dict(step), f"step {index} ({step['type']})"))
    _build(normalized)  # every type known, every parameter accepted
    return normalized


def _make(index: int, step: dict[str, Any]) -> Any:
    import importlib

    kind = step["type"]
    if kind not in TRANSFORMERS:
        raise VersioningError(
            f"step {index}: unknown type {kind!r}; use one of {', '.join(sorted(TRANSFORMERS))}"
        )
    params = {k: v for k, v in step.items() if k != "type"}
    if kind in SUPERVISED:
        name = params.get("score_func", "f_classif")
        if name == "variance":
            params["score_func"] = variance_scores
        elif name not in SCORE_FUNCTIONS:
            raise VersioningError(
                f"step {index} ({kind}): score_func {name!r} is not one of {', '.join(SCORE_FUNCTIONS)}"
            )
        else:
            params["score_func"] = getattr(importlib.import_module("sklearn.feature_selection"), name)
    module, cls_name = TRANSFORMERS[kind]
    cls = getattr(importlib.import_module(module), cls_name)
    try:
        transformer = cls(**params)
        validate_params(transformer)
    except (TypeError, ValueError) as exc:
        raise VersioningError(f"step {index} ({kind}): bad parameters ({str(exc).splitlines()[0]})") from None
    return transformer


UNLABELLED = "none: selected by variance"


def _without_labels(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The steps as fitted without labels: selectors score by variance."""
    return [{**s, "score_func": "variance"} if s["type"] in SUPERVISED else s for s in steps]


def variance_scores(X: Any, y: Any = None) -> Any:
    """Scores each feature by its variance: the unsupervised score a selector uses when fitted without labels."""
    import numpy as np

    return np.nanvar(np.asarray(X, dtype=float), axis=0)


def _build(steps: list[dict[str, Any]], *, mixed: bool = False, text: bool = False) -> Any:
    """The scikit-learn Pipeline of ``steps``; on a mixed table each step sits in a ColumnTransformer.

    Args:
        steps: The steps to build.
        mixed: The table has columns that are not numeric: each step then applies to the numeric ones
            (an encoder to the text ones while there are some) and passes the others through.
        text: The table has text or category columns for the first encoder to encode.
    """
    from sklearn.pipeline import Pipeline

    if not mixed:
        return Pipeline([(f"step{i}_{step['type']}", _make(i, step)) for i, step in enumerate(steps)])
    from sklearn.compose import ColumnTransformer, make_column_selector

    built = []
    for i, step in enumerate(steps):
        encodes = step["type"] in ENCODERS and text
        text = text and not encodes
        columns = make_column_selector(dtype_include=list(TEXT_DTYPES if encodes else NUMERIC_DTYPES))
        built.append(
            (
                f"step{i}_{step['type']}",
                ColumnTransformer(
                    [(WRAPPED, _make(i, step), columns)],
                    remainder="passthrough",
                    verbose_feature_names_out=False,
                ),
            )
        )
    return Pipeline(built).set_output(transform="pandas")


def _unwrap(step: Any) -> Any:
    """The declared transformer inside one step of a built pipeline (fitted when the step is)."""
    from sklearn.compose import ColumnTransformer

    if isinstance(step, ColumnTransformer):
        fitted = getattr(step, "named_transformers_", None)
        return fitted[WRAPPED] if fitted is not None else step.transformers[0][1]
    return step


def _dense(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The steps asked for dense outputs (a mixed table's columns travel as a DataFrame)."""
    dense = []
    for step in steps:
        if step["type"] == "OneHotEncoder" and step.get("sparse_output", True):
            step = {**step, "sparse_output": False}
        elif step["type"] == "KBinsDiscretizer" and step.get("encode", "onehot") == "onehot":
            step = {**step, "encode": "onehot-dense"}
        dense.append(step)
    return dense


def _score_by_task(steps: list[dict[str, Any]], y: Any) -> list[dict[str, Any]]:
    """Selectors without a declared ``score_func`` score a regression label with ``f_regression``."""
    if not any(s["type"] in SUPERVISED and "score_func" not in s for s in steps) or not _is_regression(y):
        return steps
    return [
        {**s, "score_func": "f_regression"} if s["type"] in SUPERVISED and "score_func" not in s else s
        for s in steps
    ]


def _is_regression(y: Any) -> bool:
    """True for labels that kepler.data reads as a regression target (numbers, not a few classes)."""
    import numpy as np
    import pandas as pd

    from kepler.data.dataset import REGRESSION
    from kepler.data.label import prepare_label
    from kepler.errors import DataError

    values = np.asarray(y)
    if values.ndim != 1:
        return False
    try:
        return prepare_label("y", pd.Series(values).dropna())[1] == REGRESSION
    except DataError:
        return False


def _layout(frame: Any) -> dict[str, Any] | None:
    """The columns of a mixed table by kind, or None for a table whose columns are all numeric."""
    import pandas as pd

    if not isinstance(frame, pd.DataFrame):
        return None
    numeric = [str(c) for c in frame.select_dtypes(include=list(NUMERIC_DTYPES)).columns]
    if len(numeric) == frame.shape[1]:
        return None
    text = [str(c) for c in frame.select_dtypes(include=list(TEXT_DTYPES)).columns]
    return {
        "kind": "mixed",
        "numeric": numeric,
        "text": text,
        "other": [str(c) for c in frame.columns if str(c) not in numeric and str(c) not in text],
    }


def _project_label(project: Project) -> str | None:
    label = (project.config.get("build") or {}).get("label")
    return str(label) if label else None


def _split_label(data: Any, label: str | None) -> tuple[Any, Any]:
    """``data`` without the label column, and that column (None when ``data`` has none)."""
    import pandas as pd

    if label is None or not isinstance(data, pd.DataFrame) or label not in data.columns:
        return data, None
    return data.drop(columns=[label]), data[label]


def _canonical(steps: list[dict[str, Any]]) -> str:
    return json.dumps(steps, sort_keys=True, separators=(",", ":"))


def _pipeline_id(pipeline_name: str, version: str) -> str:
    check_name(pipeline_name, "pipeline name")
    if "@" in pipeline_name:
        raise VersioningError(
            f"pipeline name {pipeline_name!r} may not contain '@' (it separates the version)"
        )
    check_name(version, "pipeline version")
    return check_name(f"{pipeline_name}@{version}", "pipeline id")


def _load_record(project: Project, pipeline_id: str) -> FeaturePipeline:
    if not project.store.exists(KIND, pipeline_id):
        raise VersioningError(
            f"unknown feature pipeline {pipeline_id!r}; declare it with "
            f"kp.versioning.version_feature_pipeline(...) or list them with kp.versioning.list_pipelines()"
        )
    return FeaturePipeline.from_dict(project.store.read(KIND, pipeline_id))


# --------------------------------------------------------------------------- data


def _digest(values: Any) -> str | None:
    """md5 of a table's values, column names and dtypes (for the record of what a pipeline was fit on)."""
    if values is None:
        return None
    import numpy as np
    import pandas as pd

    if isinstance(values, pd.Series):
        values = values.to_frame()
    frame = values if isinstance(values, pd.DataFrame) else pd.DataFrame(np.asarray(values))
    digest = hashlib.md5()
    digest.update(json.dumps([[str(c), str(t)] for c, t in frame.dtypes.items()]).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def _output(result: Any, data: Any, fitted: Any) -> Any:
    import numpy as np
    import pandas as pd

    if isinstance(result, pd.DataFrame):  # a mixed table: text columns keep their values and dtypes
        result = result.copy()
        result.index = data.index
        return result
    if hasattr(result, "toarray"):
        result = result.toarray()
    result = np.asarray(result)
    if not isinstance(data, pd.DataFrame):
        return result
    try:
        columns = [str(c) for c in fitted.get_feature_names_out()]
    except (AttributeError, ValueError, TypeError):
        columns = [f"x{i}" for i in range(result.shape[1])]
    return pd.DataFrame(result, columns=columns, index=data.index)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _load_fitted(project: Project, record: FeaturePipeline) -> Any:
    import joblib

    path = project.store.root / KIND / f"{record.pipeline_id}.joblib"
    if not path.is_file():
        raise VersioningError(
            f"{path}: the fitted state of {record.pipeline_id} is missing; restore it from git "
            f"(git checkout -- {path.relative_to(project.root)})"
        )
    if record.fitted is None or _sha256(path) != record.fitted.sha256:
        raise VersioningError(
            f"{path}: sha256 differs from the record of {record.pipeline_id}; the file was changed "
            f"after fitting: restore it from git"
        )
    return joblib.load(path)


def _save_fitted(project: Project, pipeline_id: str, pipeline: Any) -> Path:
    import joblib

    return atomic_files.write_atomically(
        project.store.root / KIND / f"{pipeline_id}.joblib", lambda handle: joblib.dump(pipeline, handle)
    )


# --------------------------------------------------------------------------- public API


def version_feature_pipeline(
    pipeline_name: str, steps: list[dict[str, Any]], version: str, *, project: Project | None = None
) -> FeaturePipeline:
    """Declares (records and commits) one version of a feature pipeline.

    Args:
        pipeline_name: The pipeline's name (no ``@``).
        steps: ``[{"type": "StandardScaler"}, {"type": "PolynomialFeatures", "degree": 2}, ...]``; the types
            are those of :data:`TRANSFORMERS`, the other keys the transformer's parameters. Selectors take
            ``score_func`` by name (:data:`SCORE_FUNCTIONS`, default ``f_classif``).
        version: The version, e.g. ``v1.2.0``.
        project: The project; default the one containing the working directory.

    Returns:
        The declared pipeline (unchanged when the same steps were declared before).

    Raises:
        VersioningError: a bad name, an unknown type or bad parameters (naming the step), or
            ``name@version`` already declared with other steps.
    """
    project = current(project)
    pipeline_id = _pipeline_id(pipeline_name, version)
    normalized = _normalize(steps)
    store = project.store
    with store.lock(KIND):
        if store.exists(KIND, pipeline_id):
            existing = FeaturePipeline.from_dict(store.read(KIND, pipeline_id))
            if _canonical(existing.steps) == _canonical(normalized):
                return existing
            raise VersioningError(
                f"feature pipeline {pipeline_id} exists with other steps; "
                f"declare the new steps as another version"
            )
        record = FeaturePipeline(
            pipeline_name=pipeline_name, version=version, steps=normalized, created_at=now()
        )
        path = store.write(KIND, pipeline_id, record.to_dict())
        commit_paths(project, [path], f"kepler: feature pipeline {pipeline_id}")
    return record


def apply_versioned_pipeline(
    data: Any,
    pipeline_name: str,
    version: str,
    *,
    y: Any = None,
    label: str | None = None,
    project: Project | None = None,
) -> Any:
    """Transforms ``data`` with a versioned feature pipeline, fitting it on the first call.

    Numeric steps apply to the numeric columns; text, category and date columns pass through unless an
    encoder step encodes them (see the module's notes).

    Args:
        data: A pandas DataFrame (numeric or mixed) or a 2-D array.
        pipeline_name: The pipeline's name.
        version: Its version.
        y: Labels for supervised steps; required on the first apply of a pipeline with one (unless the
            data holds the label column), ignored after.
        label: The label column, kept out of the steps and the output; by default the one the pipeline
            was fitted with, else ``[build] label`` of kepler.toml. On the first apply it gives the
            labels when ``y`` is not passed.
        project: The project; default the one containing the working directory.

    Returns:
        A DataFrame (columns from ``get_feature_names_out()``, the input's index) for a DataFrame,
        else a 2-D numpy array.

    Raises:
        VersioningError: unknown pipeline; a supervised step and no ``y`` on the first apply; data
            that the fitted pipeline cannot transform; a fitted state that fails its sha256 check.
    """
    project = current(project)
    pipeline_id = _pipeline_id(pipeline_name, version)
    if label is not None and not isinstance(label, str):
        raise VersioningError(f"label must be a column name, got {label!r}")
    record = _load_record(project, pipeline_id)
    if record.fitted is None:
        store = project.store
        with store.lock(KIND):
            record = _load_record(project, pipeline_id)
            if record.fitted is None:
                return _fit(project, record, data, y, label or _project_label(project))
    if label is None:
        label = record.fitted.label if record.fitted.recorded("label") else _project_label(project)
    data, _ = _split_label(data, label)
    fitted = _load_fitted(project, record)
    try:
        result = fitted.transform(data)
    except (ValueError, TypeError, KeyError) as exc:
        raise VersioningError(
            f"{pipeline_id} cannot transform this data ({str(exc).splitlines()[0][:200]}); "
            f"pass the same columns it was fitted on"
        ) from None
    return _output(result, data, fitted)


def _fit(project: Project, record: FeaturePipeline, data: Any, y: Any, label: str | None) -> Any:
    import sklearn

    features, label_column = _split_label(data, label)
    steps = record.steps
    labels = "y"
    if y is None and label_column is not None:
        y, labels = label_column, f"column {label!r}"
    if y is not None:
        steps = _score_by_task(steps, y)
    if record.supervised and y is None:
        explicit = [s["type"] for s in steps if s["type"] in SUPERVISED and "score_func" in s]
        if explicit:
            raise VersioningError(
                f"{record.pipeline_id} scores features with a supervised score_func "
                f"({', '.join(explicit)}) and is not fitted yet: pass the labels with y= on its "
                f"first apply; later applies reuse the fitted state without y"
            )
        # No labels and no score_func asked for: select by variance, an unsupervised score (recorded).
        steps = _without_labels(steps)
        labels = UNLABELLED
    layout = _layout(features)
    if layout is not None:
        steps = _dense(steps)
    pipeline = _build(steps, mixed=layout is not None, text=bool(layout and layout["text"]))
    try:
        pipeline.fit(features, y)
        result = pipeline.transform(features)
    except (ValueError, TypeError, KeyError) as exc:
        raise VersioningError(
            f"fitting {record.pipeline_id} failed ({str(exc).splitlines()[0][:200]}); "
            f"check the data and the steps' parameters"
        ) from None
    path = _save_fitted(project, record.pipeline_id, pipeline)
    try:
        names = [str(c) for c in pipeline.get_feature_names_out()]
    except (AttributeError, ValueError, TypeError):
        names = None
    record.fitted = FittedState(
        file=path.name,
        sha256=_sha256(path),
        fit_data_md5=_digest(data),
        fit_labels_md5=_digest(y),
        fitted_at=now(),
        n_features_in=int(getattr(pipeline, "n_features_in_", 0)) or None,
        feature_names_out=names,
        sklearn_version=sklearn.__version__,
        labels=labels,
        label=label if label_column is not None else None,
        fit_steps=steps,
        layout=_recorded_layout(layout, steps),
    )
    store = project.store
    json_path = store.write(KIND, record.pipeline_id, record.to_dict())
    commit_paths(project, [path, json_path], f"kepler: fitted feature pipeline {record.pipeline_id}")
    return _output(result, features, pipeline)


def _recorded_layout(layout: dict[str, Any] | None, steps: list[dict[str, Any]]) -> dict[str, Any]:
    """Which columns the steps transformed, which the first encoder encoded, which passed through."""
    if layout is None:
        return {"kind": "plain"}
    encoded = layout["text"] if any(s["type"] in ENCODERS for s in steps) else []
    return {
        "kind": "mixed",
        "numeric": layout["numeric"],
        "encoded": encoded,
        "passthrough": [c for c in layout["text"] + layout["other"] if c not in encoded],
    }


def list_pipelines(*, project: Project | None = None) -> list[FeaturePipeline]:
    """Every declared feature pipeline version, by name then declaration time."""
    project = current(project)
    records = [FeaturePipeline.from_dict(r) for r in project.store.all(KIND)]
    return sorted(records, key=lambda p: (p.pipeline_name, p.created_at, p.version))


def rebuild_pipeline(pipeline_id: str, *, project: Project | None = None) -> dict[str, Any]:
    """Rebuilds a feature pipeline version from its record, for ``kp.reproduce`` (type ``pipeline``).

    The declared steps are rebuilt from the allow-list; when the version is fitted, its saved state is
    loaded after its sha256 check and each fitted step is compared with its declaration (type and
    parameters).

    Args:
        pipeline_id: ``name@version``.

    Returns:
        ``{"pipeline": <sklearn Pipeline, fitted when the version is>, "fitted": bool,
        "steps_completed": [...], "artifacts_created": []}``.

    Raises:
        VersioningError: unknown pipeline, a bad id, or a fitted state that does not match its record.
    """
    project = current(project)
    if not isinstance(pipeline_id, str) or pipeline_id.count("@") != 1:
        raise VersioningError(f"feature pipeline {pipeline_id!r} must be given as 'name@version'")
    name, version = pipeline_id.split("@")
    record = _load_record(project, _pipeline_id(name, version))
    fitted_record = record.fitted
    if fitted_record is not None and fitted_record.fit_steps is not None:
        declared = _build(fitted_record.fit_steps)
    else:  # not fitted, or a record written before fit_steps was kept
        unlabelled = fitted_record is not None and fitted_record.labels == UNLABELLED
        declared = _build(_without_labels(record.steps) if unlabelled else record.steps)
    done = [
        f"rebuilt {record.pipeline_id} from its record: " + " -> ".join(step["type"] for step in record.steps)
    ]
    if fitted_record is None:
        done.append("not fitted yet: the first apply_versioned_pipeline fits it")
        return {"pipeline": declared, "fitted": False, "steps_completed": done, "artifacts_created": []}
    fitted = _load_fitted(project, record)
    have_steps = [_unwrap(step) for _, step in getattr(fitted, "steps", [])]
    same = len(have_steps) == len(declared.steps) and all(
        type(want) is type(have) and repr(want.get_params()) == repr(have.get_params())
        for (_, want), have in zip(declared.steps, have_steps, strict=False)
    )
    if not same:
        raise VersioningError(
            f"the fitted state of {record.pipeline_id} does not match its declared steps; "
            f"restore the record and its .joblib file from git"
        )
    done.append(
        f"loaded the fitted state (sha256 {fitted_record.sha256[:12]} verified, fitted "
        f"{fitted_record.fitted_at} on data md5 {fitted_record.fit_data_md5})"
    )
    return {"pipeline": fitted, "fitted": True, "steps_completed": done, "artifacts_created": []}


def get_pipeline(pipeline_name: str, version: str, *, project: Project | None = None) -> FeaturePipeline:
    """One declared feature pipeline version.

    Raises:
        VersioningError: unknown pipeline.
    """
    project = current(project)
    return _load_record(project, _pipeline_id(pipeline_name, version))
