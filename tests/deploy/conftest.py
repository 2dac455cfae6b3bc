"""Fixtures for the deploy tests: a real Kepler project with two builds and two releases of one model line,
and helpers to run servers on free loopback ports (always stopped afterwards)."""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

SENSORS = Path(__file__).resolve().parents[2] / "examples" / "data" / "sensors.csv"
BIN = Path(sys.executable).parent


@dataclass
class DeployProject:
    """The shared project.

    Attributes:
        root: The project folder.
        releases: Release name -> unified version name, oldest version first.
        artifacts: Release name -> its artifact folder.
        rows: Unseen rows (feature columns only, missing values as None) for predictions.
        source_rows: The same rows as they stand in the source table: with the columns the build dropped
            (``timestamp``, ``machine_id``) and the label (``failure``).
    """

    root: Path
    releases: dict[str, str]
    artifacts: dict[str, Path]
    rows: list[dict[str, Any]]
    source_rows: list[dict[str, Any]]

    @property
    def bentoml_home(self) -> Path:
        return self.root / ".kepler" / "bentoml"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def free_port() -> Any:
    """``free_port()``: a loopback port nothing listens on."""
    return _free_port


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    rows = frame.astype(object).to_dict(orient="records")
    return [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()} for row in rows
    ]


@pytest.fixture(scope="session")
def deploy_project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DeployProject]:
    """A project with builds of two families, released as pm-1.0 (1.0.0) and pm-1.1 (1.1.0) in one model line."""
    import kepler as kp
    from kepler.versioning.project import init
    from kepler.versioning.releases import create_release

    root = tmp_path_factory.mktemp("deploy") / "proj"
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        patch.delenv("BENTOML_HOME", raising=False)
        patch.setenv("DVC_NO_ANALYTICS", "1")
        init(root)
        (root / "data").mkdir()
        table = pd.read_csv(SENSORS)
        table.head(1500).to_csv(root / "data" / "sensors.csv", index=False)
        patch.chdir(root)
        releases, artifacts = {}, {}
        for name, version, families in (
            ("pm-1.0", "1.0.0", ["logistic_regression"]),
            ("pm-1.1", "1.1.0", ["random_forest"]),
        ):
            built = kp.build(
                "data/sensors.csv",
                label="failure",
                target="edge",
                time_budget=4,
                seed=1,
                constraints={"families": families},
            )
            unified = built.report["tracking"]["unified_version"]
            create_release(name, version, unified_version=unified, model_line="pm")
            releases[name], artifacts[name] = unified, (root / built.path / "artifact").resolve()
        manifest = json.loads((artifacts["pm-1.1"] / "manifest.json").read_text(encoding="utf-8"))
        columns = [c["name"] for c in manifest["input_schema"]["columns"]]
        unseen = table.iloc[1500:1564]
        yield DeployProject(
            root=root,
            releases=releases,
            artifacts=artifacts,
            rows=_records(unseen[columns]),
            source_rows=_records(unseen),
        )
        _stop_all(root / ".kepler" / "bentoml")


def _stop_all(home: Path) -> None:
    """Stops any server a failed test left behind (only those Kepler recorded)."""
    from kepler.deployment.local import stop

    for record in (home / "kepler-servers").glob("*.json"):
        stop(int(record.stem), bentoml_home=home)


@pytest.fixture
def in_project(deploy_project: DeployProject, monkeypatch: pytest.MonkeyPatch) -> DeployProject:
    """The working directory inside the shared project."""
    monkeypatch.chdir(deploy_project.root)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return deploy_project


class Server:
    """``bentoml serve`` started by a test, with its log."""

    def __init__(self, command: list[str], env: dict[str, str], cwd: Path, log: Path, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.log = log
        self._handle = log.open("wb")
        self.process = subprocess.Popen(
            command,
            env=env,
            cwd=cwd,
            stdout=self._handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 60.0) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"server not ready:\n{self.log.read_text(errors='replace')[-3000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)
        self._handle.close()


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Any]:
    """``start_server(command, env, cwd, port)``: starts a server, waits for /readyz; stopped after the test."""
    servers: list[Server] = []

    def start(command: list[str], env: dict[str, str], cwd: Path, port: int) -> Server:
        server = Server(command, env, cwd, tmp_path / f"server-{port}.log", port)
        servers.append(server)
        server.wait_ready()
        return server

    try:
        yield start
    finally:
        for server in servers:
            server.stop()


@pytest.fixture(scope="session")
def kepler_cli() -> Path:
    return BIN / "kepler"
