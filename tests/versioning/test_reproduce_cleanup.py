"""kp.reproduce without an output folder works in a temporary one and removes it; with one, it keeps its files."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest

import kepler as kp
import kepler.versioning as kv


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The folder Python's tempfile (and a child process, through TMPDIR) hands out temporary folders in."""
    folder = tmp_path / "scratch"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    monkeypatch.setenv("TMPDIR", str(folder))
    return folder


def test_reproduce_leaves_no_temporary_folder(
    project: Any, sensors: Path, scratch: Path, tmp_path: Path
) -> None:
    kv.version_data("data/sensors.csv", "sensors-v1.0")
    for existing in scratch.iterdir():  # whatever git and DVC left there is not the reproduction's
        existing.rename(tmp_path / existing.name)

    done = kp.reproduce.from_version("sensors-v1.0", "data")
    assert done.success, done.error_message
    assert done.artifacts_created == [] and "removed the temporary folder" in done.steps_completed[-1]
    failed = kp.reproduce.from_version("sensors-v9", "data")
    assert not failed.success and "unknown data version" in failed.error_message
    assert sorted(p.name for p in scratch.iterdir()) == []

    kept = kp.reproduce.from_version("sensors-v1.0", "data", output=tmp_path / "kept")
    assert kept.success and kept.artifacts_created == [str(tmp_path / "kept" / "sensors.csv")]
    assert (tmp_path / "kept" / "sensors.csv").read_bytes() == sensors.read_bytes()


def test_reproduce_command_leaves_no_temporary_folder(
    project: Any, sensors: Path, scratch: Path, run_kepler: Any
) -> None:
    kv.version_data("data/sensors.csv", "sensors-v1.0")
    before = set(scratch.iterdir())
    result = run_kepler("reproduce", "from-version", "sensors-v1.0", "--type", "data", cwd=project.root)
    assert result.returncode == 0, result.stderr
    assert "reproduced sensors-v1.0" in result.stdout and "  wrote " not in result.stdout
    assert [p.name for p in set(scratch.iterdir()) - before if p.name.startswith("kepler-reproduce-")] == []
