"""Cloud Run: the service spec from a target profile (no Docker needed), the clear errors where Docker is
missing, and, where a Docker engine runs, a real image built from a bento, run and asked for predictions."""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
import yaml

from kepler.deployment.cloudrun import (
    DEFAULT_CONCURRENCY,
    MIN_MEMORY_MIB,
    PORT,
    deploy_cloud_run,
    resources_for_profile,
    service_spec,
)
from kepler.errors import KeplerError
from kepler.targets import load_profile

RELEASE = {"release_id": "Sensors-Prod", "version": "1.2.0", "status": "production"}


def _container(spec: dict) -> dict:
    (container,) = spec["spec"]["template"]["spec"]["containers"]
    return container


def _write_tool(folder: Path, name: str, script: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


# --------------------------------------------------------------------------- the spec, from a profile


def test_edge_profile_gives_one_cpu_and_cloud_runs_memory_floor() -> None:
    spec = service_spec(
        image="europe-west1-docker.pkg.dev/p/r/kepler-sensors:1.2.0",
        profile=load_profile("edge").to_dict(),
        release=RELEASE,
    )
    container = _container(spec)
    assert spec["apiVersion"] == "serving.knative.dev/v1" and spec["kind"] == "Service"
    assert spec["metadata"]["name"] == "kepler-sensors-prod"
    assert container["image"] == "europe-west1-docker.pkg.dev/p/r/kepler-sensors:1.2.0"
    assert container["resources"]["limits"] == {
        "cpu": "1",
        "memory": f"{MIN_MEMORY_MIB}Mi",
    }  # edge asks 256 MB
    assert spec["spec"]["template"]["spec"]["containerConcurrency"] == DEFAULT_CONCURRENCY
    assert container["ports"] == [{"name": "http1", "containerPort": PORT}] and PORT == 8080
    assert {"name": "BENTOML_HOST", "value": "0.0.0.0"} in container["env"]
    assert not any(e["name"] == "PORT" for e in container["env"])  # Cloud Run sets PORT itself
    assert container["startupProbe"]["httpGet"] == {"path": "/readyz", "port": PORT}
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    labels = spec["spec"]["template"]["metadata"]["labels"]
    assert labels["kepler-release"] == "sensors-prod" and labels["kepler-version"] == "1-2-0"


def test_cloud_profile_and_profile_concurrency() -> None:
    cloud = load_profile("cloud").to_dict()
    resources = resources_for_profile(cloud)
    assert (
        resources["cpu"] == "2" and resources["memory"] == "2048Mi"
    )  # threads = 0: Kepler's default of 2 CPUs
    assert any("all cores" in note for note in resources["notes"])

    custom = {"name": "plant", "threads": 3, "memory_mb": 1000.5, "concurrency": 40}
    resources = resources_for_profile(custom)
    assert resources == {"cpu": "4", "memory": "2048Mi", "concurrency": 40, "notes": resources["notes"]}
    assert resources_for_profile(custom, concurrency=5)["concurrency"] == 5
    assert resources_for_profile({"threads": 2, "memory_mb": 3000})["memory"] == "3000Mi"


@pytest.mark.parametrize(
    ("profile", "words"),
    [
        ({"threads": -1, "memory_mb": 512}, "threads"),
        ({"threads": 1, "memory_mb": 0}, "memory_mb"),
        ({"threads": 1, "memory_mb": 512, "concurrency": 0}, "concurrency"),
        ({"threads": 1, "memory_mb": 512, "concurrency": 5000}, "concurrency"),
    ],
)
def test_bad_profile_values_are_refused(profile: dict, words: str) -> None:
    with pytest.raises(KeplerError, match=words):
        resources_for_profile(profile)


def test_service_yaml_without_docker_says_where_gcloud_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))  # neither docker nor gcloud
    result = deploy_cloud_run(
        "kepler-sensors-prod:abc123",
        release=RELEASE,
        profile=load_profile("edge").to_dict(),
        bentoml_home=tmp_path / "bentoml",
        output_dir=tmp_path / "out",
        build=False,
        region="europe-west1",
    )
    written = yaml.safe_load((tmp_path / "out" / "service.yaml").read_text())
    assert written == service_spec(
        image="kepler-sensors-prod:1.2.0",
        profile=load_profile("edge").to_dict(),
        release=RELEASE,
        bento_tag="kepler-sensors-prod:abc123",
    )
    assert result["status"] == "spec-only" and result["image"] == "kepler-sensors-prod:1.2.0"
    deploy = f"gcloud run services replace {tmp_path / 'out' / 'service.yaml'} --region europe-west1"
    assert result["commands"]["deploy"] == deploy
    assert result["gcloud"] == {
        "installed": False,
        "message": f"gcloud not installed: run this command where it is: {deploy}",
    }
    assert (
        "docker push REGION-docker.pkg.dev/PROJECT/REPO/kepler-sensors-prod:1.2.0"
        in result["commands"]["push"]
    )
    assert deploy in capsys.readouterr().err


