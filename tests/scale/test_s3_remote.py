"""A project whose DVC remote and MLflow artifacts are on S3 (moto's server), with the embedded SQLite store: data
versions go to S3 and come back byte for byte with no local copy left, run artifacts land there, and the AWS secret
is written nowhere."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.integration

KEPLER = str(Path(sys.executable).with_name("kepler"))


@pytest.fixture(scope="module")
def s3_project(s3_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A project with ``--remote s3://kepler/<prefix> --remote-endpoint <moto>`` and the embedded store."""
    from kepler.versioning.project import init

    prefix = f"s3-projects/{uuid.uuid4().hex[:8]}"
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        project = init(
            tmp_path_factory.mktemp("s3-remote") / "proj",
            remote=f"s3://kepler/{prefix}",
            remote_endpoint=s3_server.url,
        )
    project.prefix = prefix  # type: ignore[attr-defined]
    return project


@pytest.fixture
def in_project(s3_project: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.chdir(s3_project.root)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return s3_project


def test_settings_name_s3_for_dvc_and_mlflow(in_project: Any, s3_server: Any) -> None:
    assert in_project.dvc_remote_url == f"s3://kepler/{in_project.prefix}/dvc"
    assert in_project.artifact_root == f"s3://kepler/{in_project.prefix}/mlflow"
    assert in_project.s3_endpoint == s3_server.url
    assert in_project.tracking_uri == f"sqlite:///{in_project.root / '.kepler' / 'mlflow.db'}"
    config = (in_project.root / ".dvc" / "config").read_text(encoding="utf-8")
    assert (
        f"url = s3://kepler/{in_project.prefix}/dvc" in config and f"endpointurl = {s3_server.url}" in config
    )


def test_version_data_pushes_to_s3_and_get_data_restores_the_exact_bytes(
    in_project: Any, s3_server: Any, servers_module: Any
) -> None:
    import kepler as kp

    rng = np.random.default_rng(5)
    path = in_project.root / "data" / "readings.csv"
    path.parent.mkdir()
    pd.DataFrame({"t": rng.normal(size=300), "label": rng.integers(0, 2, 300)}).to_csv(path, index=False)
    original = path.read_bytes()
    version = kp.versioning.version_data("data/readings.csv", version_name="readings-v1")

    key = f"{in_project.prefix}/dvc/files/md5/{version.md5[:2]}/{version.md5[2:]}"
    assert key in servers_module.s3_keys(s3_server.url, f"{in_project.prefix}/dvc/")
    body = servers_module.s3_client(s3_server.url).get_object(Bucket="kepler", Key=key)["Body"].read()
    assert body == original

    path.unlink()
    shutil.rmtree(in_project.root / ".dvc" / "cache")
    assert kp.versioning.get_data("readings-v1") == original


def test_runs_keep_their_artifacts_on_s3(in_project: Any, s3_server: Any, servers_module: Any) -> None:
    import mlflow

    import kepler as kp

    report = in_project.root / "note.txt"
    report.write_text("artifact on S3\n", encoding="utf-8")
    with kp.versioning.track_experiment("s3-artifacts") as run:
        kp.versioning.log_metrics({"accuracy": 0.9})
        mlflow.log_artifact(str(report))
    client = in_project.mlflow_client()
    assert client.get_run(run.run_id).info.artifact_uri.startswith(f"s3://kepler/{in_project.prefix}/mlflow/")
    keys = servers_module.s3_keys(s3_server.url, f"{in_project.prefix}/mlflow/")
    assert f"{in_project.prefix}/mlflow/{run.run_id}/artifacts/note.txt" in keys
    assert not (in_project.root / ".kepler" / "mlartifacts").exists()


def test_no_credential_is_written_anywhere(in_project: Any, servers_module: Any, s3_server: Any) -> None:
    """After the tests above: no file of the project (git history included) nor the MLflow store holds the secret."""
    secret = servers_module.AWS_ENV["AWS_SECRET_ACCESS_KEY"].encode()
    key_id = servers_module.AWS_ENV["AWS_ACCESS_KEY_ID"].encode()
    done = subprocess.run([KEPLER, "init", "--json"], capture_output=True, cwd=in_project.root, timeout=120)
    assert done.returncode == 0 and json.loads(done.stdout)["s3_endpoint"] == s3_server.url
    files = [p for p in in_project.root.rglob("*") if p.is_file()]
    assert in_project.root / ".kepler" / "mlflow.db" in files and in_project.root / "kepler.toml" in files
    for path in files:
        content = path.read_bytes()
        assert secret not in content and key_id not in content, path
    history = subprocess.run(
        ["git", "-C", str(in_project.root), "log", "-p", "--all"], capture_output=True, check=True
    ).stdout
    assert history and secret not in history and secret not in done.stdout + done.stderr
    for key in servers_module.s3_keys(s3_server.url, f"{in_project.prefix}/mlflow/"):
        body = servers_module.s3_client(s3_server.url).get_object(Bucket="kepler", Key=key)["Body"].read()
        assert secret not in body, key
