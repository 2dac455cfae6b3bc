"""A project on a tracking server: `mlflow server` on PostgreSQL with its artifacts on S3 (moto), and the DVC remote on
that S3. A build, a release promotion and a reproduction record there and nowhere else, and eight processes
recording at once lose nothing."""

from __future__ import annotations

import http.client
import http.server
import socket
import subprocess
import sys
import threading
import urllib.parse
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

pytestmark = pytest.mark.integration

SENSORS = Path(__file__).resolve().parents[2] / "examples" / "data" / "sensors.csv"
WORKERS = 8
STEPS = 20


@pytest.fixture(scope="module")
def server_project(services: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A project whose every record goes to the tracking server, and whose data go to S3."""
    from kepler.versioning.project import init

    prefix = f"projects/{uuid.uuid4().hex[:8]}"
    project = init(
        tmp_path_factory.mktemp("on-server") / "proj",
        tracking_uri=services.tracking.url,
        remote=f"s3://kepler/{prefix}",
        remote_endpoint=services.s3.url,
    )
    assert project.dvc_remote_url == f"s3://kepler/{prefix}/dvc" and project.artifact_root is None
    (project.root / "data").mkdir()
    pd.read_csv(SENSORS).head(500).to_csv(project.root / "data" / "sensors.csv", index=False)
    project.prefix = prefix  # type: ignore[attr-defined]
    return project


def test_build_promotion_and_reproduction_record_on_the_server(
    server_project: Any, services: Any, servers_module: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import kepler as kp
    from kepler.versioning.releases import create_release, promote_release, reproduce_release

    monkeypatch.chdir(server_project.root)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///elsewhere.db")  # kepler.toml's [tracking] uri wins
    built = kp.build(
        "data/sensors.csv",
        label="failure",
        target="edge",
        time_budget=4,
        seed=1,
        constraints={"families": ["logistic_regression"]},
    )
    tracking = built.report["tracking"]
    client = server_project.mlflow_client()
    assert client.tracking_uri == services.tracking.url

    # MLflow on the server: the run, one child run per trial, the registered model version.
    run = client.get_run(tracking["mlflow_run_id"])
    assert run.info.status == "FINISHED" and run.info.artifact_uri.startswith("mlflow-artifacts:")
    children = client.search_runs(
        [run.info.experiment_id], f"tags.mlflow.parentRunId = '{run.info.run_id}'", max_results=1000
    )
    assert len(children) == len(built.report["trials"]) > 0
    model = tracking["registered_model"]
    assert client.get_model_version(model["name"], model["version"]).run_id == run.info.run_id

    # ...held in PostgreSQL, with the artifacts (reports, the ONNX model) on S3.
    pg = services.postgres
    assert pg.query(services.database, "SELECT status FROM runs WHERE run_uuid = %s", run.info.run_id) == [
        ("FINISHED",)
    ]
    assert pg.query(
        services.database, "SELECT count(*) FROM runs WHERE run_uuid = %s", children[0].info.run_id
    ) == [(1,)]
    keys = servers_module.s3_keys(services.s3.url, f"mlflow/{run.info.experiment_id}/")
    assert f"mlflow/{run.info.experiment_id}/{run.info.run_id}/artifacts/report.json" in keys
    assert any(k.endswith("/artifacts/model.onnx") for k in keys)
    md5 = kp.versioning.get_data_version(tracking["data_version"]).md5
    dvc_keys = servers_module.s3_keys(services.s3.url, f"{server_project.prefix}/dvc/")
    assert f"{server_project.prefix}/dvc/files/md5/{md5[:2]}/{md5[2:]}" in dvc_keys
    # Nothing went to the embedded store or the shell's MLFLOW_TRACKING_URI.
    store = server_project.root / ".kepler"
    assert not (store / "mlflow.db").exists() and not (store / "mlartifacts").exists()
    assert not (server_project.root / "elsewhere.db").exists()

    # A release promoted to production moves the registry's aliases on the server.
    unified = tracking["unified_version"]
    create_release("pm-1.0", "1.0.0", unified_version=unified, status="staging")
    assert client.get_model_version_by_alias(model["name"], "staging").version == model["version"]
    promote_release("pm-1.0", "production")
    assert client.get_model_version_by_alias(model["name"], "production").version == model["version"]

    # Reproduction reads the run back from the server and the data from S3, the local copies gone.
    (server_project.root / "data" / "sensors.csv").unlink()
    for cached in (server_project.root / ".dvc" / "cache").rglob("*"):
        if cached.is_file():
            cached.unlink()
    result = reproduce_release("pm-1.0", output=server_project.root / "repro")
    assert result.success, result.error_message
    assert any(f"found run {run.info.run_id}" in step for step in result.steps_completed)
    assert kp.versioning.get_release("pm-1.0").history[-1]["action"] == "reproduce"

    # No credential in any record: the session's AWS secret is nowhere in PostgreSQL.
    secret = servers_module.AWS_ENV["AWS_SECRET_ACCESS_KEY"]
    for table in ("runs", "tags", "params", "experiments", "experiment_tags", "model_versions", "inputs"):
        rows = pg.query(services.database, f"SELECT * FROM {table}")
        assert secret not in repr(rows), table


# One of the eight processes: a run with a parameter and a metric history, and a unified version naming it. They
# are forked by a fresh interpreter that imported Kepler and MLflow once, not by this test process: it may hold
# threads (Spark's py4j, s3fs's event loop) whose locks a forked child would inherit held, and hang on.
RECORDERS = """
import multiprocessing, sys
import mlflow
import kepler as kp
from kepler.versioning.project import Project

# Kepler's modules load on first use: load them here, once, rather than in each of the eight children.
kp.versioning.track_experiment, kp.versioning.log_parameters, kp.versioning.log_metrics
kp.versioning.create_unified_version
root, experiment, workers, steps = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])