def test_with_gcloud_installed_the_command_is_returned_not_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    _write_tool(bin_dir, "gcloud", f'echo "$@" >> {tmp_path / "gcloud-calls"}\n')
    monkeypatch.setenv("PATH", str(bin_dir))
    result = deploy_cloud_run(
        "b:1",
        release=RELEASE,
        profile={"name": "x", "threads": 1, "memory_mb": 600},
        bentoml_home=tmp_path,
        output_dir=tmp_path / "out",
        build=False,
        image_tag="us-docker.pkg.dev/p/r/img:1",
    )
    assert result["gcloud"]["installed"] is True and result["gcloud"]["message"].startswith("gcloud found")
    assert result["next_steps"] == [
        result["commands"]["deploy"]
    ]  # the image names a registry: nothing to push first
    assert result["commands"]["push"] == "docker push us-docker.pkg.dev/p/r/img:1"
    assert not (tmp_path / "gcloud-calls").exists()


def test_missing_docker_raises_one_clear_line_after_writing_the_spec(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    with pytest.raises(KeplerError, match="docker is not installed") as caught:
        deploy_cloud_run(
            "b:1",
            release=RELEASE,
            profile=load_profile("edge").to_dict(),
            bentoml_home=tmp_path,
            output_dir=tmp_path / "out",
        )
    assert "\n" not in str(caught.value) and "apt-get install docker.io" in str(caught.value)
    assert (tmp_path / "out" / "service.yaml").exists()


def test_unreachable_daemon_names_the_failing_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    _write_tool(
        bin_dir,
        "docker",
        "echo 'Cannot connect to the Docker daemon at unix:///var/run/docker.sock.' >&2\nexit 1\n",
    )
    monkeypatch.setenv("PATH", str(bin_dir))
    with pytest.raises(KeplerError, match=r"Docker daemon is not reachable \(`docker info`: Cannot connect"):
        deploy_cloud_run(
            "b:1",
            release=RELEASE,
            profile=load_profile("edge").to_dict(),
            bentoml_home=tmp_path,
            output_dir=tmp_path / "out",
        )


def test_bad_arguments(tmp_path: Path) -> None:
    edge = load_profile("edge").to_dict()
    with pytest.raises(KeplerError, match="NAME:VERSION"):
        deploy_cloud_run(
            "no-version", release=RELEASE, profile=edge, bentoml_home=tmp_path, output_dir=tmp_path
        )
    with pytest.raises(KeplerError, match="no version"):
        deploy_cloud_run(
            "b:1", release={"release_id": "r"}, profile=edge, bentoml_home=tmp_path, output_dir=tmp_path
        )
    with pytest.raises(KeplerError, match="default bridge"):
        deploy_cloud_run(
            "b:1",
            release=RELEASE,
            profile=edge,
            bentoml_home=tmp_path,
            output_dir=tmp_path,
            build_network="bridge",
        )
    with pytest.raises(KeplerError, match="service name"):
        service_spec(image="i:1", profile=edge, release=RELEASE, service_name="Bad_Name")


# --------------------------------------------------------------------------- a real image, where Docker runs

BASE_IMAGE = os.environ.get("KEPLER_TEST_BASE_IMAGE", "kepler-base:bookworm")


def _docker_or_skip() -> None:
    if shutil.which("docker") is None:
        pytest.skip(
            "docker is not installed (shutil.which('docker') is None); .ci/run installs docker.io where it can"
        )
    info = subprocess.run(
        ["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True, timeout=60
    )
    if info.returncode != 0:
        lines = (info.stderr or info.stdout).strip().splitlines()
        pytest.skip(
            f"`docker info` failed ({lines[-1] if lines else info.returncode}): no Docker engine runs here"
        )
    inspect = subprocess.run(
        ["docker", "image", "inspect", BASE_IMAGE], capture_output=True, text=True, timeout=60
    )
    if inspect.returncode != 0:
        pytest.skip(
            f"`docker image inspect {BASE_IMAGE}` failed: no offline base image (.ci/run makes it with "
            f"debootstrap; or set KEPLER_TEST_BASE_IMAGE)"
        )


SENSORS = Path(__file__).resolve().parents[2] / "examples" / "data" / "sensors.csv"


@pytest.fixture(scope="module")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A real release, packaged by Kepler: a project, a build, a release, its BentoML model and bento."""
    _docker_or_skip()
    import pandas as pd

    import kepler as kp
    from kepler.deployment.package import package_release
    from kepler.versioning.project import init

    root = tmp_path_factory.mktemp("cloudrun-project")
    init(root)
    (root / "data").mkdir()
    table = pd.read_csv(SENSORS).head(1500)
    table.to_csv(root / "data" / "sensors.csv", index=False)
    previous = Path.cwd()
    os.chdir(root)
    try:
        built = kp.build(
            "data/sensors.csv",
            label="failure",
            target="edge",
            time_budget=4,
            seed=3,
            constraints={"families": ["logistic_regression"]},
        )
        release = kp.versioning.create_release(
            "sensors-cr", "1.2.0", unified_version=built.report["tracking"]["unified_version"]
        )
        package = package_release("sensors-cr")
        predictor = kp.runtimes.load(built.artifact_path)
        columns = list(predictor.manifest.input_schema.names)
        rows = json.loads(table[columns].head(3).to_json(orient="records"))
        expected = predictor.predict_proba(rows).tolist()
    finally:
        os.chdir(previous)
    return {
        "release": release.to_dict(),
        "tag": package.bento_tag,
        "home": package.bentoml_home,
        "root": root,
        "rows": rows,
        "expected": expected,
    }


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_ready(client, container: str, timeout: float = 120.0) -> None:
    import httpx

    started = time.monotonic()
    while True:
        try:
            if client.get("/readyz").status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() - started > timeout:
            logs = subprocess.run(["docker", "logs", container], capture_output=True, text=True)
            raise AssertionError(
                f"/readyz not 200 after {timeout:.0f} s:\n{(logs.stdout + logs.stderr)[-3000:]}"
            )
        time.sleep(0.5)


def test_image_builds_runs_on_port_and_predicts(packaged: dict, tmp_path: Path) -> None:
    import httpx

    image = f"kepler-cloudrun-test:{uuid.uuid4().hex[:8]}"
    result = deploy_cloud_run(
        packaged["tag"],
        release=packaged["release"],
        profile=load_profile("edge").to_dict(),
        bentoml_home=packaged["home"],
        image_tag=image,
        base_image=BASE_IMAGE,
        output_dir=tmp_path / "out",
    )
    try:
        assert result["build"]["built"] and result["build"]["base_image"] == BASE_IMAGE
        assert result["status"] in ("ready", "deployed") and result["image"] == image
        assert f"FROM {BASE_IMAGE}" in Path(result["build"]["dockerfile"]).read_text()
        assert _container(yaml.safe_load(Path(result["service_yaml"]).read_text()))["image"] == image
        # The serving image carries the runtime only: no scikit-learn, XGBoost, MLflow or pandas.
        listed = subprocess.run(
            [
                "docker",
                "run",
                "--rm",
                "--network",
                "none",
                "--entrypoint",
                "/app/.venv/bin/python",
                image,
                "-c",
                "import importlib.metadata as m; "
                "print(' '.join(d.metadata['Name'] for d in m.distributions()))",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert listed.returncode == 0, listed.stderr
        names = {name.lower().replace("_", "-") for name in listed.stdout.split()}
        assert {"onnxruntime", "numpy", "bentoml"} <= names
        assert not names & {"scikit-learn", "xgboost", "lightgbm", "mlflow", "pandas", "flaml", "skl2onnx"}

        port = _free_port()
        run = subprocess.run(
            ["docker", "run", "-d", "--network", "host", "-e", f"PORT={port}", image],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert run.returncode == 0, run.stderr
        container = run.stdout.strip()
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
                _wait_ready(client, container)
                answer = client.post("/predict_proba", json=packaged["rows"])
                assert answer.status_code == 200, answer.text
                np.testing.assert_allclose(answer.json(), packaged["expected"], atol=1e-5)
                assert answer.headers["x-kepler-release"] == "sensors-cr"
                metadata = client.get("/metadata").json()
                assert metadata["release"] == "sensors-cr" and metadata["version"] == "1.2.0"
            logs = subprocess.run(["docker", "logs", container], capture_output=True, text=True)
            assert f"Overriding $BENTOML_PORT with $PORT ({port})" in logs.stdout + logs.stderr
        finally:
            subprocess.run(["docker", "rm", "-f", container], capture_output=True, timeout=60)
    finally:
        subprocess.run(["docker", "rmi", "--no-prune", image], capture_output=True, timeout=120)


def test_kp_deploy_dispatches_to_cloud_run(packaged: dict, tmp_path: Path) -> None:
    import kepler as kp

    image = f"kepler-cloudrun-test:{uuid.uuid4().hex[:8]}"
    try:
        done = kp.deploy(
            "sensors-cr",
            platform="cloud-run",
            project=kp.Project(packaged["root"]),
            image_tag=image,
            base_image=BASE_IMAGE,
            output_dir=tmp_path / "out",
            region="europe-west1",
        )
        assert done.platform == "cloud-run" and done.image_tag == image
        assert done.details["build"]["built"] and done.details["status"] == "ready"
        assert done.details["commands"]["deploy"].endswith("--region europe-west1")
        spec = yaml.safe_load((tmp_path / "out" / "service.yaml").read_text())
        assert _container(spec)["resources"]["limits"]["cpu"] == "1"  # the release was built for edge
    finally:
        subprocess.run(["docker", "rmi", "--no-prune", image], capture_output=True, timeout=120)


def test_missing_base_image_says_how_to_make_one(packaged: dict, tmp_path: Path) -> None:
    with pytest.raises(KeplerError, match="debootstrap") as caught:
        deploy_cloud_run(
            packaged["tag"],
            release=packaged["release"],
            profile=load_profile("edge").to_dict(),
            bentoml_home=packaged["home"],
            base_image="localhost:1/kepler-missing:none",
            output_dir=tmp_path / "out",
        )
    assert "localhost:1/kepler-missing:none is not on this machine and cannot be pulled" in str(caught.value)
    assert "\n" not in str(caught.value) and (tmp_path / "out" / "service.yaml").exists()
