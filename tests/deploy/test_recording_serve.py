"""Served traffic, end to end: a real `bentoml serve` of a release records its requests; a SIGTERM loses none;
`kepler monitor traffic` flags the input columns that were shifted and no others; labels join by X-Request-Id."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess

import httpx
import pandas as pd
import pytest

from kepler.deployment.recording import TRAFFIC_FOLDER

SHIFTED = {"torque_nm": 25.0, "vibration_mm_s": 3.0}  # added to each served value
ROWS_PER_REQUEST = 25


def _cli(kepler_cli, *args: str, cwd) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "KEPLER_TRAFFIC_DIR"}
    return subprocess.run(
        [str(kepler_cli), *args], capture_output=True, text=True, timeout=180, cwd=cwd, env=env
    )


@pytest.mark.integration
def test_served_traffic_is_recorded_flushed_on_sigterm_and_checked_for_drift(
    in_project, start_server, free_port, kepler_cli
) -> None:
    from kepler.deployment import package_release
    from kepler.monitoring import data_drift, release_reference
    from kepler.monitoring.traffic import read_traffic, traffic_folder

    project = in_project
    package = package_release("pm-1.1")
    assert (
        package.settings["sample_rate"] == 1.0 and package.settings["max_mb"] == 100.0
    )  # kepler.toml defaults
    folder = traffic_folder("pm-1.1")
    assert folder == project.bentoml_home / TRAFFIC_FOLDER / "pm-1.1"
    shutil.rmtree(folder, ignore_errors=True)  # what other tests of this session served

    # The build's table (its training rows are a part of it, so no drift in them), as a client sends it: with the
    # source's extra columns. All of it: this table's temperatures vary enough that a sample of a few hundred rows
    # already drifts (normed Wasserstein above 0.1).
    table = pd.read_csv(project.root / "data" / "sensors.csv")
    labels = table["failure"].tolist()
    plain = json.loads(table.to_json(orient="records"))
    shifted = [
        {**row, **{c: None if row[c] is None else row[c] + d for c, d in SHIFTED.items()}} for row in plain
    ]

    port = free_port()
    env = {**package.env(), "KEPLER_WORKERS": "2", "KEPLER_BATCHING": "1", "KEPLER_MAX_LATENCY_MS": "10"}
    server = start_server(package.serve_command(port), env, project.root, port)
    sent: dict[str, list[int]] = {}  # request id -> labels of its rows
    kinds = ("/predict", "/predict_proba", "/invocations")
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for phase, rows in (("plain", plain), ("shifted", shifted)):
            for n, start in enumerate(range(0, len(rows), ROWS_PER_REQUEST)):
                chunk = rows[start : start + ROWS_PER_REQUEST]
                route = kinds[n % 3]
                body = {"dataframe_records": chunk} if route == "/invocations" else chunk
                own = f"{phase}-{n}" if n % 2 else None  # half of them send their own id
                answer = client.post(route, json=body, headers={"X-Request-Id": own} if own else {})
                assert answer.status_code == 200, answer.text
                rid = answer.headers["X-Request-Id"]
                assert rid == own if own else len(rid) == 32 and int(rid, 16) >= 0
                sent[rid] = labels[start : start + ROWS_PER_REQUEST]
        bad = client.post("/predict", json=[{"torque_nm": "hot"}], headers={"X-Request-Id": "bad one"})
        assert bad.status_code == 422 and len(bad.headers["X-Request-Id"]) == 32  # errors too; a new id
        meta = client.get("/metadata").json()
    assert meta["recording"]["sample_rate"] == 1.0 and meta["recording"]["dropped"] == 0
    assert meta["recording"]["folder"] == str(folder)

    # A real SIGTERM to the server's process (as a container runtime sends it); each worker writes what it queued.
    os.kill(server.process.pid, signal.SIGTERM)
    assert server.process.wait(timeout=60) == 0
    log = server.log.read_text(errors="replace")
    assert log.count("Running cleanup hook: close_recording") == 2, log[-3000:]
    frame = read_traffic("pm-1.1")
    assert sorted(set(frame["request_id"])) == sorted(sent)  # nothing lost, nothing else
    assert len(frame) == 2 * len(plain)
    assert set(frame["endpoint"]) == {"predict", "predict_proba"}
    assert frame["machine_id"].notna().all()  # inputs as received: the columns the build dropped too

    # Unshifted traffic alone does not drift; all of it drifts in the shifted input columns only.
    reference = release_reference("pm-1.1")
    inputs = [c.name for c in reference.columns]
    first = frame[
        frame["request_id"].isin([r for r in sent if not r.startswith("shifted")][: len(sent) // 2])
    ]
    calm = data_drift(reference, first[[c for c in inputs if c in first.columns]])
    assert calm.drifted_columns == [], calm.to_dict()
    done = _cli(kepler_cli, "monitor", "traffic", "pm-1.1", "--since", "1h", "--json", cwd=project.root)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    drifted = {row["column"] for row in report["columns"] if row["drifted"]}
    assert drifted & set(inputs) == set(SHIFTED), report
    assert {"prediction", "probability[0]", "probability[1]"} <= {row["column"] for row in report["columns"]}

    # Labels join the recorded requests by X-Request-Id (and row).
    from kepler.monitoring.performance import performance

    truth = pd.DataFrame(
        [{"request_id": rid, "row": i, "label": y} for rid, ys in sent.items() for i, y in enumerate(ys)]
    )
    checked = performance("pm-1.1", labels=truth)
    assert checked.labels_matched == checked.labels_given == len(frame) and checked.join == "request_id+row"

    # A corrupt recording: one clear error naming the file and line, a non-zero exit.
    victim = sorted(folder.glob("*.jsonl"))[0]
    with victim.open("ab") as handle:
        handle.write(b"{not json\n")
    done = _cli(kepler_cli, "monitor", "traffic", "pm-1.1", cwd=project.root)
    assert done.returncode == 13 and victim.name in done.stderr and "corrupt traffic record" in done.stderr
    done = _cli(kepler_cli, "monitor", "traffic", "no-such-release", cwd=project.root)
    assert done.returncode != 0 and "no-such-release" in done.stderr
    shutil.rmtree(folder)
