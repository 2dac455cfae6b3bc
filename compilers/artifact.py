"""Writing a compiled artifact folder atomically, and the object kp.compile returns."""

from __future__ import annotations

import atexit
import math
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

from kepler import atomic_files
from kepler.errors import ArtifactError
from kepler.runtimes.artifact import MANIFEST_NAME, PROBE_NAME, Artifact, read_artifact, sha256_file
from kepler.runtimes.manifest import Benchmark, Parity, ReferenceFile

PROBE_ROWS = 200
REFERENCE_NAME = "reference.json"


class CompiledArtifact(Artifact):
    """A compiled artifact, as ``kp.compile`` returns it."""

    @property
    def parity(self) -> Parity:
        """The parity report recorded at compile time.

        Raises:
            ArtifactError: the manifest records none (a compile that did not finish).
        """
        if self.manifest.parity is None:
            raise ArtifactError(f"{self.path}: the manifest records no parity report; recompile the artifact")
        return self.manifest.parity

    @property
    def benchmark(self) -> Benchmark | None:
        """The benchmark report recorded at compile time (None: compiled with ``benchmark=False``)."""
        return self.manifest.benchmark

    def predictor(self, target: Any = None) -> Any:
        """Opens the artifact with onnxruntime (see ``kepler.runtimes.load``)."""
        from kepler.runtimes import load

        return load(self, target)

    def save(self, destination: str | os.PathLike[str]) -> CompiledArtifact:
        """Copies the artifact to ``destination`` atomically and returns the copy."""
        publish(self.path, Path(destination), move=False)
        return CompiledArtifact(Path(destination), read_artifact(destination).manifest)

    def __repr__(self) -> str:
        return f"CompiledArtifact({str(self.path)!r}, target={self.manifest.target.name!r})"


def check_output(output: Path) -> None:
    """Fails before any work when ``output`` exists and is neither empty nor a Kepler artifact."""
    if output.is_dir() and not any(output.iterdir()):
        return
    if output.exists() and not (output.is_dir() and (output / MANIFEST_NAME).is_file()):
        raise ArtifactError(f"{output}: exists and is not a Kepler artifact; choose another output folder")


def _json_value(value: Any) -> Any:
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def probe_columns(frame: Any, rows: int = PROBE_ROWS) -> dict[str, list[Any]]:
    """The first rows of a DataFrame as JSON-ready columns (NaN becomes null)."""
    head = frame.head(rows)
    return {str(name): [_json_value(v) for v in head[name].tolist()] for name in head.columns}


def write_json(path: Path, data: Any) -> None:
    """Writes one of the artifact's JSON files atomically, keys sorted (see :mod:`kepler.atomic_files`)."""
    atomic_files.write_json(path, data, sort_keys=True)


def new_staging() -> Path:
    """A private scratch folder for an artifact being built."""
    return Path(tempfile.mkdtemp(prefix="kepler-artifact-"))


def remove_at_exit(folder: Path) -> None:
    """Deletes a scratch artifact when the process exits (``CompiledArtifact.save`` keeps a copy)."""
    atexit.register(shutil.rmtree, folder, True)


def write_probe(folder: Path, frame: Any) -> None:
    """Stores probe rows with the artifact, for benchmarks and reproduction checks."""
    write_json(folder / PROBE_NAME, probe_columns(frame))


def write_reference(folder: Path, profile: Any) -> ReferenceFile:
    """Stores a reference profile in an artifact folder being built, and returns the manifest's record of it.

    Args:
        folder: The artifact folder (a staging folder: the manifest is written after this).
        profile: A :class:`kepler.monitoring.reference.ReferenceProfile`.

    Returns:
        The file's name, sha256 and size, for ``Manifest.reference``.
    """
    path = folder / REFERENCE_NAME
    atomic_files.write_text(path, profile.to_json() + "\n")
    return ReferenceFile(file=REFERENCE_NAME, sha256=sha256_file(path), size_bytes=path.stat().st_size)


def replace_reference(artifact: Artifact, profile: Any) -> CompiledArtifact:
    """Gives a compiled artifact a new reference profile (e.g. with a calibration table), in one rename.

    For the code that made the artifact, before anyone else reads it (a search adds the calibration of
    its held-out rows): the artifact is copied, the copy gets the profile and a manifest recording its
    sha256, and the copy is swapped in, so the folder never holds a profile its manifest does not match.

    Args:
        artifact: The artifact (verified first).
        profile: The new :class:`kepler.monitoring.reference.ReferenceProfile`.

    Returns:
        The artifact, at the same path, with the new manifest.
    """
    import dataclasses

    current = read_artifact(artifact.path)
    staging = new_staging()
    try:
        copy = staging / "artifact"
        shutil.copytree(current.path, copy)
        manifest = dataclasses.replace(current.manifest, reference=write_reference(copy, profile))
        write_json(copy / MANIFEST_NAME, manifest.to_dict())
        publish(copy, current.path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return CompiledArtifact(current.path, manifest)


def publish(source: Path, output: Path, *, move: bool = True) -> None:
    """Puts the artifact folder ``source`` at ``output`` in one rename.

    The folder is first copied next to ``output`` (same filesystem), then renamed
    into place; an existing artifact there is swapped out and removed.
    """
    check_output(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = output.parent / f".{output.name}.staging-{uuid.uuid4().hex[:8]}"
    try:
        shutil.copytree(source, staging)
        if output.is_dir() and not any(output.iterdir()):
            output.rmdir()
        if output.exists():
            retired = output.parent / f".{output.name}.retired-{uuid.uuid4().hex[:8]}"
            os.rename(output, retired)
            os.rename(staging, output)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.rename(staging, output)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    if move:
        shutil.rmtree(source, ignore_errors=True)
