"""Eight processes writing data versions and releases at once lose or corrupt no record."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd

import kepler as kp
from kepler.versioning.project import init

WRITER = """
import sys, kepler as kp
i = int(sys.argv[1])
kp.versioning.version_data(f"data/part-{i}.csv", version_name=f"part-{i}", metadata={"writer": i})
kp.versioning.create_release(f"release-{i}", version=f"1.{i}.0", components={"data_version": f"part-{i}"},
                             model_line=f"line-{i}")
"""


def test_eight_writers_of_data_versions_and_releases(tmp_path: Path, monkeypatch) -> None:
    init(tmp_path)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    for i in range(8):
        pd.DataFrame({"x": range(10 + i), "y": [i] * (10 + i)}).to_csv(
            tmp_path / "data" / f"part-{i}.csv", index=False
        )
    writers = [
        subprocess.Popen(
            [sys.executable, "-P", "-c", WRITER, str(i)],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(8)
    ]
    for writer in writers:
        _, err = writer.communicate(timeout=300)
        assert writer.returncode == 0, err
    records = tmp_path / ".kepler" / "records"
    for kind, prefix in (("data", "part-"), ("releases", "release-")):
        files = sorted((records / kind).glob("*.json"))
        assert [p.name for p in files] == [f"{prefix}{i}.json" for i in range(8)]
        for path in files:
            json.loads(path.read_text(encoding="utf-8"))
        assert not list((records / kind).glob(".*.tmp"))
    assert sorted(v.version_id for v in kp.versioning.list_versions()) == [f"part-{i}" for i in range(8)]
    assert sorted(r.release_id for r in kp.versioning.list_releases()) == [f"release-{i}" for i in range(8)]
    status = subprocess.run(["git", "status", "--porcelain"], cwd=tmp_path, capture_output=True, text=True)
    assert status.stdout == ""
