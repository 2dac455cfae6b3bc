"""A scikit-learn style predictor over a compiled artifact."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from kepler.errors import InputSchemaError, KeplerError
from kepler.runtimes.artifact import Artifact, read_artifact
from kepler.runtimes.compiled_trees import BackendUnavailable, CompiledTrees
from kepler.runtimes.inputs import REJECT, FeedBuilder
from kepler.runtimes.manifest import ONNX_BACKEND, Manifest, profile_from_manifest
from kepler.runtimes.session import create_session, session_settings
from kepler.targets import TargetProfile, load_profile

_LOG = logging.getLogger("kepler.runtimes")
Runner = Callable[[Sequence[str] | None, Mapping[str, np.ndarray]], list[np.ndarray]]


class Predictor:
    """Runs a compiled artifact with ``predict`` and ``predict_proba``, like the native model.

    Inputs may carry the source table's columns the model does not read (ids, timestamps, the label: the
    manifest's ``ignored_columns``); they are ignored. Any other column the model does not know is an
    error, or is ignored too with ``unknown_columns="ignore"``.

    Args:
        artifact: The opened artifact.
        profile: The target profile whose session settings to use.
        unknown_columns: ``reject`` (default) or ``ignore``: what to do with columns the model does not know.
        backend: Serve every call with this backend (``onnxruntime`` or a compiled one the artifact holds)
            instead of the one the artifact chose for the call's batch size (benchmarks and parity checks).

    A compiled backend the artifact chose but that cannot run here (another machine, a CPU without the
    instructions it was built for, its files left out of a copy, a profile that does not allow it) leaves
    those calls to the ONNX graph; :attr:`backend_notes` and a logged warning say why.

    Raises:
        KeplerError: ``unknown_columns`` is neither ``reject`` nor ``ignore``.
        BackendUnavailable: ``backend`` names a backend that cannot serve here.
    """

    def __init__(
        self,
        artifact: Artifact,
        profile: TargetProfile,
        *,
        unknown_columns: str = REJECT,
        backend: str | None = None,
    ) -> None:
        self.artifact = artifact
        self.profile = profile
        self._feeds = FeedBuilder(artifact.input_schema, unknown_columns=unknown_columns)
        self.session = create_session(artifact.model_path, profile)
        outputs = artifact.output_schema
        self.task: str = outputs.task
        self.classes_ = np.asarray(outputs.classes) if outputs.classes is not None else None
        self.feature_names_in_ = np.asarray(self._feeds.names, dtype=object)
        self.backend_notes: list[str] = []
        self._routes = self._load_routes(backend)
        self._run: Runner = self._routes[0][2] if len(self._routes) == 1 else _routed(self._routes)
        self._answer_out = [outputs.answer]
        self._proba_out = [outputs.probabilities] if outputs.probabilities else None
        self._score_out = [outputs.scores] if outputs.scores else None

    def _load_routes(self, forced: str | None) -> list[tuple[int, str, Runner]]:
        """``(from_rows, backend, runner)``: which backend serves each batch size here."""
        onnx_run: Runner = self.session.run
        plan = self.artifact.manifest.backends
        if forced == ONNX_BACKEND or (forced is None and plan is None):
            return [(1, ONNX_BACKEND, onnx_run)]
        wanted = [forced] if forced is not None else [name for _, name in plan.choice] if plan else []
        runners: dict[str, Runner] = {ONNX_BACKEND: onnx_run}
        for name in dict.fromkeys(wanted):
            if name in runners:
                continue
            try:
                runners[name] = self._compiled_runner(name)
            except BackendUnavailable as exc:
                if forced is not None:
                    raise
                note = f"{exc}; serving those calls with onnxruntime"
                self.backend_notes.append(note)
                _LOG.warning("kepler: %s", note)
        if forced is not None:
            return [(1, forced, runners[forced])]
        assert plan is not None
        routes = []
        for rows, name in plan.choice:
            served = name if name in runners else ONNX_BACKEND
            routes.append((rows, served, runners[served]))
        return routes

    def _compiled_runner(self, name: str) -> Runner:
        plan = self.artifact.manifest.backends
        record = plan.compiled_backend(name) if plan is not None else None
        if record is None:
            raise BackendUnavailable(f"the artifact holds no compiled backend {name!r}")
        if name not in self.profile.backends:
            raise BackendUnavailable(f"target {self.profile.name!r} does not allow backend {name!r}")
        missing = [f for f in record.files() if not (self.artifact.path / f).is_file()]
        if missing:
            raise BackendUnavailable(
                f"compiled backend {name!r} is not in this copy ({', '.join(missing)} missing)"
            )
        runner: Runner = CompiledTrees(self.artifact.path, record.to_dict(), self.profile).run
        return runner

    def backend_for(self, rows: int) -> str:
        """The backend that serves a call of ``rows`` rows here (after any fallback to onnxruntime)."""
        return _route(self._routes, rows)[1]

    @property
    def backends(self) -> dict[str, Any]:
        """Which backend serves which batch sizes here, and why any chosen at compile time does not (JSON)."""
        return {
            "serving": [{"from_rows": rows, "backend": name} for rows, name, _ in self._routes],
            "notes": list(self.backend_notes),
        }

    def run_feed(self, names: Sequence[str], feed: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """The named outputs of a checked feed (:meth:`feed`), from the backend chosen for its row count."""
        return self._run(names, feed)

    @property
    def manifest(self) -> Manifest:
        """The artifact's manifest."""
        return self.artifact.manifest

    @property
    def ignored_columns(self) -> list[str]:
        """Columns of the source table that inputs may carry and the model ignores (ids, timestamps, the label)."""
        return list(self._feeds.ignored)

    @property
    def unknown_columns(self) -> str:
        """``reject`` or ``ignore``: what happens to columns the model does not know."""
        return self._feeds.unknown_columns

    @property
    def session_settings(self) -> dict[str, Any]:
        """The onnxruntime settings this predictor runs with."""
        return session_settings(self.profile)

    def feed(self, data: Any) -> dict[str, np.ndarray]:
        """Checks ``data`` and returns the session feed (exposed for benchmarks and servers)."""
        return self._feeds.feed(data)

    def fastest_form(self, data: Any) -> Any:
        """``data`` checked and converted once into the form predictions read fastest."""
        return self._feeds.fastest_form(data)

    def predict(self, data: Any) -> np.ndarray:
        """Labels for classifiers and outlier detectors, values for regressors.

        Raises:
            InputSchemaError: ``data`` breaks the input contract (:mod:`kepler.runtimes.inputs`), or a value the
                model computes is not finite (inputs far outside what it was trained on).
        """
        return finite_answer(self._run(self._answer_out, self._feeds.feed(data))[0].ravel())

    def predict_proba(self, data: Any) -> np.ndarray:
        """Class probabilities, shape (rows, classes). Classifiers only.

        Raises:
            InputSchemaError: as :meth:`predict`.
        """
        if self._proba_out is None:
            raise KeplerError(f"predict_proba needs a classifier, this model is a {self.task}; use predict")
        return finite_answer(self._run(self._proba_out, self._feeds.feed(data))[0])

    def decision_function(self, data: Any) -> np.ndarray:
        """Anomaly scores of an outlier detector, as its ``decision_function`` (negative means outlier).

        Raises:
            InputSchemaError: as :meth:`predict`.
        """
        if self._score_out is None:
            raise KeplerError(
                f"decision_function needs an outlier detector, this model is a {self.task}; use predict"
            )
        return finite_answer(self._run(self._score_out, self._feeds.feed(data))[0].ravel())

    def run(self, data: Any) -> dict[str, np.ndarray]:
        """Every graph output by name.

        Raises:
            InputSchemaError: as :meth:`predict`.
        """
        names = [o.name for o in self.session.get_outputs()]
        return {
            name: finite_answer(value)
            for name, value in zip(names, self._run(names, self._feeds.feed(data)), strict=False)
        }


