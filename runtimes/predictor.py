"""A scikit-learn style predictor over a compiled artifact."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from kepler.errors import KeplerError
from kepler.runtimes.artifact import Artifact, read_artifact
from kepler.runtimes.inputs import REJECT, FeedBuilder
from kepler.runtimes.session import create_session, session_settings
from kepler.targets import TargetProfile, load_profile, profile_from_dict


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
        self.task: str = outputs["task"]
        self.classes_ = np.asarray(outputs["classes"]) if outputs.get("classes") is not None else None
        self.feature_names_in_ = np.asarray(self._feeds.names, dtype=object)
        self._run = self.session.run
        self._label_out = [outputs["label"]] if outputs.get("label") else None
        self._proba_out = [outputs["probabilities"]] if outputs.get("probabilities") else None
        self._value_out = [outputs["prediction"]] if outputs.get("prediction") else None
        self._score_out = [outputs["scores"]] if outputs.get("scores") else None

    @property
    def manifest(self) -> dict[str, Any]:
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
        """Labels for classifiers and outlier detectors, values for regressors."""
        names = self._label_out or self._value_out
        return self._run(names, self._feeds.feed(data))[0].ravel()

    def predict_proba(self, data: Any) -> np.ndarray:
        """Class probabilities, shape (rows, classes). Classifiers only."""
        if self._proba_out is None:
            raise KeplerError(f"predict_proba needs a classifier, this model is a {self.task}; use predict")
        return self._run(self._proba_out, self._feeds.feed(data))[0]

    def decision_function(self, data: Any) -> np.ndarray:
        """Anomaly scores of an outlier detector, as its ``decision_function`` (negative means outlier)."""
        if self._score_out is None:
            raise KeplerError(f"decision_function needs an outlier detector, this model is a {self.task}; use predict")
        return self._run(self._score_out, self._feeds.feed(data))[0].ravel()

    def run(self, data: Any) -> dict[str, np.ndarray]:
        """Every graph output by name."""
        names = [o.name for o in self.session.get_outputs()]
        return dict(zip(names, self._run(names, self._feeds.feed(data))))


def load(artifact: str | os.PathLike[str] | Artifact, target: str | os.PathLike[str] | TargetProfile | None = None,
         *, unknown_columns: str = REJECT) -> Predictor:
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
    if target is None:
        profile = profile_from_dict(_profile_fields(opened.manifest["target"]), f"{opened.path}/manifest.json:target")
    else:
        profile = load_profile(target)
    return Predictor(opened, profile, unknown_columns=unknown_columns)


def _profile_fields(recorded: dict[str, Any]) -> dict[str, Any]:
    fields = {k: v for k, v in recorded.items() if k != "source"}
    if "parity" in fields:
        fields["parity"] = dict(fields["parity"])
    return fields
