"""Where references come from: a release's artifact folder and its reference profile, stored or computed.

An artifact compiled by this Kepler carries its reference profile (``reference.json``, recorded with its
sha256 in the manifest). An older one (manifest format 1, or format 2 before profiles) does not: its
profile is then computed on demand from the data version(s) its release's unified version records, with
the artifact's own predictions on them, and cached in the project's ``.kepler/cache/references/`` (git
ignores it) under a key of the model's sha256 and the data's md5s. The artifact folder is never written
to: a published artifact stays byte for byte what its manifest and its unified version record.

A profile computed on demand covers every row of the data version (the build profiled the rows it trained
on, the test split left out), and holds no calibration table (that needs held-out rows with their labels).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from kepler.errors import ArtifactError, MonitoringError
from kepler.monitoring.reference import ReferenceProfile, model_profile

if TYPE_CHECKING:
    import pandas as pd

    from kepler.runtimes.artifact import Artifact

CACHE_FOLDER = Path("cache") / "references"  # inside the project's store; its .gitignore lists /cache/


def release_artifact(release: str, *, project: Any = None) -> Path:
    """The artifact folder of a release, verified (the model's sha256 against its manifest and its unified
    version's record, the reference profile's against the manifest).

    Args:
        release: The release name.
        project: The project (default: the one around the working directory).

    Raises:
        MonitoringError: no Kepler project here, or no such release.
        VersioningError: the release names no unified version.
        ArtifactError: the artifact is missing or does not match its records.
    """
    return _resolve(release, project).artifact_path


def release_reference(release: str, *, project: Any = None) -> ReferenceProfile:
    """The reference profile of a release's artifact: its ``reference.json``, or one computed on demand.

    Args:
        release: The release name.
        project: The project (default: the one around the working directory).

    Returns:
        The profile of the inputs and of the model's outputs (``prediction``, ``probability[<class>]``).

    Raises:
        MonitoringError: no such release, or an artifact without a profile whose release records no
            data version to compute one from (or whose data lack the columns the model reads).
        ArtifactError: the artifact is missing, does not match its records, or lacks the profile file
            its manifest records.
    """
    from kepler.runtimes.artifact import Artifact
    from kepler.versioning.project import STORE, current

    resolved = _resolve(release, project)
    artifact = Artifact(resolved.artifact_path, resolved.manifest)
    stored = stored_reference(artifact)
    if stored is not None:
        return stored
    versions = [str(d["data_version"]) for d in (resolved.unified.data or []) if d.get("data_version")]
    if not versions:
        raise MonitoringError(
            f"release {release!r}: its artifact has no reference profile and its unified version "
            f"{resolved.unified.version_id!r} records no data version to compute one from; pass the "
            f"training data as the reference instead"
        )
    cache = _cache_path(current(project).root / STORE, artifact, resolved.unified.data or [])
    if cache.is_file():
        try:
            return ReferenceProfile.load(cache)
        except MonitoringError:
            pass  # a cache file from an older or broken write: computed again below
    # The tables that hold every column the model reads (a version may record other tables beside).
    names = [c.name for c in artifact.manifest.input_schema.columns]
    frames = [read_data_version(v, project=project) for v in versions]
    frame = _concat([f for f in frames if all(n in f.columns for n in names)] or frames[:1])
    profile = profile_artifact(artifact, frame, where=f"release {release!r} (data {', '.join(versions)})")
    cache.parent.mkdir(parents=True, exist_ok=True)
    profile.save(cache)
    return profile


def artifact_reference(artifact: str | os.PathLike[str] | Artifact, data: Any = None) -> ReferenceProfile:
    """The reference profile of an artifact folder: its ``reference.json``, or one computed from ``data``.

    Args:
        artifact: The artifact folder (or an opened artifact); verified on opening.
        data: For an artifact without a stored profile: its training table (DataFrame, CSV or Parquet);
            the profile is then computed with the artifact's own predictions (and not stored).

    Raises:
        MonitoringError: no stored profile and no ``data``, or data without the columns the model reads.
        ArtifactError: the artifact does not verify, or lacks the profile file its manifest records.
    """
    from kepler.runtimes.artifact import read_artifact

    opened = read_artifact(artifact)
    stored = stored_reference(opened)
    if stored is not None:
        return stored
    if data is None:
        raise MonitoringError(
            f"{opened.path}: the artifact has no reference profile (compiled before Kepler stored one); "
            f"pass its training data to compute it (data=...)"
        )
    if not hasattr(data, "columns"):
        from kepler.data.tables import read_table

        data = read_table(data)
    return profile_artifact(opened, data, where=str(opened.path))


def stored_reference(artifact: Artifact) -> ReferenceProfile | None:
    """The profile an artifact stores (``reference.json``), or None when its manifest records none.

    The file's sha256 was checked when the artifact was read with verification.

    Raises:
        ArtifactError: the manifest records a profile file that is missing or is not a profile.
    """
    path = artifact.reference_path
    if path is None:
        return None
    if not path.is_file():
        raise ArtifactError(
            f"{path}: the reference profile the manifest records is missing; restore the artifact folder "
            f"or recompile"
        )
    try:
        return ReferenceProfile.load(path)
    except MonitoringError as exc:
        raise ArtifactError(f"{exc}; restore the artifact folder or recompile") from None


def profile_artifact(artifact: Artifact, frame: pd.DataFrame, *, where: str = "the data") -> ReferenceProfile:
    """Profiles a table the way compiling does: the columns the model reads, and its outputs on them.

    Args:
        artifact: The artifact (its Predictor answers the outputs).
        frame: The table (other columns, the label included, are left out).
        where: What to name in errors.

    Raises:
        MonitoringError: the table lacks a column the model reads, or has no rows.
    """
    from kepler.runtimes import load

    schema = artifact.manifest.input_schema
    names = [c.name for c in schema.columns]
    missing = [n for n in names if n not in frame.columns]
    if missing:
        raise MonitoringError(
            f"{where}: the table lacks columns the model reads ({', '.join(missing[:6])}"
            f"{' and more' if len(missing) > 6 else ''}); pass the table the model was built from"
        )
    if len(frame) == 0:
        raise MonitoringError(f"{where}: the table has no data rows; pass the table the model was built from")
    inputs = frame[names]
    predictor = load(artifact)
    task = artifact.output_schema.task
    outputs: dict[str, np.ndarray] = {}
    if task == "classifier":
        outputs = {"label": np.asarray(predictor.predict(inputs)), "values": predictor.predict_proba(inputs)}
    elif task == "outlier":
        outputs = {"label": np.asarray(predictor.predict(inputs))}
    else:
        outputs = {"values": np.asarray(predictor.predict(inputs), dtype=float)}
    classes = artifact.output_schema.classes
    return model_profile(
        inputs,
        task=task,
        outputs=outputs,
        numeric=[c.name for c in schema.columns if c.is_numeric],
        classes=list(classes) if classes is not None else None,
    )


def read_data_version(name: str, *, project: Any = None, role: str = "reference") -> pd.DataFrame:
    """The table of a data version of the project, read from its exact bytes.

    Raises:
        MonitoringError: no project here, or no such data version.
        DataError: the bytes are not a table.
    """
    from kepler.data.tables import read_table_bytes
    from kepler.errors import ProjectNotFoundError, VersioningError
    from kepler.versioning import data_versions

    try:
        record = data_versions.get_data_version(name, project=project)
    except ProjectNotFoundError:
        raise MonitoringError(
            f"{role} {name!r}: no Kepler project here to look it up in as a data version; run it inside "
            f"the project"
        ) from None
    except VersioningError:
        raise MonitoringError(f"{role} {name!r} is not a data version of this project") from None
    data = data_versions.get_data(record, project=project)
    frame: pd.DataFrame = read_table_bytes(data, f"{record.version_id}{Path(record.file_path).suffix}")
    return frame


def is_release(name: str, *, project: Any = None) -> bool:
    """Whether ``name`` is a release of the project (False outside a project, or for a name no release may
    have)."""
    from kepler.errors import ProjectNotFoundError, VersioningError
    from kepler.versioning.releases import get_release

    try:
        get_release(name, project=project)
    except (ProjectNotFoundError, VersioningError):
        return False
    return True


def _resolve(release: str, project: Any) -> Any:
    from kepler.deployment.package import resolve_release
    from kepler.errors import ProjectNotFoundError, VersioningError
    from kepler.versioning.project import current
    from kepler.versioning.releases import get_release

    try:
        found = current(project)
    except ProjectNotFoundError:
        raise MonitoringError(
            f"release {release!r}: no Kepler project here to look it up in; run it inside the project"
        ) from None
    try:
        get_release(release, project=found)
    except VersioningError:
        raise MonitoringError(
            f"no release {release!r} in this project; `kepler versioning list-releases` lists them"
        ) from None
    return resolve_release(release, project=found)


def _cache_path(store: Path, artifact: Artifact, data: list[dict[str, Any]]) -> Path:
    """The cache file of an on-demand profile: keyed by the model, the data and the profile layout."""
    from kepler.monitoring.reference import SCHEMA_VERSION

    digest = hashlib.sha256()
    digest.update(f"profile-{SCHEMA_VERSION}\n{artifact.manifest.sha256}\n".encode())
    for entry in data:
        digest.update(f"{entry.get('data_version')}:{entry.get('md5')}\n".encode())
    return store / CACHE_FOLDER / f"{digest.hexdigest()[:32]}.json"


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    if len(frames) == 1:
        return frames[0]
    import pandas as pd

    return pd.concat(frames, ignore_index=True)