def _route(routes: list[tuple[int, str, Runner]], rows: int) -> tuple[int, str, Runner]:
    chosen = routes[0]
    for route in routes:
        if rows >= route[0]:
            chosen = route
    return chosen


def _routed(routes: list[tuple[int, str, Runner]]) -> Runner:
    """A runner that sends each call to the route of its row count. A closure over the routes, not a method: a
    Predictor holding its own bound method would live until the cycle collector runs, and with it its sessions'
    thread pools."""

    def run(names: Sequence[str] | None, feed: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        return _route(routes, len(next(iter(feed.values()))))[2](names, feed)

    return run


def finite_answer(result: np.ndarray) -> np.ndarray:
    """``result`` when every number in it is finite (labels and text pass as they are).

    A model answers infinity or NaN only for inputs far outside what it was trained on (a linear model at
    1e308): an answer computed from such input is garbage, refused like any bad input.

    Raises:
        InputSchemaError: a value is not finite; names the first such row.
    """
    if result.dtype.kind != "f" or np.isfinite(result).all():
        return result
    bad = int(np.flatnonzero(~np.isfinite(result.reshape(len(result), -1)).all(axis=1))[0])
    raise InputSchemaError(
        f"the model's answer for row {bad} is not a finite number: the row's values lie far "
        f"outside what the model was trained on; send values in the range of the training data"
    )


def load(
    artifact: str | os.PathLike[str] | Artifact,
    target: str | os.PathLike[str] | TargetProfile | None = None,
    *,
    unknown_columns: str = REJECT,
    backend: str | None = None,
) -> Predictor:
    """Opens an artifact (verifying its sha256) and returns a :class:`Predictor`.

    Args:
        artifact: The artifact folder or an opened :class:`Artifact`.
        target: The profile whose session settings to use; by default the one it was compiled for.
        unknown_columns: ``reject`` (default) or ``ignore``: what to do with input columns the model does
            not know (columns the build dropped are always ignored).
        backend: Serve every call with this backend instead of the artifact's choice per batch size.

    Raises:
        ArtifactError: missing, corrupted or tampered artifact.
        ProfileError: unknown or invalid target.
        KeplerError: ``unknown_columns`` is neither ``reject`` nor ``ignore``.
    """
    opened = read_artifact(artifact)
    profile = profile_from_manifest(opened.manifest) if target is None else load_profile(target)
    return Predictor(opened, profile, unknown_columns=unknown_columns, backend=backend)
