"""kp.build: search (or take) a model, compile it for a target, and write builds/<build-id>/ with its reports."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kepler import atomic_files
from kepler.build_report import BuildReport, ReportArtifact, TableSummary
from kepler.clock import now, utc_now
from kepler.errors import DataError

DEFAULT_BUILDS = Path("builds")


@dataclass
class BuildResult:
    """A finished build.

    Attributes:
        path: The build folder (``builds/<build-id>``).
        report: The report written as ``report.json`` (``report.to_dict()`` is its JSON form).
        result: The AutoML result (searches only).
    """

    path: Path
    report: BuildReport
    result: Any = None

    @property
    def artifact_path(self) -> Path:
        """The compiled artifact inside the build."""
        return self.path / "artifact"


class Terminated(BaseException):
    """A build stopped by SIGTERM: raised where the build then was, so that it cleans up as on Ctrl-C.

    A ``BaseException``, as KeyboardInterrupt is, so that no ``except Exception`` swallows it.

    Attributes:
        signal: The signal's number (the CLI exits with 128 plus it).
    """

    def __init__(self, signum: int = signal.SIGTERM) -> None:
        super().__init__(signum)
        self.signal = signum


@contextlib.contextmanager
def terminate_raises() -> Iterator[None]:
    """For the duration of the block, SIGTERM raises :class:`Terminated` instead of ending the process at once,
    so that ``finally`` blocks run: the build's partial folder is removed and the search's process stopped.

    Only where SIGTERM still has its default action, and only in the main thread (where Python delivers
    signals): a caller's own handler is left alone. A second SIGTERM during the cleanup is ignored.
    """
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    ):
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the cleanup that follows must not be cut short
        raise Terminated(signum)

    signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def new_build_id() -> str:
    """A sortable, unique build id: UTC time plus a random suffix."""
    return f"{utc_now():%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"


def _artifact_section(artifact: Any, final_path: Path) -> ReportArtifact:
    return ReportArtifact(
        path=str(final_path),
        sha256=artifact.manifest.sha256,
        size_mb=artifact.manifest.size_bytes / 2**20,
        estimator=artifact.manifest.source.estimator,
        parity=artifact.parity.to_dict(),
        benchmark=artifact.benchmark.to_dict() if artifact.benchmark else None,
    )


def _from_model(
    model_path: Path, data: Any, label: str | None, target: Any, staging: Path, header: dict[str, Any]
) -> tuple[BuildReport, Any]:
    """Compiles and benchmarks a given model on a table (its label column, if named, is left out).

    Returns:
        The report (``header`` gives its build id, command, time and target) and the compiled artifact.
    """
    import numpy as np

    from kepler.automl import budgets as budget_mod
    from kepler.compilers import compile as compile_model
    from kepler.compilers import load_model
    from kepler.data import read_table
    from kepler.targets import load_profile

    profile = load_profile(target)
    frame = read_table(data) if not hasattr(data, "columns") else data
    truth = None
    if label is not None:
        if label not in frame.columns:
            raise DataError(
                f"label column {label!r} is not in the table (columns: {', '.join(map(str, frame.columns))})"
            )
        truth = frame[label]
        frame = frame.drop(columns=[label])
    model = load_model(model_path)
    source_columns = [str(c) for c in frame.columns] + ([str(label)] if label is not None else [])
    names = getattr(model, "feature_names_in_", None)
    if names is not None:
        frame = frame[[c for c in frame.columns if c in set(map(str, names))]]
    # The table's columns the model does not read (the label, ids, timestamps) are recorded as ignored, as a
    # search build records them: a row sent as it stands in the source table is then answered, not refused.
    read = {str(c) for c in frame.columns}
    ignored = {column: {"ignored": True} for column in source_columns if column not in read}
    # With the label, a classifier's reference profile gets its calibration table (from this table's rows).
    labels = truth.to_numpy() if truth is not None else None
    artifact = compile_model(
        model, profile, frame, output=staging / "artifact", labels=labels, input_typing=ignored or None
    )
    budgets = budget_mod.merge_budgets(profile, {}, None, None)
    rows = budget_mod.check(budgets, budget_mod.measured(artifact.benchmark))
    report = BuildReport(
        **header,
        kind="model",
        model_file=str(model_path),
        best_estimator=artifact.manifest.source.estimator,
        constraint_report=rows,
        deployment_ready=all(r["ok"] for r in rows) and artifact.parity.passed,
        data=TableSummary(rows=int(len(frame)), label=label, features=[str(c) for c in frame.columns]),
    )
    if truth is not None:
        predictor = artifact.predictor()
        if artifact.output_schema.task == "classifier":
            labels = predictor.predict(frame)
            report.test_metrics = {
                "accuracy": float(np.mean(labels.astype(str) == truth.astype(str).to_numpy()))
            }
        elif artifact.output_schema.task == "regressor":
            values = predictor.predict(frame)
            report.test_metrics = {
                "rmse": float(np.sqrt(np.mean((values - truth.to_numpy(dtype=float)) ** 2)))
            }
        report.test_metrics_note = (
            "computed on the given table with the compiled model (not a held-out split)"
        )
    return report, artifact


BUILD_SECTION = "build"
BUILD_KEYS = ("data", "label", "use_case")


def project_build_settings(
    label: str | None, use_case: str | None
) -> tuple[Path, str | None, str | None, Path]:
    """The data table, label and use case from the ``[build]`` table of the nearest kepler.toml, and the
    file's folder.

    Arguments given win over the file; ``data`` is read relative to the file's folder.

    Raises:
        DataError: no kepler.toml with ``[build] data`` around the working directory, or a bad value.
    """
    from kepler.data.config import project_section
    from kepler.project_file import PROJECT_FILE, find_project_file

    path = find_project_file()
    table = project_section(BUILD_SECTION, BUILD_KEYS) if path is not None else {}
    for key, value in table.items():
        if not isinstance(value, str) or not value.strip():
            raise DataError(f"{path}: [{BUILD_SECTION}] {key} must be a non-empty string")
    if "data" not in table:
        where = (
            f'add [{BUILD_SECTION}] data = "data/table.csv" to {path}'
            if path
            else f'or run it in a Kepler project whose {PROJECT_FILE} has [{BUILD_SECTION}] data = "data/table.csv"'
        )
        raise DataError(
            f"pass the data table (a CSV or Parquet file), e.g. `kepler build data/sensors.csv "
            f"--label failure`, {where}"
        )
    assert path is not None  # without a kepler.toml the table is empty, and the check above raised
    data = (path.parent / table["data"]).resolve()
    if not data.is_file():
        raise DataError(
            f"{path}: [{BUILD_SECTION}] data = {table['data']!r} is not a file ({data}); "
            f"fix the path (it is relative to {PROJECT_FILE})"
        )
    return data, label or table.get("label"), use_case or table.get("use_case"), path.parent


def build(
    data: Any = None,
    *,
    label: str | None = None,
    target: Any = "edge",
    use_case: str | None = None,
    time_budget: str | float = "5m",
    model: str | os.PathLike[str] | None = None,
    output: str | os.PathLike[str] | None = None,
    constraints: Any = None,
    seed: int = 0,
    interpretable: bool = False,
    command: str | None = None,
    track: bool | None = None,
    progress: Callable[..., None] | None = None,
    force: bool = False,
    spark: str | None = None,
    concurrent_trials: int | None = None,
) -> BuildResult:
    """Builds a deployable artifact for a target and writes ``<output>/<build-id>/``.

    Without ``model``, runs the constraint-aware search (:func:`kepler.automl.automl_pipeline`);
    with it, compiles and benchmarks that model. The folder holds ``artifact/``,
    ``report.json`` and ``report.html``; it appears only when the build succeeded.

    Args:
        data: The table (CSV/Parquet path or DataFrame); by default ``[build] data`` of the nearest
            kepler.toml (with its ``label`` and ``use_case`` where not given; builds then go to
            ``builds/`` beside that file).
        label: The label column (required for a search).
        target: ``edge``, ``cloud`` or a profile TOML path.
        use_case: A preset name or file.
        time_budget: Search budget (``90s``, ``5m``, ``1h``).
        model: A saved model to compile instead of searching.
        output: Parent folder of builds (default ``builds``).
        constraints: Extra budgets, as a dict or a JSON file.
        seed: Seed of the split, the search and the models.
        interpretable: Search only interpretable families.
        command: The command line, recorded in the report.
        track: Record the build in the Kepler project (DVC data version, MLflow runs and model,
            unified version); by default whenever the working directory is inside a project.
        progress: Forwarded to the search.
        force: Accept a time budget above the maximum of 24 h.
        spark: Run the search's trials on this Spark master (``local[2]``, ``spark://HOST:7077``); by default
            ``[scale] spark_master`` of the nearest kepler.toml, else on this machine. The chosen model's budgets
            are re-measured on this machine either way (:mod:`kepler.automl.spark`).
        concurrent_trials: Trials run at once on Spark (default: ``[scale] concurrent_trials``, else the
            session's cores).

    A build stopped by Ctrl-C (KeyboardInterrupt) or SIGTERM (:class:`Terminated`) leaves nothing behind:
    no partial folder, no search process.

    Raises:
        DataError, ProfileError (also for a time budget above 24 h without ``force``), BudgetError, and the
        compiler's errors.
    """
    with terminate_raises():
        return _build(
            data,
            label=label,
            target=target,
            use_case=use_case,
            time_budget=time_budget,
            model=model,
            output=output,
            constraints=constraints,
            seed=seed,
            interpretable=interpretable,
            command=command,
            track=track,
            progress=progress,
            force=force,
            spark=spark,
            concurrent_trials=concurrent_trials,
        )


def _build(
    data: Any,
    *,
    label: str | None,
    target: Any,
    use_case: str | None,
    time_budget: str | float,
    model: str | os.PathLike[str] | None,
    output: str | os.PathLike[str] | None,
    constraints: Any,
    seed: int,
    interpretable: bool,
    command: str | None,
    track: bool | None,
    progress: Callable[..., None] | None,
    force: bool,
    spark: str | None = None,
    concurrent_trials: int | None = None,
) -> BuildResult:
    from kepler.automl.budgets import parse_duration
    from kepler.automl.plan import check_time_budget
    from kepler.targets import load_profile

    if model is None:
        check_time_budget(parse_duration(time_budget), force=force)

    home = None  # the kepler.toml folder when the table comes from there: builds/ goes beside it
    if data is None:
        data, label, use_case, home = project_build_settings(label, use_case)
    if model is None and label is None:
        raise DataError(
            "a search needs the label column: add --label <column> (or pass --model to compile a saved model)"
        )
    profile = load_profile(target)
    trials_on = _trials_on(spark, concurrent_trials, model)
    tracked = _project_for(track)
    if tracked is not None:  # before a search that may take hours: the services it records to must answer
        from kepler.versioning.build_tracking import check_services

        check_services(tracked)
    parent = (
        Path(output)
        if output is not None
        else (home / DEFAULT_BUILDS if home is not None else DEFAULT_BUILDS)
    )
    build_id = new_build_id()
    staging = parent / f".{build_id}.partial"
    final = parent / build_id
    created_parent = not parent.exists()
    try:
        staging.mkdir(parents=True)
        header: dict[str, Any] = {
            "build_id": build_id,
            "command": command,
            "created_at": now(),
            "target": profile.to_dict(),
        }
        result = None
        if model is not None:
            report, artifact = _from_model(Path(model), data, label, profile, staging, header)
        else:
            from kepler.automl import automl_pipeline

            assert label is not None  # a search without a label raised DataError above
            result = automl_pipeline(
                data,
                label,
                optimization_time=time_budget,
                environment=profile,
                constraints=constraints,
                seed=seed,
                use_case=use_case,
                interpretability_required=interpretable,
                output=staging / "artifact",
                progress=progress,
                force=force,
                spark=trials_on,
            )
            report = BuildReport.of_search(result, **header)
            artifact = result.artifact
        if isinstance(data, (str, os.PathLike)):
            report.data = report.data or TableSummary()
            report.data.path = str(data)
        report.artifact = _artifact_section(artifact, final / "artifact")
        atomic_files.write_json(staging / "report.json", report.to_dict())
        _write_html(report, staging / "report.html")
        os.rename(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if created_parent and parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()
        raise
    if result is not None:
        result.artifact = type(artifact)(final / "artifact", artifact.manifest)
    project = _project_for(track)
    if project is not None:
        from kepler.versioning.build_tracking import track_build

        report.tracking = track_build(
            project, report, final, data if isinstance(data, (str, os.PathLike)) else None
        )
        atomic_files.write_json(final / "report.json", report.to_dict())
    return BuildResult(final, report, result)


def _trials_on(spark: str | None, concurrent_trials: int | None, model: Any) -> Any:
    """Where the search's trials run (None: here), its master checked before anything is written."""
    from kepler.automl.spark import trials_setting
    from kepler.errors import KeplerError

    if model is not None:
        if spark is not None or concurrent_trials is not None:
            raise KeplerError("--spark and --concurrent-trials run search trials; a --model build has none")
        return None
    trials_on = trials_setting(spark, concurrent_trials)
    if trials_on is not None:
        trials_on.check()
    return trials_on


def _project_for(track: bool | None) -> Any:
    """The project to record a build in: the one around the working directory, unless tracking is off."""
    if track is False:
        return None
    from kepler.errors import ProjectNotFoundError
    from kepler.versioning.project import current

    try:
        return current()
    except ProjectNotFoundError:
        if track:
            raise
        return None


def _write_html(report: BuildReport, path: Path) -> None:
    from kepler.reporting import write_build_report

    write_build_report(report, path)
