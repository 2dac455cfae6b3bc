"""Faults of the services a scaled-out project records to: an S3 endpoint that is down, a tracking server whose
artifact store dies mid-build, a tracking server stopped mid-build, and one that answers only errors. Each gives one
clear error naming the endpoint, and nothing is left half-recorded.

The module starts its own moto and `mlflow server` (on the session's PostgreSQL), since it kills them; the project
that records to that server keeps its DVC remote on the session's moto, which stays up.
"""

from __future__ import annotations

import http.server
import shutil
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from kepler.errors import EndpointError

pytestmark = pytest.mark.integration

SENSORS = Path(__file__).resolve().parents[2] / "examples" / "data" / "sensors.csv"
KEPLER = str(Path(sys.executable).with_name("kepler"))
FEATURES = [
    "air_temperature_k",
    "process_temperature_k",
    "rotational_speed_rpm",
    "torque_nm",
    "tool_wear_min",
]


@dataclass
class Faulty:
    """Servers this module may kill and the projects on them.

    Attributes:
        s3: Its own moto: project ``local``'s DVC remote and ``tracking``'s artifact store.
        tracking: Its own ``mlflow server`` (PostgreSQL database ``faults``, artifacts on ``s3``).
        database: That database's URI, to read what the server stored once it is gone.
        on_server: A project recording to ``tracking``, its DVC remote on the session's (living) S3.
        local: A project with the embedded store, its DVC remote on ``s3``.
        model: A fitted model file for ``--model`` builds.
    """

    s3: Any
    tracking: Any
    database: str
    on_server: Any
    local: Any
    model: Path


def _git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.fixture(scope="module")
def faulty(
    postgres: Any, s3_server: Any, servers_module: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Faulty]:
    import joblib
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    from kepler.versioning.project import init

    folder = tmp_path_factory.mktemp("faults")
    # Both servers start at once (the MLflow server does not need its S3 until a request); the model is fit
    # while they come up.
    s3 = servers_module.start_s3(folder / "moto", wait=False)
    tracking = None
    try:
        database = postgres.create_database(f"faults_{uuid.uuid4().hex[:6]}")
        # One attempt per S3 call on the server: its artifact store's death shows in a second, not in botocore's
        # retries times MLflow's.
        tracking = servers_module.start_mlflow(
            folder / "mlflow", database, s3.url, "s3://kepler/mlflow", {"AWS_MAX_ATTEMPTS": "1"}, wait=False
        )
        table = pd.read_csv(SENSORS).head(300)
        model = make_pipeline(SimpleImputer(), LogisticRegression(max_iter=500))
        model.fit(table[FEATURES], table["failure"])
        joblib.dump(model, folder / "model.joblib")
        servers_module.s3_ready(s3)
        with pytest.MonkeyPatch.context() as patch:
            patch.delenv("MLFLOW_TRACKING_URI", raising=False)
            local = init(folder / "local", remote="s3://kepler/local", remote_endpoint=s3.url)
            tracking.wait_ready()
            on_server = init(
                folder / "on-server",
                tracking_uri=tracking.url,
                remote=f"s3://kepler/faults-{uuid.uuid4().hex[:6]}",
                remote_endpoint=s3_server.url,
            )
        for project in (on_server, local):
            (project.root / "data").mkdir()
            table.to_csv(project.root / "data" / "sensors.csv", index=False)
        yield Faulty(s3, tracking, database, on_server, local, folder / "model.joblib")
    finally:
        if tracking is not None:
            tracking.kill()  # nothing of it is kept: no graceful shutdown to wait for
        s3.stop()


def _one_line(error: BaseException) -> str:
    text = str(error)
    assert "\n" not in text and "Traceback" not in text
    return text


def test_s3_endpoint_down(faulty: Faulty, monkeypatch: pytest.MonkeyPatch) -> None:
    import kepler as kp

    project = faulty.local
    monkeypatch.chdir(project.root)
    first = kp.versioning.version_data("data/sensors.csv", version_name="sensors-v1")
    (project.root / "data" / "sensors.csv").unlink()
    shutil.rmtree(project.root / ".dvc" / "cache")
    pd.DataFrame({"x": [1, 2, 3]}).to_csv(project.root / "data" / "more.csv", index=False)
    head, tags = _git(project.root, "rev-parse", "HEAD"), _git(project.root, "tag")
    faulty.s3.kill()

    with pytest.raises(EndpointError) as pushing:
        kp.versioning.version_data("data/more.csv", version_name="more-v1")
    message = _one_line(pushing.value)
    assert faulty.s3.url in message and "DVC remote" in message and "AWS_ACCESS_KEY_ID" in message
    # Nothing recorded, nothing changed: no record, tag, commit, .dvc file or .gitignore entry.
    assert [v.version_id for v in kp.versioning.list_versions()] == [first.version_id]
    assert _git(project.root, "rev-parse", "HEAD") == head and _git(project.root, "tag") == tags
    assert not (project.root / "data" / "more.csv.dvc").exists()
    assert _git(project.root, "status", "--porcelain", "--untracked-files=no") == ""
    assert "more.csv" not in (project.root / "data" / ".gitignore").read_text(encoding="utf-8")

    with pytest.raises(EndpointError) as reading:  # the bytes are only on the dead remote now
        kp.versioning.get_data(first)
    assert faulty.s3.url in _one_line(reading.value)


