"""The compiled artifact on disk: reading its manifest and verifying its model file."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kepler.errors import ArtifactError
from kepler.runtimes.manifest import (
    FORMAT_VERSION,
    MANIFEST_NAME,
    InputSchema,
    Manifest,
    OutputSchema,
    read_manifest,
)

__all__ = ["FORMAT_VERSION", "MANIFEST_NAME", "PROBE_NAME", "Artifact", "read_artifact", "sha256_file"]

PROBE_NAME = "probe.json"


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Returns the hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Artifact:
    """A compiled artifact folder: ``model.onnx`` (or ``model.ort``) and ``manifest.json``.

    Attributes:
        path: The artifact folder.
        manifest: The manifest (:mod:`kepler.runtimes.manifest`).
    """

    path: Path
    manifest: Manifest

    @property
    def model_path(self) -> Path:
        """Path of the model file the manifest names."""
        return self.path / self.manifest.model_file

    @property
    def reference_path(self) -> Path | None:
        """Path of the reference profile file the manifest records (None: the manifest records none)."""
        reference = self.manifest.reference
        return None if reference is None else self.path / reference.file

    @property
    def input_schema(self) -> InputSchema:
        """Columns, their kinds and the graph inputs they feed."""
        return self.manifest.input_schema

    @property
    def output_schema(self) -> OutputSchema:
        """Task, output names and classes."""
        return self.manifest.output_schema

    @property
    def size_bytes(self) -> int:
        """Size of the model file in bytes."""
        return self.model_path.stat().st_size

    def probe(self) -> dict[str, list[Any]] | None:
        """The probe rows stored with the artifact (columns of raw values), if any."""
        probe_path = self.path / PROBE_NAME
        if not probe_path.exists():
            return None
        try:
            probe: dict[str, list[Any]] = json.loads(probe_path.read_text(encoding="utf-8"))
            return probe
        except (OSError, ValueError) as exc:
            raise ArtifactError(
                f"{probe_path}: unreadable probe data ({exc}); recompile the artifact"
            ) from None


def read_artifact(path: str | os.PathLike[str] | Artifact, *, verify: bool = True) -> Artifact:
    """Opens an artifact folder and, by default, verifies the model file's sha256.

    Raises:
        ArtifactError: missing folder or files, corrupted manifest, or a sha256 mismatch.
    """
    if isinstance(path, Artifact):
        return path
    folder = Path(path)
    if not folder.is_dir():
        raise ArtifactError(f"{folder}: no such artifact folder; compile one with `kepler compile`")
    artifact = Artifact(folder, read_manifest(folder))
    model_path = artifact.model_path
    if model_path.parent != folder or not model_path.is_file():
        raise ArtifactError(f"{model_path}: model file missing from the artifact; recompile it")
    if verify:
        actual = sha256_file(model_path)
        if actual != artifact.manifest.sha256:
            raise ArtifactError(
                f"{model_path}: sha256 {actual[:12]}… does not match the manifest's "
                f"{artifact.manifest.sha256[:12]}…; the file was modified or corrupted, "
                f"so restore it or recompile"
            )
        _verify_reference(artifact)
        _verify_backends(artifact)
    return artifact


def _verify_backends(artifact: Artifact) -> None:
    """Checks each compiled backend's files against the manifest's sha256, where they are there.

    A copy without them is served by the ONNX graph (the Predictor says so); a file that is there must be
    the one compiled.
    """
    backends = artifact.manifest.backends
    for backend in backends.compiled if backends is not None else ():
        for name, expected in backend.files().items():
            path = artifact.path / name
            if not path.is_file():
                continue
            actual = sha256_file(path)
            if actual != expected:
                raise ArtifactError(
                    f"{path}: sha256 {actual[:12]}… does not match the manifest's {expected[:12]}…; the "
                    f"{backend.name} backend's file was modified or corrupted, so restore it or recompile"
                )


def _verify_reference(artifact: Artifact) -> None:
    """Checks the reference profile file against the manifest's sha256, where both are there.

    A copy that carries only what serving needs (the model file and the manifest) may leave the file out;
    a file that is there must be the one compiled.
    """
    path = artifact.reference_path
    reference = artifact.manifest.reference
    if path is None or reference is None or not path.is_file():
        return
    actual = sha256_file(path)
    if actual != reference.sha256:
        raise ArtifactError(
            f"{path}: sha256 {actual[:12]}… does not match the manifest's {reference.sha256[:12]}…; "
            f"the reference profile was modified or corrupted, so restore it or recompile"
        )