def record(worker):
    project = Project(root)
    with kp.versioning.track_experiment(experiment, project=project) as run:
        kp.versioning.log_parameters({"worker": worker})
        for step in range(steps):
            kp.versioning.log_metrics({"loss": worker + step / 100}, step=step)
    kp.versioning.create_unified_version(
        f"concurrent-{worker}", experiment_name=experiment, mlflow_run_id=run.run_id, project=project
    )

context = multiprocessing.get_context("fork")
processes = [context.Process(target=record, args=(worker,)) for worker in range(workers)]
for process in processes:
    process.start()
for process in processes:
    process.join()
sys.exit(max(abs(p.exitcode) for p in processes))
"""


def test_eight_processes_recording_at_once_lose_nothing(server_project: Any) -> None:
    import kepler as kp

    experiment = f"concurrent-{uuid.uuid4().hex[:6]}"
    done = subprocess.run(
        [sys.executable, "-c", RECORDERS, str(server_project.root), experiment, str(WORKERS), str(STEPS)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]

    client = server_project.mlflow_client()
    found = client.get_experiment_by_name(experiment)
    runs = client.search_runs([found.experiment_id], max_results=100)
    assert len(runs) == WORKERS and {r.info.status for r in runs} == {"FINISHED"}
    assert sorted(int(r.data.params["worker"]) for r in runs) == list(range(WORKERS))
    for run in runs:
        history = client.get_metric_history(run.info.run_id, "loss")
        assert sorted(m.step for m in history) == list(range(STEPS))
    unified = {
        v.version_id: v.mlflow_run_id
        for v in kp.versioning.list_unified_versions(project=server_project)
        if v.version_id.startswith("concurrent-")
    }
    assert sorted(unified.values()) == sorted(r.info.run_id for r in runs)
    log = subprocess.run(
        ["git", "-C", str(server_project.root), "log", "--format=%s"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert (
        sum(1 for line in log.splitlines() if line.startswith("kepler: unified version concurrent-"))
        == WORKERS
    )


# -- a server lost in the middle of a promotion -------------------------------------------------------------------


class _Forward(http.server.BaseHTTPRequestHandler):
    """Forwards one request to the proxy's upstream server and its answer back. After the request the proxy dies
    after, it stops listening before it answers: the client cannot send its next request before the port is shut."""

    proxy: _CutProxy

    def _forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        upstream = http.client.HTTPConnection(
            self.proxy.upstream.hostname, self.proxy.upstream.port, timeout=30
        )
        hop_by_hop = {
            "host",
            "connection",
            "keep-alive",
            "proxy-connection",
            "transfer-encoding",
            "content-length",
        }
        headers = {k: v for k, v in self.headers.items() if k.lower() not in hop_by_hop}
        upstream.request(self.command, self.path, body=body, headers=headers)
        answer = upstream.getresponse()
        data = answer.read()
        upstream.close()
        if self.proxy.dies_after is not None and self.proxy.dies_after(self.command, self.path):
            self.proxy.stop()
        self.send_response(answer.status)
        for name, value in answer.getheaders():
            if name.lower() not in hop_by_hop:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

    def log_message(self, *args: Any) -> None:
        pass


class _CutProxy:
    """An HTTP proxy in front of the real tracking server that can die, as a server does, right after it answered
    a chosen request: nothing listens on its port any more (connections are refused), until it is started again."""

    def __init__(self, upstream: str) -> None:
        self.upstream = urllib.parse.urlsplit(upstream)
        self.port = 0
        self.dies_after: Callable[[str, str], bool] | None = None
        self._listening: socket.socket | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> _CutProxy:
        self.dies_after = None
        listening = socket.create_server(("127.0.0.1", self.port))  # the same port again after a stop
        self.port = listening.getsockname()[1]
        self._listening = listening
        threading.Thread(target=self._accept, args=(listening,), daemon=True).start()
        return self

    def _accept(self, listening: socket.socket) -> None:
        while True:
            try:
                connection, address = listening.accept()
            except OSError:  # stopped
                return
            threading.Thread(target=self._serve, args=(connection, address), daemon=True).start()

    def _serve(self, connection: socket.socket, address: Any) -> None:
        handler = type("Forward", (_Forward,), {"proxy": self})
        try:
            handler(connection, address, None)  # type: ignore[arg-type]
        except OSError:
            pass
        finally:
            connection.close()

    def stop(self) -> None:
        listening, self._listening = self._listening, None
        if listening is not None:
            listening.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept (Linux)
            listening.close()


def test_a_promotion_cut_off_by_a_dying_server_is_put_right_by_the_next_release_command(
    services: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server dies right after it moved ``production`` to the promoted version, before ``staging`` is removed:
    the records stay as they were, the error says the next release command puts the aliases back, the next
    command (server still down) changes nothing, and once the server answers it puts the aliases back and promotes."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    import kepler as kp
    from kepler.errors import EndpointError
    from kepler.versioning.project import init
    from kepler.versioning.registry_aliases import journal_path

    monkeypatch.setenv(
        "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "0"
    )  # the same retries of a refused call, sooner
    direct = MlflowClient(tracking_uri=services.tracking.url, registry_uri=services.tracking.url)
    model = f"cut-{uuid.uuid4().hex[:6]}"
    direct.create_registered_model(model)
    for _ in range(2):
        direct.create_model_version(model, source=f"s3://kepler/{model}/model")

    def aliases() -> dict[str, str]:
        found = {}
        for alias in ("production", "staging"):
            try:
                found[alias] = str(direct.get_model_version_by_alias(model, alias).version)
            except MlflowException:
                pass
        return found

    def statuses() -> dict[str, str]:
        return {r.release_id: r.status for r in kp.versioning.list_releases()}

    proxy = _CutProxy(services.tracking.url).start()
    try:
        project = init(tmp_path / "proj", tracking_uri=proxy.url)
        monkeypatch.chdir(project.root)
        for name, version, status in (("cut-1.0", "1", "production"), ("cut-1.1", "2", "staging")):
            kp.versioning.create_release(
                name,
                f"1.{int(version) - 1}.0",
                components={"mlflow_model": {"name": model, "version": version}},
                status=status,
            )
        assert aliases() == {"production": "1", "staging": "2"}
        head = subprocess.run(
            ["git", "-C", str(project.root), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout

        proxy.dies_after = lambda method, path: method == "POST" and path.endswith("/registered-models/alias")
        with pytest.raises(EndpointError) as cut:
            kp.versioning.promote_release("cut-1.1", "production")
        message = str(cut.value)
        assert "\n" not in message and proxy.url in message
        assert (
            "the release records are unchanged, and the next release command puts back the MLflow aliases"
            in message
        )
        assert aliases() == {"production": "2", "staging": "2"}  # the server moved production, then died
        assert (
            statuses() == {"cut-1.0": "production", "cut-1.1": "staging"} and journal_path(project).is_file()
        )
        assert (
            subprocess.run(
                ["git", "-C", str(project.root), "rev-parse", "HEAD"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            == head
        )

        with pytest.raises(EndpointError) as still_down:
            kp.versioning.promote_release("cut-1.1", "production")
        assert "was cut off while moving MLflow aliases" in str(still_down.value)
        assert aliases() == {"production": "2", "staging": "2"} and journal_path(project).is_file()

        proxy.start()  # the server is back: any release command puts the aliases back first
        kp.versioning.create_release("notes-1.0", "1.0.0", model_line="notes")
        assert aliases() == {"production": "1", "staging": "2"} and not journal_path(project).exists()
        promoted = kp.versioning.promote_release("cut-1.1", "production")
        assert promoted.status == "production" and statuses() == {
            "cut-1.0": "archived",
            "cut-1.1": "production",
            "notes-1.0": "draft",
        }
        assert aliases() == {"production": "2"} and not journal_path(project).exists()
    finally:
        proxy.stop()