def test_artifact_store_down_mid_build_takes_back_what_was_recorded(
    faulty: Faulty, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tracking server lives but its S3 died (the test above killed it): the build's run, model version and
    logged model are deleted again, and no Kepler record names them."""
    import mlflow
    from mlflow.entities import ViewType

    import kepler as kp

    project = faulty.on_server
    monkeypatch.chdir(project.root)
    # MLflow's retries of the server's HTTP 500s without Kepler's pauses (0 + 2 + 4 s): the same calls, sooner.
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "0")
    assert not faulty.s3.alive() and faulty.tracking.alive()
    with pytest.raises(EndpointError) as failed:
        kp.build("data/sensors.csv", label="failure", target="edge", model=faulty.model)
    message = _one_line(failed.value)
    assert faulty.tracking.url in message and "artifact store" in message
    assert mlflow.active_run() is None

    client = project.mlflow_client()
    experiments = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)]
    assert client.search_runs(experiments, run_view_type=ViewType.ACTIVE_ONLY) == []
    deleted = client.search_runs(experiments, run_view_type=ViewType.DELETED_ONLY)
    assert len(deleted) == 1 and deleted[0].data.tags["kepler.kind"] == "model"
    assert client.search_model_versions() == [] and client.search_registered_models() == []
    assert kp.versioning.list_unified_versions() == [] and not project.store.names("probes")
    assert [n for n in project.store.names("lineage") if n.startswith("build-")] == []
    # The data version stays: complete on its own (its bytes are on the living S3), reused by a rerun.
    assert len(kp.versioning.list_versions()) == 1
    assert _git(project.root, "status", "--porcelain", "--untracked-files=no") == ""


def test_tracking_server_stopped_mid_build(
    faulty: Faulty, postgres: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import kepler as kp

    project = faulty.on_server
    monkeypatch.chdir(project.root)
    head, versions = _git(project.root, "rev-parse", "HEAD"), kp.versioning.list_versions()

    def kill_server(*_: Any) -> None:  # during the search: the server was there when the build started
        if faulty.tracking.alive():
            faulty.tracking.kill()

    with pytest.raises(EndpointError) as failed:
        kp.build(
            "data/sensors.csv",
            label="failure",
            target="edge",
            time_budget=4,
            seed=2,
            constraints={"families": ["logistic_regression"]},
            progress=kill_server,
        )
    assert not faulty.tracking.alive()
    message = _one_line(failed.value)
    assert message.startswith(f"the MLflow tracking server {faulty.tracking.url} refuses connections")
    assert "[tracking] uri" in message
    # Nothing recorded anywhere: no commit, data version or record; in PostgreSQL only the run deleted above.
    assert _git(project.root, "rev-parse", "HEAD") == head and kp.versioning.list_versions() == versions
    assert kp.versioning.list_unified_versions() == []
    database = faulty.database.rsplit("/", 1)[-1]
    assert postgres.query(database, "SELECT lifecycle_stage, count(*) FROM runs GROUP BY 1") == [
        ("deleted", 1)
    ]


def test_cli_names_the_dead_server_in_one_line(faulty: Faulty) -> None:
    project = faulty.on_server
    builds = sorted(p.name for p in (project.root / "builds").iterdir())
    done = subprocess.run(
        [KEPLER, "build", "data/sensors.csv", "--label", "failure", "--model", str(faulty.model)],
        capture_output=True,
        text=True,
        cwd=project.root,
        timeout=300,
    )
    assert done.returncode == EndpointError.exit_code == 15
    assert done.stderr.startswith(f"error: the MLflow tracking server {faulty.tracking.url} ")
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert sorted(p.name for p in (project.root / "builds").iterdir()) == builds  # checked before building


class _Failing(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(503)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_a_server_answering_only_errors_is_named() -> None:
    from kepler.versioning.endpoints import check_tracking_server

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Failing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with pytest.raises(EndpointError) as failed:
            check_tracking_server(url)
    finally:
        server.shutdown()
        server.server_close()
    assert _one_line(failed.value).startswith(f"the MLflow tracking server {url} answers HTTP 503")
    assert failed.value.endpoint == url
