"""Which model scores: an artifact folder, or a release resolved to its verified artifact."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from kepler.errors import ArtifactError, ProjectNotFoundError, VersioningError
from kepler.runtimes.artifact import Artifact, read_artifact


@dataclass(frozen=True)
class ScoringModel:
    """The artifact that scores, and the id that goes into every output row.

    Attributes:
        artifact: The opened, verified artifact.
        model_id: The release name, or the artifact folder's name when an artifact was given.
        kind: ``release`` or ``artifact``.
    """

    artifact: Artifact
    model_id: str
    kind: str

    @property
    def sha256(self) -> str:
        """The model file's sha256, as its manifest records and the loading verified."""
        return self.artifact.manifest.sha256


def resolve_model(release_or_artifact: str | os.PathLike[str], *, project: object = None) -> ScoringModel:
    """An artifact folder as it is, or a release of the project through its unified version.

    Raises:
        ArtifactError: the artifact is missing, incomplete or tampered with (sha256).
        VersioningError: neither an artifact folder nor a release of the project.
    """
    given = os.fspath(release_or_artifact)
    folder = Path(given)
    if folder.is_dir():
        artifact = read_artifact(folder, verify=True)
        return ScoringModel(artifact, folder.resolve().name, "artifact")
    if os.sep in given or given.startswith("."):
        raise ArtifactError(f"{given}: no such artifact folder; pass an artifact folder or a release name")
    from kepler.deployment.package import resolve_release
    from kepler.versioning.project import Project
    from kepler.versioning.releases import get_release

    if isinstance(project, (str, os.PathLike)):
        project = Project(Path(project))

    try:
        get_release(given, project=project)
    except ProjectNotFoundError:
        raise VersioningError(
            f"{given!r} is no artifact folder, and there is no Kepler project here to look up a release of "
            f"that name; pass an artifact folder, or run inside the project"
        ) from None
    except VersioningError:
        raise VersioningError(
            f"{given!r} is neither an artifact folder nor a release of this project; "
            f"`kepler versioning list-releases` lists the releases"
        ) from None
    resolved = resolve_release(given, project=project)
    artifact = read_artifact(resolved.artifact_path, verify=True)
    if artifact.manifest.sha256 != resolved.manifest.sha256:  # changed between the two reads
        raise ArtifactError(f"release {given!r}: its artifact changed while being opened; score it again")
    return ScoringModel(artifact, given, "release")
