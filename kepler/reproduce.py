"""kp.reproduce: rebuild a recorded version from its data hash, config and seed, and prove it is the same model."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from kepler import atomic_files
from kepler.errors import KeplerError, VersioningError
from kepler.versioning.project import current

if TYPE_CHECKING:
    from kepler.versioning.build_tracking import ProbeSet
    from kepler.versioning.data_versions import DataVersion

TYPES = ("full", "data", "pipeline", "experiment")


@dataclass
class ReproductionResult:
    """What a reproduction did and whether it rebuilt the same thing.

    Attributes:
        success: True when every step ran and the rebuilt predictions are within the profile's tolerance.
        version: The version reproduced.
        reproduction_type: full, data, pipeline or experiment.
        steps_completed: One line per finished step.
        artifacts_created: Files and folders the reproduction wrote.
        error_message: Why it failed, or None.
        comparison: Rebuilt against recorded predictions: max abs diff, bit exact, tolerance.
    """

    success: bool
    version: str
    reproduction_type: str
    steps_completed: list[str] = field(default_factory=list)
    artifacts_created: list[str] = field(default_factory=list)
    error_message: str | None = None
    comparison: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return asdict(self)


def _resolve_data_version(name: str, project: Any) -> DataVersion:
    """A data version by id, or by the guide's ``file@version`` form."""
    from kepler.versioning.data_versions import DataVersion

    records = [DataVersion.from_dict(r) for r in project.store.all("data")]
    by_id = {r.version_id: r for r in records}
    if name in by_id:
        return by_id[name]
    if "@" in name:
        stem, version = name.split("@", 1)
        for candidate in (f"{stem}-{version}", f"{stem}{version}", f"{stem}_{version}"):
            if candidate in by_id:
                return by_id[candidate]
        for record in records:
            if Path(record.file_path).stem == stem and record.version_id.endswith(version):
                return record
    raise VersioningError(f"unknown data version {name!r}; list them with kp.versioning.list_versions()")


def _restore_data(record: DataVersion, folder: Path, project: Any) -> Path:
    from kepler.versioning.data_versions import get_data

    content = get_data(record.version_id, project=project)
    digest = hashlib.md5(content).hexdigest()
    if digest != record.md5:
        raise VersioningError(f"restored bytes of {record.version_id} have md5 {digest}, not {record.md5}")
    target = folder / Path(record.file_path).name
    return atomic_files.write_bytes(target, content)  # output= may be a folder the user keeps


def _compare(
    recorded: ProbeSet, outputs: dict[str, np.ndarray], tolerance: dict[str, float]
) -> dict[str, Any]:
    worst = 0.0
    labels_equal = True
    exact = True
    for name, values in recorded.outputs.items():
        before = np.asarray(values)
        after = np.asarray(outputs[name])
        if before.dtype.kind in "fc" or after.dtype.kind in "fc":
            diff = float(np.max(np.abs(before.astype(float) - after.astype(float)))) if before.size else 0.0
            worst = max(worst, diff)
            exact = exact and diff == 0.0
        else:
            same = bool(np.array_equal(before.astype(str), after.astype(str)))
            labels_equal = labels_equal and same
            exact = exact and same
    scale = max(
        (
            float(np.max(np.abs(np.asarray(v, dtype=float))))
            for v in recorded.outputs.values()
            if np.asarray(v).dtype.kind in "fc" and np.asarray(v).size
        ),
        default=0.0,
    )
    within = worst <= tolerance["atol"] + tolerance["rtol"] * scale and labels_equal
    return {
        "rows": recorded.row_count,
        "max_abs_diff": worst,
        "bit_exact": exact,
        "labels_equal": labels_equal,
        "within_tolerance": within,
        "tolerance": tolerance,
    }


