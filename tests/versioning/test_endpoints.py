"""Where a project records (kepler.toml's [tracking] and [s3], MLFLOW_TRACKING_URI), how `kepler init` writes those
settings, and the one clear error for a tracking server that cannot be reached: over a real MLflow client and real
sockets (the servers themselves are in tests/scale)."""

from __future__ import annotations

import os
import socket
import tomllib
from pathlib import Path
from typing import Any

import pytest

from kepler.errors import EndpointError, VersioningError
from kepler.versioning import endpoints
from kepler.versioning.project import Project, init, set_toml_values


def _dead_url() -> str:
    """An http URL of a loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_set_toml_values_changes_only_its_keys() -> None:
    text = '# top\n[project]\nname = "p"\n\n[tracking]\n# a comment\n# uri = "x"\n\n[dvc]\nremote_url = "a"\n'
    changed = set_toml_values(text, "tracking", {"uri": 'http://h:5000/"q"', "artifact_root": None})
    changed = set_toml_values(changed, "dvc", {"remote_url": "s3://b/p/dvc"})
    changed = set_toml_values(changed, "s3", {"endpoint_url": "http://127.0.0.1:9000"})
    parsed = tomllib.loads(changed)
    assert parsed["tracking"] == {"uri": 'http://h:5000/"q"'}
    assert parsed["dvc"] == {"remote_url": "s3://b/p/dvc"} and parsed["s3"] == {
        "endpoint_url": "http://127.0.0.1:9000"
    }
    assert "# a comment" in changed and '# uri = "x"' in changed and changed.startswith("# top\n")
    removed = set_toml_values(changed, "tracking", {"uri": None})
    assert (
        "uri" not in tomllib.loads(removed)["tracking"]
        and set_toml_values(removed, "nope", {"k": None}) == removed
    )


def test_kepler_toml_wins_over_the_environment_inside_a_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://from-the-shell:5000")
    project = init(tmp_path / "p")
    assert project.tracking_uri == "http://from-the-shell:5000"  # kepler.toml names no store: the shell's
    assert project.artifact_root is None  # a server keeps its artifacts
    project = init(project.root, tracking_uri="http://mlflow.internal:5000")
    assert Project(project.root).tracking_uri == "http://mlflow.internal:5000"
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    project = init(project.root, tracking_uri="sqlite:///.kepler/mlflow.db", remote="s3://bucket/team/pm")
    assert project.tracking_uri == f"sqlite:///{project.root.resolve() / '.kepler' / 'mlflow.db'}"
    assert project.artifact_root == "s3://bucket/team/pm/mlflow"
    assert project.dvc_remote_url == "s3://bucket/team/pm/dvc"
    dvc = (project.root / ".dvc" / "config").read_text(encoding="utf-8")
    assert 'remote "kepler"' in dvc and "kepler-local" not in dvc and "endpointurl" not in dvc


def test_older_projects_keep_their_mlflow_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    project = init(tmp_path / "p")
    config = project.root / "kepler.toml"
    config.write_text(
        '[project]\nname = "old"\n[mlflow]\ntracking_uri = "sqlite:///old.db"\nartifact_root = "arts"\n',
        encoding="utf-8",
    )
    old = Project(project.root)
    assert old.tracking_uri == f"sqlite:///{project.root.resolve() / 'old.db'}"
    assert old.artifact_root == (project.root / "arts").resolve().as_uri()
    monkeypatch.setenv(
        "MLFLOW_TRACKING_URI", "sqlite:////elsewhere/m.db"
    )  # as before: the shell's wins there
    assert Project(project.root).tracking_uri == "sqlite:////elsewhere/m.db"


def test_init_refuses_credentials_and_writes_nothing(tmp_path: Path) -> None:
    project = init(tmp_path / "p")
    before = (project.root / "kepler.toml").read_bytes()
    for kwargs in (
        {"tracking_uri": "http://alice:s3cret@mlflow:5000"},
        {"tracking_uri": "postgresql://alice:s3cret@db/mlflow"},
        {"remote": "s3://bucket/p", "remote_endpoint": "http://key:s3cret@minio:9000"},
    ):
        with pytest.raises(VersioningError, match="holds a password") as refused:
            init(project.root, **kwargs)
        assert "s3cret" not in str(refused.value)
    with pytest.raises(VersioningError, match="applies to an s3:// remote"):
        init(project.root, remote_endpoint="http://minio:9000")
    with pytest.raises(VersioningError, match="not an S3 URL"):
        init(project.root, remote="s3:///no-bucket")
    assert (project.root / "kepler.toml").read_bytes() == before
    assert endpoints.redact("https://alice:s3cret@h:8443/x?y=1") == "https://h:8443/x?y=1"


def test_mlflow_retries_are_bounded_unless_the_environment_says(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in endpoints.MLFLOW_HTTP_DEFAULTS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "99")
    endpoints.configure_mlflow("http://127.0.0.1:9000")
    assert (
        os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "3"
        and os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "99"
    )
    assert os.environ["MLFLOW_S3_ENDPOINT_URL"] == "http://127.0.0.1:9000"
    monkeypatch.delenv("MLFLOW_S3_ENDPOINT_URL")


def test_an_unreachable_server_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    url = _dead_url()
    with pytest.raises(EndpointError) as probed:
        endpoints.check_tracking_server(url)
    assert str(probed.value).startswith(
        f"the MLflow tracking server {url} refuses connections (nothing listens there) after 3 attempts"
    )
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    with pytest.raises(MlflowException) as raised:
        MlflowClient(tracking_uri=url).get_experiment_by_name("x")
    error = endpoints.endpoint_error(raised.value)
    assert isinstance(error, EndpointError) and error.endpoint == url
    assert str(error).startswith(f"the MLflow tracking server {url} refuses connections")
    assert endpoints.endpoint_error(ValueError("unrelated")) is None


def test_experiments_on_a_dead_server_fail_with_it_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run_kepler: Any
) -> None:
    import mlflow

    import kepler as kp

    url = _dead_url()
    project = init(tmp_path / "p", tracking_uri=url)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    try:
        with pytest.raises(EndpointError, match=f"tracking server {url} refuses connections"):
            kp.versioning.start_experiment("e", project=project)
        # mlflow.set_tracking_uri copied the server into MLFLOW_TRACKING_URI: another project keeps its own store.
        assert os.environ["MLFLOW_TRACKING_URI"] == url
        other = init(tmp_path / "other")
        assert other.tracking_uri == f"sqlite:///{other.root.resolve() / '.kepler' / 'mlflow.db'}"
    finally:
        mlflow.set_tracking_uri(None)
    done = run_kepler("versioning", "create-unified", "v1", "--experiment", "e", cwd=project.root)
    assert done.returncode == 15 and done.stderr.startswith(f"error: the MLflow tracking server {url} ")
    assert len(done.stderr.strip().splitlines()) == 1
