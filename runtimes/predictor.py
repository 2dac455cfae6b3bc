"""A scikit-learn style predictor over a compiled artifact."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from kepler.errors import InputSchemaError, KeplerError
from kepler.runtimes.artifact import Artifact, read_artifact
from kepler.runtimes.inputs import REJECT, FeedBuilder
from kepler.runtimes.manifest import Manifest, profile_from_manifest
from kepler.runtimes.session import create_session, session_settings
from kepler.targets import TargetProfile, load_profile


class Predictor:
    """Runs a compiled artifact with ``predict`` and ``predict_proba``, like the native model.

    Inputs may carry the source table's columns the model does not read (ids, timestamps, the label: the
    manifest's ``ignored_columns``); they are ignored. Any other column the model does not know is an
    error, or is ignored too with ``unknown_columns="ignore"``.

    Args:
        artifact: The opened artifact.
        profile: The target profile whose session settings to use.
        unknown_columns: ``reject`` (default) or ``ignore``: what to do with columns the model does not know.

    Raises:
        KeplerError: ``unknown_columns`` is neither ``reject`` nor ``ignore``.
    """

    def __init__(self, artifact: Artifact, profile: TargetProfile, *, unknown_columns: str = REJECT) -> None:
        self.artifact = artifact
        self.profile = profile
        self._feeds = FeedBuilder(artifact.input_schema, unknown_columns=unknown_columns)
        self.session = create_session(artifact.model_path, profile)
        outputs = artifact.output_schema
        self.task: str = outputs.task
        self.classes_ = np.asarray(outputs.classes) if outputs.classes is not None else None
        self.feature_names_in_ = np.asarray(self._feeds.names, dtype=object)
        self._run = self.session.run
        self._answer_out = [outputs.answer]
        self._proba_out = [outputs.probabilities] if outputs.probabilities else None
        self._score_out = [outputs.scores] if outputs.scores else None

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
) -> Predictor:
    """Opens an artifact (verifying its sha256) and returns a :class:`Predictor`.

    Args:
        artifact: The artifact folder or an opened :class:`Artifact`.
        target: The profile whose session settings to use; by default the one it was compiled for.
        unknown_columns: ``reject`` (default) or ``ignore``: what to do with input columns the model does
            not know (columns the build dropped are always ignored).

    Raises:
        ArtifactError: missing, corrupted or tampered artifact.
        ProfileError: unknown or invalid target.
        KeplerError: ``unknown_columns`` is neither ``reject`` nor ``ignore``.
    """
    opened = read_artifact(artifact)
    profile = profile_from_manifest(opened.manifest) if target is None else load_profile(target)
    return Predictor(opened, profile, unknown_columns=unknown_columns)