def _full(name: str, project: Any, workdir: Path, result: ReproductionResult) -> None:
    from sklearn.base import is_classifier

    from kepler.automl.families import FAMILIES
    from kepler.automl.labels import LabelCodes, label_codes
    from kepler.automl.pipelines import candidate
    from kepler.automl.splits import split_test
    from kepler.compilers import compile as compile_model
    from kepler.data import load
    from kepler.runtimes import load as load_artifact
    from kepler.runtimes.manifest import profile_from_record
    from kepler.versioning.build_tracking import BuildConfig, read_probes
    from kepler.versioning.unified import get_unified_version

    version = get_unified_version(name, project=project)
    config = BuildConfig.from_dict(version.build_config or {})
    restored = []
    for entry in version.data or []:
        data_record = _resolve_data_version(entry["data_version"], project)
        restored.append(_restore_data(data_record, workdir, project))
        result.steps_completed.append(
            f"restored data {data_record.version_id} (md5 {data_record.md5} verified)"
        )
        result.artifacts_created.append(str(restored[-1]))
    if version.feature_pipeline:
        _pipeline(version.feature_pipeline, project, workdir, result)
    else:
        result.steps_completed.append(
            "feature pipeline: none recorded (a build keeps its preprocessing in the model)"
        )
    if version.mlflow_run_id:
        _experiment(version.mlflow_run_id, project, workdir, result, restore_data=False)
    if config.kind != "search":
        # Nothing to retrain from: the version was recorded by hand, not by a kepler build search.
        result.steps_completed.append(
            "model: not retrained (the version records no build config); data, pipeline and run verified"
        )
        return
    if not restored:
        raise VersioningError(f"{name} records no data version; its model cannot be retrained")
    if (
        config.label is None
        or config.family is None
        or config.params is None
        or not isinstance(config.target, dict)
    ):
        raise VersioningError(
            f"{name} records a build config without its label, family, params or target; "
            f"its model cannot be retrained (rebuild it with kepler build)"
        )

    dataset = load(restored[0], label=config.label)
    assert dataset.task is not None  # load sets the task whenever it is given a label
    seed = int(config.seed or 0)
    label, class_labels = dataset.label, None
    if dataset.task == "classification":
        # Fit on the codes of the recorded labels, as the build did (a record older than them: the sorted labels,
        # which is how the build encoded them), and compile with them, so that the graph answers the labels.
        recorded = config.class_labels
        codes = LabelCodes(tuple(recorded)) if recorded is not None else label_codes(dataset.label)
        label, class_labels = codes.encode(dataset.label), codes.class_labels
    x_rest, y_rest, _, _ = split_test(dataset.frame, label, dataset.task, seed)
    family = FAMILIES.get(config.family)
    model = candidate(
        family,
        config.params,
        dataset.task,
        seed,
        list(dataset.numeric_columns),
        list(dataset.categorical_columns),
    ).fit(x_rest, y_rest)
    if not is_classifier(model.steps[-1][1]):  # an outlier detector is fit without the label
        class_labels = None
    result.steps_completed.append(
        f"retrained {config.family} with its recorded config and seed {seed} "
        f"on {len(x_rest)} rows (no search: a wall-clock search cannot repeat)"
    )
    profile = profile_from_record(config.target, f"{name}:target")
    artifact = compile_model(
        model,
        profile,
        x_rest,
        output=workdir / "artifact",
        input_typing=dataset.input_typing(),
        class_labels=class_labels,
    )
    result.artifacts_created.append(str(artifact.path))
    result.steps_completed.append(
        f"recompiled for target {profile.name} (parity {'passed' if artifact.parity.passed else 'failed'})"
    )

    probe = read_probes(project, name)
    outputs = load_artifact(artifact.path).run(probe.rows)
    comparison = _compare(probe, outputs, {"atol": profile.parity.atol, "rtol": profile.parity.rtol})
    comparison["artifact_sha256_equal"] = artifact.manifest.sha256 == version.artifact_sha256
    result.comparison = comparison
    verdict = "bit-exact" if comparison["bit_exact"] else f"max abs diff {comparison['max_abs_diff']:.3g}"
    result.steps_completed.append(
        f"compared predictions on {comparison['rows']} stored probe rows: {verdict}"
    )
    if not comparison["within_tolerance"]:
        raise VersioningError(
            f"rebuilt predictions differ from the recorded ones ({verdict}) beyond the target's tolerance"
        )


def _data(name: str, project: Any, workdir: Path, result: ReproductionResult) -> None:
    record = _resolve_data_version(name, project)
    path = _restore_data(record, workdir, project)
    result.artifacts_created.append(str(path))
    result.steps_completed.append(
        f"restored {record.file_path} of {record.version_id} ({record.size} bytes, md5 {record.md5} verified)"
    )


def _resolve_pipeline(name: str, project: Any) -> str:
    """A pipeline id ``name@version``, also from the guide's short forms (``preprocessing@v1.2`` for
    ``sensor-preprocessing@v1.2.0``) when exactly one declared pipeline matches."""
    from kepler.versioning.features import list_pipelines

    declared = [f"{p.pipeline_name}@{p.version}" for p in list_pipelines(project=project)]
    if name in declared:
        return name
    if "@" in name:
        short, version = name.split("@", 1)
        matches = [
            d
            for d in declared
            if (d.split("@")[0] == short or d.split("@")[0].endswith(f"-{short}"))
            and (d.split("@")[1] == version or d.split("@")[1].startswith(f"{version}."))
        ]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise VersioningError(
                f"{name!r} matches several pipelines ({', '.join(matches)}); give the full name@version"
            )
    raise VersioningError(f"unknown feature pipeline {name!r}; declared: {', '.join(declared) or 'none'}")


