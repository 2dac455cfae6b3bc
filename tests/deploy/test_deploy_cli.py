"""`kepler deploy` and `kepler serve` from the command line."""

from __future__ import annotations

import json
import os
import subprocess

import httpx

import kepler as kp


def _kepler(cli, *args: str, cwd) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("KEPLER_DEBUG", "MLFLOW_TRACKING_URI", "BENTOML_HOME")
    }
    return subprocess.run([str(cli), *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=180)


def test_deploy_command_records_and_reports(in_project, kepler_cli) -> None:
    project = in_project
    before = len(kp.versioning.get_release("pm-1.1").history)
    done = _kepler(kepler_cli, "deploy", "pm-1.1", "--json", cwd=project.root)
    assert done.returncode == 0, done.stderr
    deployed = json.loads(done.stdout)
    assert deployed["release"] == "pm-1.1" and deployed["platform"] == "local" and deployed["url"] is None
    assert deployed["bento_tag"].startswith("kepler-pm-1.1:") and deployed["service_node"].startswith(
        "pm-1.1@local-"
    )
    history = kp.versioning.get_release("pm-1.1").history
    assert len(history) == before + 1 and history[-1]["action"] in ("deploy", "rollback")
    assert history[-1]["target"] == deployed["bento_tag"]

    unknown = _kepler(kepler_cli, "deploy", "no-such-release", cwd=project.root)
    assert (
        unknown.returncode == 11 and "unknown release" in unknown.stderr and "Traceback" not in unknown.stderr
    )
    platform = _kepler(kepler_cli, "deploy", "pm-1.1", "--platform", "mainframe", cwd=project.root)
    assert platform.returncode == 1 and "unknown platform" in platform.stderr
    nothing = _kepler(kepler_cli, "deploy", "--stop", "--port", "1", cwd=project.root)
    assert nothing.returncode == 0 and "no Kepler server on port 1" in nothing.stdout
    option = _kepler(kepler_cli, "deploy", "pm-1.1", "--unknown-columns", "sometimes", cwd=project.root)
    assert option.returncode == 1 and "unknown_columns must be reject or ignore" in option.stderr


def test_serve_command_runs_in_the_foreground(in_project, kepler_cli, start_server, free_port) -> None:
    project = in_project
    before = len(kp.versioning.get_release("pm-1.1").history)
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("KEPLER_DEBUG", "MLFLOW_TRACKING_URI", "BENTOML_HOME")
    }
    server = start_server(
        [str(kepler_cli), "serve", "pm-1.1", "--port", str(port), "--unknown-columns", "ignore"],
        env,
        project.root,
        port,
    )
    answer = httpx.post(f"{server.url}/predict", json=project.rows[:2], timeout=30)
    assert answer.status_code == 200 and answer.headers["x-kepler-release"] == "pm-1.1"
    unknown = httpx.post(
        f"{server.url}/predict",
        json=[{**row, "operator": "kim"} for row in project.source_rows[:2]],
        timeout=30,
    )
    assert unknown.status_code == 200 and unknown.json() == answer.json()
    meta = httpx.get(f"{server.url}/metadata", timeout=30).json()
    assert meta["lineage"]["release"] == "pm-1.1" and meta["service"]["unknown_columns"] == "ignore"
    assert (
        len(kp.versioning.get_release("pm-1.1").history) == before
    )  # serving for development records nothing
