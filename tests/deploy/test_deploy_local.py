"""The whole path: a release built from the example data, deployed locally, served by a real `bentoml serve`,
called over HTTP; then the rollback by deploying the earlier release."""

from __future__ import annotations

import importlib.util
import json
import socket
from pathlib import Path

import httpx
import numpy as np
import pytest
import yaml

import kepler as kp
from kepler.deployment import stop
from kepler.errors import ArtifactError, KeplerError, VersioningError
from kepler.runtimes import load

HEADER = "X-Kepler-Release"
_spec = importlib.util.spec_from_file_location("kepler_tests_hostile", Path(__file__).with_name("hostile.py"))
hostile = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(hostile)


def _columns(rows: list[dict]) -> dict[str, list]:
    return {key: [row[key] for row in rows] for key in rows[0]}


def _assert_exact(served: list, expected: np.ndarray) -> None:
    """JSON numbers round-trip float32 and float64 exactly, so the served values must equal the local ones bit for bit."""
    np.testing.assert_array_equal(np.asarray(served, dtype=expected.dtype), expected)


def _model_yaml(project, tag: str) -> dict:
    name, version = tag.split(":")
    return yaml.safe_load((project.bentoml_home / "models" / name / version / "model.yaml").read_text())


def _check_bad_payloads(url: str, rows: list[dict], release: str) -> None:
    good = rows[0]
    missing = {k: v for k, v in good.items() if k != next(iter(good))}
    numeric = next(c for c, v in good.items() if isinstance(v, float))
    cases = {
        "missing column": (json.dumps([missing]).encode(), 422, "missing columns"),
        "string in a numeric column": (
            json.dumps([{**good, numeric: "hot"}]).encode(),
            422,
            "must be numeric",
        ),
        "empty list": (b"[]", 422, "empty batch"),
        "10 MB body": (b"[" + b" " * (10 * 1024 * 1024) + b"]", 413, "larger than"),
        "not JSON": (b"temperature=70&pressure=1", 400, "not valid JSON"),
        "a bare number": (b"5", 422, "expected a list of records or an object of columns"),
        "split rows of the wrong width": (
            json.dumps({"dataframe_split": {"columns": list(good), "data": [[1.0]]}}).encode(),
            422,
            "each a list of",
        ),
        "MLflow inputs of a number": (b'{"inputs": 5}', 422, "inputs must hold a list of records"),
        "two MLflow forms": (json.dumps({"inputs": [good], "instances": [good]}).encode(), 422, "send one"),
        "MLflow params": (
            json.dumps({"dataframe_records": [good], "params": {"k": 1}}).encode(),
            422,
            "no params",
        ),
    }
    with httpx.Client(base_url=url, timeout=30) as client:
        for what, (body, status, words) in cases.items():
            for route in ("/predict", "/predict_proba"):
                answer = client.post(route, content=body, headers={"content-type": "application/json"})
                assert answer.status_code == status, (what, route, answer.status_code, answer.text[:300])
                assert words in answer.json()["error"], (what, answer.text[:300])
                assert answer.headers[HEADER] == release, what
        # Issue 13's hostile bodies: each a 4xx with one error line, through BentoML's own body reader too.
        schema = {"columns": client.get("/metadata").json()["model"]["inputs"]}
        for what, body in hostile.bodies(schema, good).items():
            for route in ("/predict", "/predict_proba", "/invocations"):
                answer = client.post(route, content=body, headers={"content-type": "application/json"})
                assert 400 <= answer.status_code < 500, (what, route, answer.status_code, answer.text[:300])
                error = answer.json()
                assert isinstance(error, dict) and "\n" not in error["error"], (
                    what,
                    route,
                    answer.text[:300],
                )
                assert answer.headers[HEADER] == release, (what, route)
    # Requests uvicorn's HTTP parser refuses before any application sees them carry the header too.
    port = int(url.rsplit(":", 1)[1])
    for what, request in hostile.UNPARSABLE_REQUESTS.items():
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(request)
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                head += chunk
        lines = head.split(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")
        assert lines[0].startswith("HTTP/1.1 400"), (what, head[:300])
        headers = [line.split(":", 1) for line in lines[1:]]
        assert [v.strip() for k, v in headers if k.lower() == HEADER.lower()] == [release], (what, head[:300])


def _as_text(row: dict) -> dict:
    """A row as csv.DictReader and many JSON clients send it: every number a string, a gap blank."""
    return {k: "" if v is None else v if isinstance(v, str) else repr(v) for k, v in row.items()}


def _check_client_forms(url: str, project, local, *, ignores_unknown: bool) -> None:
    """Rows as clients send them: as they stand in the source table, numbers as text, MLflow's payloads."""
    rows, source = project.rows[:8], project.source_rows[:8]
    assert {"timestamp", "machine_id", "failure"} <= set(source[0]) - set(rows[0])
    labels, proba = local.predict(rows).tolist(), local.predict_proba(rows)
    columns = _columns(source)
    split = {
        "columns": list(columns),
        "data": [list(r.values()) for r in source],
        "index": list(range(len(source))),
    }
    same_answer = {
        "source rows": source,
        "source columns": columns,
        "numbers as text": [_as_text(r) for r in source],
        "dataframe_records": {"dataframe_records": source},
        "dataframe_split": {"dataframe_split": split},
        "inputs as records": {"inputs": rows},
        "inputs as columns": {"inputs": _columns(rows)},
        "instances": {"instances": source, "params": {}},
    }
    with httpx.Client(base_url=url, timeout=30) as client:
        for what, payload in same_answer.items():
            answer = client.post("/predict_proba", json=payload)
            assert answer.status_code == 200, (what, answer.text[:300])
            _assert_exact(answer.json(), proba)
            assert client.post("/predict", json=payload).json() == labels, what
        mlflow = client.post("/invocations", json={"dataframe_split": split})
        assert mlflow.status_code == 200 and mlflow.json() == {"predictions": labels}, mlflow.text[:300]

        unknown = [{**row, "operator": "kim"} for row in source]
        answer = client.post("/predict_proba", json=unknown)
        if ignores_unknown:
            assert answer.status_code == 200, answer.text[:300]
            _assert_exact(answer.json(), proba)
        else:
            assert answer.status_code == 422 and answer.json()["error"].startswith(
                "unexpected columns: operator;"
            )
            invocation = client.post("/invocations", json={"dataframe_records": unknown})
            assert invocation.status_code == 422 and "operator" in invocation.json()["error"]
        assert client.get("/metadata").json()["service"]["unknown_columns"] == (
            "ignore" if ignores_unknown else "reject"
        )


def test_deploy_serve_predict_lineage_and_rollback(in_project, free_port) -> None:
    project = in_project
    port = free_port()
    try:
        # Deploy the newer release and run it in the background (a real `bentoml serve`).
        deployed = kp.deploy("pm-1.1", platform="local", port=port)
        assert (
            deployed.url == f"http://127.0.0.1:{port}" and not deployed.rollback and deployed.previous is None
        )

        # The BentoML model holds the ONNX artifact and its manifest (no pickle), with the lineage in its labels.
        unified = kp.versioning.get_unified_version(project.releases["pm-1.1"])
        manifest = json.loads((project.artifacts["pm-1.1"] / "manifest.json").read_text())
        model_dir = project.bentoml_home / "models" / Path(deployed.model_tag.replace(":", "/"))
        assert {p.name for p in model_dir.iterdir()} == {
            "model.onnx",
            "manifest.json",
            "probe.json",
            "model.yaml",
        }
        labels = _model_yaml(project, deployed.model_tag)["labels"]
        assert labels["kepler.release"] == "pm-1.1" and labels["kepler.version"] == "1.1.0"
        assert labels["kepler.data-md5"] == unified.data[0]["md5"]
        assert labels["kepler.mlflow-run"] == unified.mlflow_run_id
        assert labels["kepler.git-commit"] == unified.git_commit
        assert labels["kepler.artifact-sha256"] == manifest["sha256"] == unified.artifact_sha256
        assert (
            project.bentoml_home / "bentos" / Path(deployed.bento_tag.replace(":", "/")) / "bento.yaml"
        ).is_file()

        # Predictions over HTTP equal the artifact's own predictions exactly, as records and as columns.
        local = load(project.artifacts["pm-1.1"])
        rows = project.rows
        with httpx.Client(base_url=deployed.url, timeout=30) as client:
            labels_answer = client.post("/predict", json=rows)
            proba_answer = client.post("/predict_proba", json=_columns(rows))
            assert labels_answer.status_code == 200 and proba_answer.status_code == 200
            assert labels_answer.json() == local.predict(rows).tolist()
            _assert_exact(proba_answer.json(), local.predict_proba(rows))
            assert labels_answer.headers[HEADER] == proba_answer.headers[HEADER] == "pm-1.1"
            for path in ("/livez", "/readyz"):
                health = client.get(path)
                assert health.status_code == 200 and health.headers[HEADER] == "pm-1.1"

            # /metadata: the release, its version, the lineage and the benchmark figures.
            meta = client.get("/metadata").json()
        assert meta["release"] == "pm-1.1" and meta["version"] == "1.1.0"
        lineage = meta["lineage"]
        assert (
            lineage["data_md5"] == unified.data[0]["md5"]
            and lineage["mlflow_run_id"] == unified.mlflow_run_id
        )
        assert (
            lineage["git_commit"] == unified.git_commit and lineage["artifact_sha256"] == manifest["sha256"]
        )
        assert lineage["unified_version"] == project.releases["pm-1.1"]
        assert (
            meta["service"]["bento_tag"] == deployed.bento_tag
            and meta["service"]["model_tag"] == deployed.model_tag
        )
        assert [b["batch"] for b in meta["benchmark"]["batches"]] == manifest["target"]["batch_sizes"]
        assert all(b["p99_ms"] > 0 for b in meta["benchmark"]["batches"])
        assert meta["model"]["task"] == "classifier" and meta["model"]["classes"] == [0, 1]

        assert set(meta["model"]["ignored_columns"]) == {"timestamp", "machine_id", "failure"}

        # Rows as clients send them, and bad payloads: a 4xx with a clear message, never a 5xx.
        _check_client_forms(deployed.url, project, local, ignores_unknown=False)
        _check_bad_payloads(deployed.url, rows, "pm-1.1")

        # The header leads back through the lineage graph to the data version.
        steps = kp.versioning.get_complete_lineage(labels_answer.headers[HEADER])
        kinds = {step["node_id"]: step["kind"] for step in steps}
        assert kinds[unified.data[0]["data_version"]] == "data"
        assert kinds[project.releases["pm-1.1"]] == "model" and kinds["pm-1.1"] == "release"
        service = next(step for step in steps if step["node_id"] == deployed.service_node)
        assert service["kind"] == "service" and service["inputs"] == ["pm-1.1"]
        assert (
            service["metadata"]["platform"] == "local"
            and service["metadata"]["bento_tag"] == deployed.bento_tag
        )
        assert "image_tag" in service["metadata"] and service["metadata"]["deployed_at"]

        # Rollback: deploying the earlier release on the same port replaces the running service.
        back = kp.deploy("pm-1.0", port=port)
        assert back.rollback and back.previous == "pm-1.1" and back.url == deployed.url
        earlier = load(project.artifacts["pm-1.0"])
        answer = httpx.post(f"{back.url}/predict_proba", json=rows, timeout=30)
        assert answer.status_code == 200 and answer.headers[HEADER] == "pm-1.0"
        _assert_exact(answer.json(), earlier.predict_proba(rows))
        history = kp.versioning.get_release("pm-1.0").history[-1]
        assert history["action"] == "rollback" and history["platform"] == "local"
        assert (
            history["details"]["replaces"] == "pm-1.1" and history["details"]["bento_tag"] == back.bento_tag
        )
        assert kp.versioning.get_release("pm-1.1").history[-1]["action"] == "deploy"
        assert history["details"]["ready_s"] > 0  # time to ready, for kepler monitor deployments
        success = kp.monitoring.deployment_success()  # the running server's own /metrics
        now_serving, replaced = success.row("pm-1.0"), success.row("pm-1.1")
        assert now_serving.server == "running" and now_serving.codes.get("200", 0) >= 1
        assert replaced.server == "serves pm-1.0" and replaced.rolled_back >= 1
        rollback_node = kp.versioning.get_lineage_node(back.service_node)
        assert rollback_node["inputs"] == ["pm-1.0"] and rollback_node["metadata"]["rollback"] is True
    finally:
        stopped = stop(port, bentoml_home=project.bentoml_home)
    assert stopped
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{port}/livez", timeout=2)


def test_batching_is_an_option_from_the_profile(in_project, start_server, free_port) -> None:
    """With batching on, `bentoml serve` of the bento batches whole requests; answers and errors are unchanged.
    The same server ignores unknown columns (the option baked into its bento)."""
    from kepler.deployment import package_release

    project = in_project
    package = package_release("pm-1.1", batching=True, unknown_columns="ignore")
    assert package.settings["batching"] is True and package.settings["unknown_columns"] == "ignore"
    assert package.settings["max_latency_ms"] == 50  # the edge profile's p99 budget at batch 1
    assert package.settings["max_batch_size"] == 100  # its largest benchmarked batch up to 1000
    port = free_port()
    server = start_server(package.serve_command(port), package.env(), project.root, port)
    local = load(project.artifacts["pm-1.1"])
    rows = project.rows
    with httpx.Client(base_url=server.url, timeout=30) as client:
        answer = client.post("/predict_proba", json=rows[:5])
        assert answer.status_code == 200, answer.text
        _assert_exact(answer.json(), local.predict_proba(rows[:5]))
        assert client.post("/predict", json=_columns(rows[:3])).json() == local.predict(rows[:3]).tolist()
        meta = client.get("/metadata").json()
    assert meta["service"]["batching"] == {"max_batch_size": 100, "max_latency_ms": 50}
    _check_client_forms(server.url, project, local, ignores_unknown=True)
    _check_bad_payloads(server.url, rows, "pm-1.1")


def test_packaging_is_reused_and_tampering_is_refused(in_project) -> None:
    from kepler.deployment import package_release

    project = in_project
    first = package_release("pm-1.0")
    again = package_release("pm-1.0")
    assert (again.model_tag, again.bento_tag) == (first.model_tag, first.bento_tag)
    assert not again.created_model and not again.created_bento

    model = project.artifacts["pm-1.0"] / "model.onnx"
    manifest_path = model.with_name("manifest.json")
    original, original_manifest = model.read_bytes(), manifest_path.read_text()
    try:
        model.write_bytes(original + b"\0")
        with pytest.raises(ArtifactError, match="does not match the manifest"):
            kp.deploy("pm-1.0")
        # A manifest rewritten to the tampered file's hash still disagrees with the unified version.
        from kepler.runtimes import sha256_file

        manifest = json.loads(original_manifest)
        manifest["sha256"] = sha256_file(model)
        manifest_path.write_text(json.dumps(manifest))
        with pytest.raises(ArtifactError, match="recorded in unified version"):
            kp.deploy("pm-1.0")
    finally:
        model.write_bytes(original)
        manifest_path.write_text(original_manifest)
    with pytest.raises(VersioningError, match="unknown release"):
        kp.deploy("no-such-release")
    with pytest.raises(KeplerError, match="unknown platform"):
        kp.deploy("pm-1.0", platform="mainframe")
    with pytest.raises(KeplerError, match="unknown_columns must be reject or ignore, got 'drop'"):
        kp.deploy("pm-1.0", unknown_columns="drop")