def _pipeline(name: str, project: Any, workdir: Path, result: ReproductionResult) -> None:
    from kepler.versioning.features import rebuild_pipeline

    rebuilt = rebuild_pipeline(_resolve_pipeline(name, project), project=project)
    result.steps_completed.extend(rebuilt["steps_completed"])
    result.artifacts_created.extend(rebuilt.get("artifacts_created", []))


def _experiment(
    name: str, project: Any, workdir: Path, result: ReproductionResult, *, restore_data: bool = True
) -> None:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient(tracking_uri=project.tracking_uri)
    run = None
    try:
        run = client.get_run(name)
    except MlflowException:
        experiment = client.get_experiment_by_name(name)
        if experiment is not None:
            runs = client.search_runs(
                [experiment.experiment_id], order_by=["attributes.start_time DESC"], max_results=1
            )
            run = runs[0] if runs else None
    if run is None:
        raise VersioningError(f"unknown experiment or run {name!r}; see MLflow for the recorded runs")
    commit = run.data.tags.get("mlflow.source.git.commit")
    result.steps_completed.append(
        f"found run {run.info.run_id} ({run.info.status}) with "
        f"{len(run.data.params)} parameters and {len(run.data.metrics)} metrics"
    )
    result.steps_completed.append(f"code version: git commit {commit or 'not recorded'}")
    if not restore_data:
        return
    data_versions = [v for v in run.data.tags.get("kepler.data_versions", "").split(",") if v]
    for version in data_versions:
        _data(version, project, workdir, result)
    result.comparison = {"params": dict(run.data.params), "metrics": dict(run.data.metrics)}


def from_version(
    name: str,
    reproduction_type: str = "full",
    *,
    project: Any = None,
    output: str | os.PathLike[str] | None = None,
) -> ReproductionResult:
    """Reproduces a recorded version.

    ``full`` restores the data by its hash, rebuilds the feature pipeline, retrains the recorded
    final config with its seed (it does not re-run the search: a wall-clock search cannot repeat,
    FLAML #151), recompiles, and compares predictions on the probe set stored with the version.
    ``data`` restores one data version (``"sensors@v1.0"`` or its id), ``pipeline`` one feature
    pipeline (``"preprocessing@v1.2"``), ``experiment`` one MLflow run or experiment.

    Args:
        name: The version, data version, pipeline, run or experiment.
        reproduction_type: full, data, pipeline or experiment.
        project: The project; by default the one around the working directory.
        output: A folder that keeps what the reproduction writes (restored data, the rebuilt
            artifact). Without it, a temporary folder is used and removed before returning.

    Returns:
        The result; ``success`` is False with ``error_message`` when the version is unknown, a
        step failed, or the rebuilt predictions are beyond the target's parity tolerance (the
        guide reads ``result.success`` and ``result.error_message``).

    Raises:
        VersioningError: an unknown reproduction type.
        ProjectNotFoundError: not inside a Kepler project.
    """
    if reproduction_type not in TYPES:
        raise VersioningError(
            f"unknown reproduction type {reproduction_type!r}; use one of {', '.join(TYPES)}"
        )
    project = current(project)
    temporary = output is None
    workdir = Path(tempfile.mkdtemp(prefix="kepler-reproduce-")) if output is None else Path(output)
    workdir.mkdir(parents=True, exist_ok=True)
    result = ReproductionResult(success=False, version=name, reproduction_type=reproduction_type)
    step = {"full": _full, "data": _data, "pipeline": _pipeline, "experiment": _experiment}[reproduction_type]
    try:
        step(name, project, workdir, result)
        result.success = True
    except KeplerError as exc:
        result.error_message = str(exc)
    finally:
        if temporary:
            _remove_workdir(workdir, result)
    return result


def _remove_workdir(workdir: Path, result: ReproductionResult) -> None:
    """Deletes the temporary folder of a reproduction run without ``output``, and the paths it held from
    ``artifacts_created`` (they no longer exist)."""
    shutil.rmtree(workdir, ignore_errors=True)
    inside = [p for p in result.artifacts_created if Path(p).resolve().is_relative_to(workdir.resolve())]
    if inside:
        result.artifacts_created = [p for p in result.artifacts_created if p not in inside]
        result.steps_completed.append(
            f"removed the temporary folder of the {len(inside)} file(s) and folder(s) it "
            f"made (give an output folder to keep them)"
        )
