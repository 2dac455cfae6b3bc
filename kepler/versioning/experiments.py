"""Experiment tracking on MLflow, in the project's own tracking store.

Runs go to the project's tracking URI (:attr:`kepler.versioning.project.Project.tracking_uri`: kepler.toml's
``[tracking] uri``, else ``MLFLOW_TRACKING_URI``, else the embedded SQLite file), and new experiments keep their
artifacts in the project's artifact root (a tracking server keeps them where it says). A tracking server that
cannot be reached or refuses gives one :class:`~kepler.errors.EndpointError` naming it. Every run is tagged with
the code and data it saw:

- ``mlflow.source.git.commit``: the project's git HEAD (MLflow does not set it for library calls);
- ``kepler.version``: the Kepler that ran it;
- ``kepler.data_versions``: the data version ids recorded in the project, comma-separated (absent when none).

Example (guide section 3)::

    experiment_id = kp.versioning.start_experiment("predictive-maintenance")
    kp.versioning.log_parameters({"algorithm": "xgboost", "n_estimators": 100})
    kp.versioning.log_metrics({"accuracy": 0.94, "f1_score": 0.93})
    result = kp.versioning.end_experiment()          # {'run_id', 'experiment_id', 'status'}

    with kp.versioning.track_experiment("automl-v2.0") as exp:   # FINISHED, or FAILED on an exception
        kp.versioning.log_metrics({"accuracy": 0.95})

A ``kp.automl`` search run inside the block (or inside a caller's own ``mlflow.start_run()``) records
itself as a child run of the active run, with its trials as child runs of that one
(:func:`kepler.versioning.build_tracking.track_search`).
"""

from __future__ import annotations

import contextlib
import numbers
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from kepler.errors import VersioningError
from kepler.versioning import gitrepo
from kepler.versioning.endpoints import service_errors
from kepler.versioning.project import current

END_STATUSES = ("FINISHED", "FAILED", "KILLED")
_TAG_LIMIT = 5000  # MLflow's limit on a tag value is larger; stay well below it
_run_uris: dict[str, str] = {}  # run id -> the tracking URI it was started on


@dataclass
class ExperimentRun:
    """The run that :func:`track_experiment` opened.

    Attributes:
        run_id: MLflow run id.
        experiment_id: MLflow experiment id.
        experiment_name: The experiment's name.
        status: ``RUNNING`` inside the block; ``FINISHED``, ``FAILED`` or ``KILLED`` after it.
    """

    run_id: str
    experiment_id: str
    experiment_name: str
    status: str = "RUNNING"

    def to_dict(self) -> dict[str, str]:
        """JSON-ready fields."""
        return {
            "run_id": self.run_id,
            "experiment_id": self.experiment_id,
            "experiment_name": self.experiment_name,
            "status": self.status,
        }


def _data_versions(project: Any) -> list[str]:
    """The ids of the project's data versions (a data version's record is named by its id)."""
    return list(project.store.names("data"))


def run_tags(project: Any) -> dict[str, str]:
    """The tags every Kepler run carries: git commit, Kepler version, data versions."""
    from kepler import __version__

    tags = {"kepler.version": __version__, "kepler.project": project.name}
    commit = gitrepo.head(project.root)
    if commit:
        tags["mlflow.source.git.commit"] = commit
    versions = ",".join(_data_versions(project))
    if versions:
        tags["kepler.data_versions"] = (
            versions if len(versions) <= _TAG_LIMIT else versions[: _TAG_LIMIT - 3] + "..."
        )
    return tags


def _experiment_id(client: Any, name: str, artifact_root: str | None) -> str:
    """The id of experiment ``name``, created (with ``artifact_root``; None lets a tracking server choose) if new."""
    from mlflow.exceptions import MlflowException

    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        try:
            return client.create_experiment(name, artifact_location=artifact_root)
        except MlflowException:  # created meanwhile by another process
            experiment = client.get_experiment_by_name(name)
            if experiment is None:
                raise
    if experiment.lifecycle_stage == "deleted":
        raise VersioningError(
            f"experiment {name!r} was deleted in MLflow; restore it "
            f"(mlflow experiments restore --experiment-id {experiment.experiment_id}) "
            f"or choose another name"
        )
    return experiment.experiment_id


def start_experiment(name: str, *, project: Any = None, tags: Mapping[str, str] | None = None) -> str:
    """Starts an MLflow run in experiment ``name`` (created, with the project's artifact root, if new).

    Args:
        name: The experiment name.
        project: The project; the one containing the working directory by default.
        tags: Extra run tags.

    Returns:
        The experiment id.

    Raises:
        VersioningError: a run is already active, or the name is empty or names a deleted experiment.
    """
    import mlflow
    from mlflow import MlflowClient

    if not isinstance(name, str) or not name.strip():
        raise VersioningError(f"experiment name must be a non-empty string, got {name!r}")
    active = mlflow.active_run()
    if active is not None:
        raise VersioningError(
            f"run {active.info.run_id} is still active; finish it with end_experiment() "
            f"before starting another"
        )
    project = current(project)
    uri = project.tracking_uri
    mlflow.set_tracking_uri(uri)
    with service_errors(uri, project.s3_endpoint):
        experiment_id = _experiment_id(MlflowClient(tracking_uri=uri), name, project.artifact_root)
        run = mlflow.start_run(experiment_id=experiment_id, tags={**run_tags(project), **dict(tags or {})})
    _run_uris[run.info.run_id] = uri
    return experiment_id


