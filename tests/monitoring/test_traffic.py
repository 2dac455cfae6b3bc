"""Reading recorded traffic back: the table's columns, the time window, corrupt and half-written lines, and drift
of the traffic from a reference profile."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from kepler.deployment.recording import Recorder, records_of
from kepler.errors import MonitoringError
from kepler.monitoring.reference import ReferenceProfile
from kepler.monitoring.traffic import read_traffic, traffic_drift, traffic_folder


@pytest.fixture
def traffic_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "traffic"
    monkeypatch.setenv("KEPLER_TRAFFIC_DIR", str(root))
    monkeypatch.chdir(tmp_path)  # no kepler.toml: default [monitoring] settings
    return root


def record(root: Path, exchanges: list[tuple[str, str, Any, Any]], release: str = "pm-1.1") -> None:
    recorder = Recorder(
        root / release,
        release=release,
        sample_rate=1.0,
        max_mb=10.0,
        rows_of=lambda body: records_of(json.loads(body)),
        classes=["ok", "fail"],
    )
    for rid, endpoint, rows, answer in exchanges:
        assert recorder.offer(rid, endpoint, json.dumps(rows).encode(), json.dumps(answer).encode())
    recorder.close()


def test_read_traffic_gives_one_row_per_request_row(traffic_root: Path) -> None:
    assert traffic_folder("pm-1.1") == traffic_root / "pm-1.1"
    record(
        traffic_root,
        [
            ("a", "predict", [{"torque": 40.1, "kind": "M"}, {"torque": "41", "kind": None}], ["ok", "fail"]),
            ("b", "predict_proba", {"torque": [50.0], "kind": ["L"]}, [[0.25, 0.75]]),
        ],
    )
    frame = read_traffic("pm-1.1")
    assert list(frame.columns) == [
        "request_id",
        "row",
        "time",
        "release",
        "endpoint",
        "torque",
        "kind",
        "prediction",
        "probability[ok]",
        "probability[fail]",
    ]
    assert frame["request_id"].tolist() == ["a", "a", "b"] and frame["row"].tolist() == [0, 1, 0]
    assert str(frame["time"].dtype) == "datetime64[ns, UTC]"
    assert frame["endpoint"].tolist() == ["predict", "predict", "predict_proba"]
    assert frame["torque"].tolist() == [40.1, "41", 50.0]  # as received
    assert frame["prediction"].tolist() == ["ok", "fail", "fail"]
    assert np.isnan(frame.loc[0, "probability[fail]"]) and frame.loc[2, "probability[fail]"] == 0.75
    assert (frame["release"] == "pm-1.1").all()


def test_since_keeps_the_recent_requests(traffic_root: Path) -> None:
    folder = traffic_root / "pm-1.1"
    folder.mkdir(parents=True)
    old = {
        "request_id": "old",
        "time": "2020-01-01T00:00:00+00:00",
        "release": "pm-1.1",
        "endpoint": "predict",
        "rows": [{"torque": 1.0}],
        "outputs": {"prediction": [0]},
    }
    (folder / "1-20200101T000000000000Z-000001.jsonl").write_text(json.dumps(old) + "\n")
    record(traffic_root, [("new", "predict", [{"torque": 2.0}], [1])])
    assert read_traffic("pm-1.1")["request_id"].tolist() == ["old", "new"]
    assert read_traffic("pm-1.1", since_s=3600)["request_id"].tolist() == ["new"]
    with pytest.raises(MonitoringError, match="since_s must be a positive"):
        read_traffic("pm-1.1", since_s=0)


def test_a_corrupt_line_names_the_file_and_line_a_half_written_last_line_is_skipped(
    traffic_root: Path,
) -> None:
    record(traffic_root, [("a", "predict", [{"torque": 1.0}], [0]), ("b", "predict", [{"torque": 2.0}], [1])])
    (path,) = (traffic_root / "pm-1.1").glob("*.jsonl")
    whole = path.read_bytes()
    path.write_bytes(whole + b'{"request_id": "c", "ti')  # a line still being written
    assert read_traffic("pm-1.1")["request_id"].tolist() == ["a", "b"]
    lines = whole.splitlines(keepends=True)
    path.write_bytes(lines[0] + b'{"request_id": "c", "ti\n' + lines[1])
    with pytest.raises(MonitoringError, match=rf"{path.name}, line 2: a corrupt traffic record \(not JSON"):
        read_traffic("pm-1.1")
    path.write_bytes(lines[0] + b'{"request_id": "c", "rows": []}\n')
    with pytest.raises(MonitoringError, match=r"line 2: .*'time' missing"):
        read_traffic("pm-1.1")
    path.write_bytes(lines[0].replace(b'"prediction":[0]', b'"prediction":[0,1]'))
    with pytest.raises(MonitoringError, match=r"line 1: .*1 rows but outputs.prediction"):
        read_traffic("pm-1.1")


def test_no_traffic_is_one_clear_error(traffic_root: Path) -> None:
    with pytest.raises(MonitoringError, match="no traffic recorded for release 'x'"):
        read_traffic("x", folder=traffic_root / "x")
    record(traffic_root, [("a", "predict", [{"torque": 1.0}], [0])])
    os.utime(next((traffic_root / "pm-1.1").glob("*.jsonl")), (1, 1))
    assert read_traffic("pm-1.1", since_s=60).empty
    with pytest.raises(MonitoringError, match="no traffic recorded for release 'pm-1.1' in the last 1m"):
        traffic_drift(
            "pm-1.1", since="1m", reference=ReferenceProfile.from_frame(pd.DataFrame({"torque": [1.0]}))
        )


def test_traffic_drift_flags_the_shifted_columns(traffic_root: Path) -> None:
    rng = np.random.default_rng(3)
    reference = pd.DataFrame(
        {
            "torque": rng.normal(40, 5, 3000),
            "speed": rng.normal(1500, 100, 3000),
            "kind": rng.choice(["L", "M", "H"], 3000, p=[0.5, 0.3, 0.2]),
        }
    )
    probabilities = rng.uniform(0, 1, 3000)
    profile = ReferenceProfile.from_frame(
        reference,
        predictions=np.where(probabilities > 0.5, "fail", "ok"),
        probabilities=np.column_stack([1 - probabilities, probabilities]),
        classes=["ok", "fail"],
    )
    served = reference.sample(400, random_state=1).reset_index(drop=True)
    served["torque"] += 8.0  # shifted
    exchanges = []
    for i in range(0, 400, 4):
        rows = served.iloc[i : i + 4].to_dict(orient="records")
        shares = probabilities[i : i + 4]
        if i % 8:
            exchanges.append((f"r{i}", "predict", rows, ["fail" if p > 0.5 else "ok" for p in shares]))
        else:
            exchanges.append((f"r{i}", "predict_proba", rows, [[1 - p, p] for p in shares]))
    record(traffic_root, exchanges)
    report = traffic_drift("pm-1.1", since="1h", reference=profile)
    assert report.drifted_columns == ["torque"]
    assert set(report.tested_columns) == {
        "torque",
        "speed",
        "kind",
        "prediction",
        "probability[ok]",
        "probability[fail]",
    }
    assert report.current_rows == 400
