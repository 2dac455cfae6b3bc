"""The executor's half of Spark scoring: the shipped artifact checked by sha256, one Predictor per Python worker.

Spark pickles :func:`score_partitions` into each task; this module stays imported in the (reused) Python worker,
so its cache keeps one onnxruntime session per worker for as long as the worker lives. It imports only numpy,
pandas, onnxruntime and kepler.runtimes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from kepler.errors import ArtifactError, InputSchemaError
from kepler.runtimes.artifact import read_artifact
from kepler.runtimes.inputs import IGNORE
from kepler.runtimes.manifest import profile_from_manifest
from kepler.runtimes.predictor import Predictor
from kepler.scoring.frames import numbers_from_text, score_frame

_PREDICTORS: dict[str, Predictor] = {}  # sha256 -> this worker's Predictor
_CHECKED: set[tuple[str, str]] = set()  # (sha256, job): the bytes of each job checked once per worker


@dataclass(frozen=True)
class ShippedArtifact:
    """An artifact as the job carries it to the executors (broadcast once per job).

    Attributes:
        files: The model file, the manifest and the compiled backends' files, by name, as bytes.
        model_file: The model file's name.
        sha256: The model file's sha256 the driver verified; each executor checks the bytes it got against it.
        model_id: The release name or artifact folder name written into every row.
        keep: The input columns copied to the output.
        threads: onnxruntime threads per Python worker (Spark's ``spark.task.cpus``).
        text_input: Whether the input arrives as text (CSV read untyped), so numeric columns are parsed first.
        job: A token of the job that shipped it (each job's bytes are checked anew).
    """

    files: dict[str, bytes]
    model_file: str
    sha256: str
    model_id: str
    keep: tuple[str, ...]
    threads: int = 1
    text_input: bool = False
    job: str = ""


def predictor_for(shipped: ShippedArtifact) -> Predictor:
    """This worker's Predictor of ``shipped``. The bytes each job ships are checked against the sha256 the driver
    verified, once per worker and job; the Predictor is made once per worker and model.

    Raises:
        ArtifactError: the bytes that reached the executor are not the artifact the driver verified.
    """
    cached = _PREDICTORS.get(shipped.sha256)
    if cached is not None and (shipped.sha256, shipped.job) in _CHECKED:
        return cached
    model = shipped.files.get(shipped.model_file, b"")
    actual = hashlib.sha256(model).hexdigest()
    if actual != shipped.sha256:
        raise ArtifactError(
            f"on the Spark executor: the shipped model's sha256 {actual[:12]}… is not the "
            f"{shipped.sha256[:12]}… the driver verified; the artifact was altered on its way, so score again "
            f"and check the cluster's storage"
        )
    _CHECKED.add((shipped.sha256, shipped.job))
    if cached is not None:
        return cached
    folder = _unpack(shipped)
    artifact = read_artifact(folder, verify=True)
    if artifact.manifest.sha256 != shipped.sha256:
        raise ArtifactError(
            f"on the Spark executor: the shipped manifest names sha256 {artifact.manifest.sha256[:12]}…, not "
            f"the {shipped.sha256[:12]}… the driver verified; score again"
        )
    profile = dataclasses.replace(profile_from_manifest(artifact.manifest), threads=max(1, shipped.threads))
    predictor = Predictor(artifact, profile, unknown_columns=IGNORE)
    _PREDICTORS[shipped.sha256] = predictor
    return predictor


def _unpack(shipped: ShippedArtifact) -> Path:
    """Writes the shipped files into this worker's Spark files folder (Spark removes it with the application)."""
    from pyspark import SparkFiles

    folder = Path(SparkFiles.getRootDirectory()) / f"kepler-{shipped.sha256[:16]}-{os.getpid()}"
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in shipped.files.items():
        if "/" in name or "\\" in name or name in ("", ".", ".."):
            continue  # only plain file names land in the folder
        (folder / name).write_bytes(data)
    return folder


def score_partitions(broadcast: object, counter: object) -> object:
    """The function ``mapInPandas`` runs: scores each batch of a partition with this worker's Predictor and adds
    the rows it scored to ``counter`` (a Spark accumulator)."""

    def run(frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        shipped: ShippedArtifact = broadcast.value  # type: ignore[attr-defined]
        predictor = predictor_for(shipped)
        schema = predictor.artifact.input_schema
        for frame in frames:
            if len(frame) == 0:
                continue
            if shipped.text_input:
                frame = numbers_from_text(frame, schema)
            try:
                # The id and sha256 are added on the JVM side (constant columns): 70 bytes a row less to ship.
                scored = score_frame(
                    predictor, frame, shipped.keep, shipped.model_id, shipped.sha256, identity=False
                )
            except InputSchemaError as exc:
                raise InputSchemaError(f"on the Spark executor: {exc}") from None
            counter.add(len(scored))  # type: ignore[attr-defined]
            yield scored

    return run