def _active(project: Any = None) -> tuple[Any, Any]:
    """The active run and a client on its tracking store (the given project's, else the one it started on)."""
    import mlflow
    from mlflow import MlflowClient

    run = mlflow.active_run()
    if run is None:
        raise VersioningError(
            "no experiment is running; start one with start_experiment(name) "
            "or use `with track_experiment(name):`"
        )
    uri = (
        project.tracking_uri
        if project is not None
        else _run_uris.get(run.info.run_id) or mlflow.get_tracking_uri()
    )
    return run, MlflowClient(tracking_uri=uri)


def active_run_store() -> tuple[Any, Any]:
    """The active run and a client on the tracking store that holds it.

    A run of :func:`track_experiment` is looked for on the store it started on; a caller's own
    ``mlflow.start_run()`` on MLflow's current tracking URI.

    Raises:
        VersioningError: no run is active, or that store does not hold it (the tracking URI changed
            after the run started).
    """
    from mlflow.exceptions import MlflowException

    run, client = _active()
    try:
        with service_errors(client.tracking_uri):
            client.get_run(run.info.run_id)
    except MlflowException:
        raise VersioningError(
            f"the active MLflow run {run.info.run_id} is not in the tracking store now set; "
            f"set the tracking URI back to the store the run was started in"
        ) from None
    return run, client


def log_parameters(params: Mapping[str, Any], *, project: Any = None) -> None:
    """Logs parameters on the active run (values are stored as text, as MLflow does).

    ``project`` only chooses the tracking store; by default it is the one the run started on.

    Raises:
        VersioningError: no run is active, or ``params`` is not a mapping.
    """
    from mlflow.entities import Param

    if not isinstance(params, Mapping):
        raise VersioningError(f"parameters must be a dict of name -> value, got {type(params).__name__}")
    run, client = _active(project)
    if params:
        with service_errors(client.tracking_uri):
            client.log_batch(run.info.run_id, params=[Param(str(k), str(v)) for k, v in params.items()])


def log_metrics(metrics: Mapping[str, float], step: int | None = None, *, project: Any = None) -> None:
    """Logs numeric metrics on the active run (``project`` as in :func:`log_parameters`).

    Raises:
        VersioningError: no run is active, or a value is not a number.
    """
    import time

    from mlflow.entities import Metric

    if not isinstance(metrics, Mapping):
        raise VersioningError(f"metrics must be a dict of name -> number, got {type(metrics).__name__}")
    bad = {k: v for k, v in metrics.items() if not isinstance(v, numbers.Real) or isinstance(v, bool)}
    if bad:
        raise VersioningError(
            f"metrics must be numbers; {', '.join(f'{k}={v!r}' for k, v in bad.items())} "
            f"are not (log text with log_parameters)"
        )
    run, client = _active(project)
    now = int(time.time() * 1000)
    if metrics:
        with service_errors(client.tracking_uri):
            client.log_batch(
                run.info.run_id,
                metrics=[Metric(str(k), float(v), now, step or 0) for k, v in metrics.items()],
            )


def end_experiment(status: str = "FINISHED", *, project: Any = None) -> dict[str, str]:
    """Ends the active run.

    Args:
        status: FINISHED, FAILED or KILLED.
        project: Chooses the tracking store; by default the one the run started on.

    Returns:
        ``{'run_id': ..., 'experiment_id': ..., 'status': ...}``.

    Raises:
        VersioningError: no run is active, or an unknown status.
    """
    import mlflow

    status = str(status).upper()
    if status not in END_STATUSES:
        raise VersioningError(f"unknown run status {status!r}; use one of {', '.join(END_STATUSES)}")
    run, _ = _active(project)
    uri = project.tracking_uri if project is not None else _run_uris.get(run.info.run_id)
    _run_uris.pop(run.info.run_id, None)
    if uri:
        mlflow.set_tracking_uri(uri)
    with service_errors(uri or mlflow.get_tracking_uri()):
        mlflow.end_run(status=status)
    return {"run_id": run.info.run_id, "experiment_id": run.info.experiment_id, "status": status}


@contextlib.contextmanager
def track_experiment(
    name: str, *, project: Any = None, tags: Mapping[str, str] | None = None
) -> Iterator[ExperimentRun]:
    """Runs the block inside an MLflow run of experiment ``name``.

    The run ends FINISHED when the block completes, FAILED when it raises (the exception
    propagates), KILLED on KeyboardInterrupt or SystemExit.

    Yields:
        An :class:`ExperimentRun` with ``run_id`` and ``experiment_id``.
    """
    import mlflow

    experiment_id = start_experiment(name, project=project, tags=tags)
    active = mlflow.active_run()
    assert active is not None  # start_experiment has just started it
    handle = ExperimentRun(run_id=active.info.run_id, experiment_id=experiment_id, experiment_name=name)
    try:
        yield handle
    except Exception:
        _finish(handle, "FAILED")
        raise
    except BaseException:
        _finish(handle, "KILLED")
        raise
    _finish(handle, "FINISHED")


def _finish(handle: ExperimentRun, status: str) -> None:
    """Ends the block's run, unless the block already ended it itself."""
    import mlflow

    active = mlflow.active_run()
    if active is not None and active.info.run_id == handle.run_id:
        handle.status = end_experiment(status)["status"]
    else:
        from mlflow import MlflowClient

        uri = _run_uris.pop(handle.run_id, None) or mlflow.get_tracking_uri()
        with service_errors(uri):
            handle.status = MlflowClient(tracking_uri=uri).get_run(handle.run_id).info.status
