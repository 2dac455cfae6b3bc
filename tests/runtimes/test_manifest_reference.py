"""The manifest's optional ``reference`` record (runtimes/manifest.py) and its check on load (runtimes/artifact.py):
format 1 and format 2 manifests without it still read, and a recorded profile file must match its sha256."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

import kepler.runtimes as kr
from kepler.errors import ArtifactError
from kepler.runtimes.artifact import sha256_file
from kepler.runtimes.manifest import Manifest, ReferenceFile, read_manifest

V1 = Path(__file__).parent / "data" / "manifest_v1"


def _v2_copy(tmp_path: Path, reference: dict[str, Any] | None) -> Path:
    """The format 1 regressor fixture written back as format 2, with ``reference`` as given."""
    folder = tmp_path / "artifact"
    shutil.copytree(V1 / "regressor", folder)
    data = read_manifest(folder).to_dict()
    if reference is not None:
        data["reference"] = reference
    (folder / "manifest.json").write_text(json.dumps(data), encoding="utf-8")
    return folder


@pytest.mark.parametrize("name", ["classifier", "regressor"])
def test_format_1_and_format_2_without_a_profile_read_with_none(name: str, tmp_path: Path) -> None:
    assert read_manifest(V1 / name).reference is None
    assert kr.read_artifact(V1 / name).reference_path is None
    folder = _v2_copy(tmp_path, None)
    manifest = read_manifest(folder)
    assert manifest.reference is None and "reference" not in manifest.to_dict()


def test_the_reference_record_round_trips_and_is_verified(tmp_path: Path) -> None:
    folder = _v2_copy(tmp_path, None)
    (folder / "reference.json").write_text('{"rows": 1, "columns": []}\n', encoding="utf-8")
    record = ReferenceFile("reference.json", sha256_file(folder / "reference.json"), 27)
    manifest = dataclasses.replace(read_manifest(folder), reference=record)
    (folder / "manifest.json").write_text(json.dumps(manifest.to_dict()), encoding="utf-8")
    assert Manifest.from_dict(json.loads(json.dumps(manifest.to_dict()))) == manifest
    assert kr.read_artifact(folder).reference_path == folder / "reference.json"

    (folder / "reference.json").write_text('{"rows": 2, "columns": []}\n', encoding="utf-8")
    with pytest.raises(ArtifactError) as caught:
        kr.read_artifact(folder)
    assert "reference.json: sha256" in str(caught.value) and "\n" not in str(caught.value)
    kr.read_artifact(folder, verify=False)
    # A copy that carries only what serving needs (model and manifest) still loads and predicts.
    (folder / "reference.json").unlink()
    assert kr.load(folder).predict([[0.1, 0.2, 0.3]]).shape == (1,)


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ({"file": "../x.json", "sha256": "0" * 64, "size_bytes": 1}, "'reference.file' must be a file name"),
        ({"file": "reference.json", "size_bytes": 1}, "lacks reference.sha256"),
        ({"file": "reference.json", "sha256": "0" * 64, "size_bytes": "1"}, "'reference.size_bytes'"),
        ("reference.json", "'reference' must be an object"),
    ],
)
def test_a_bad_reference_record_is_refused_in_one_line(reference: Any, expected: str, tmp_path: Path) -> None:
    folder = _v2_copy(tmp_path, reference)
    with pytest.raises(ArtifactError) as caught:
        read_manifest(folder)
    assert expected in str(caught.value) and "\n" not in str(caught.value)
