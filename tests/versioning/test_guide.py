"""The guide's Python blocks run unchanged in a real project: sections 1-7 in order on a numeric table, and the
feature-pipeline block and the typical pipeline ("Pipeline Típico") on a table with a text column and the label.

The blocks are read from the copy of the guide kept in the repository (``docs/GUIDE.md``); when the shared
guide is beside the checkout (as in CI), the copy must equal it, so the tests follow the guide rather than a
private variant.
"""

from __future__ import annotations

import contextlib
import csv
import io
import re
import tempfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import numpy as np
import pandas as pd
import pytest

import kepler as kp
from kepler.versioning.project import init

HERE = Path(__file__).resolve().parent
GUIDE = HERE.parents[1] / "docs" / "GUIDE.md"
SHARED = HERE.parents[2] / "shared" / "GUIDE.md"
START, END = "### **1. Versionado de Datos**", "## 🏭 AutoML Industrial"
TYPICAL_START = "### **Pipeline Típico: Datos → AutoML → Versionado → Deployment**"
TYPICAL_END = "## 📋 Comandos CLI"


def _blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, re.S)


def _section(start: str, end: str) -> str:
    text = GUIDE.read_text(encoding="utf-8")
    return text[text.index(start) : text.index(end)]


def test_the_copy_matches_the_shared_guide() -> None:
    if not SHARED.is_file():
        pytest.skip(f"{SHARED} is not beside this checkout, so the copy cannot be compared with the guide")
    assert GUIDE.read_text(encoding="utf-8") == SHARED.read_text(encoding="utf-8"), (
        "docs/GUIDE.md differs from the shared guide: copy the guide again and rerun"
    )


def test_guide_blocks_run_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    init(tmp_path)
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    (tmp_path / "data").mkdir()
    sensors = pd.DataFrame(
        {
            "temperature": rng.normal(70, 5, 2890),
            "pressure": rng.normal(3, 0.2, 2890),
            "vibration": rng.gamma(2, 1, 2890),
            "rpm": rng.normal(1500, 100, 2890),
        }
    )
    sensors.to_csv("data/sensors.csv", index=False)
    pd.DataFrame({"machine": ["a", "b"], "hours": [10, 20]}).to_csv("data/maintenance.csv", index=False)
    blocks = _blocks(_section(START, END))
    assert len(blocks) == 7
    namespace = {
        "data": sensors
    }  # block 2 transforms a table named `data` that the guide leaves to the reader
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        for block in blocks:
            exec(compile(block, "GUIDE.md", "exec"), namespace)
    out = printed.getvalue()

    assert "sensors-v1.0" in [v.version_id for v in kp.versioning.list_versions()]
    assert "sensors-v1.0: data/sensors.csv (2890 rows)" in out
    assert namespace["transformed_data"].shape == (2890, 10)
    assert len(namespace["result"]["run_id"]) == 32
    unified = namespace["unified_version"]
    assert unified.mlflow_run_id == namespace["result"]["run_id"]
    assert f"Git commit: {unified.git_commit}" in out and len(unified.git_commit) == 40
    assert namespace["reproduction_result"].success, namespace["reproduction_result"].error_message
    assert "✅ Reproducción exitosa" in out
    assert namespace["data_reproduction"].success
    assert namespace["pipeline_reproduction"].success, namespace["pipeline_reproduction"].error_message
    assert not namespace["experiment_reproduction"].success  # no run "experiment-123" exists
    assert "experiment-123" in namespace["experiment_reproduction"].error_message
    assert kp.versioning.get_release("stable-v1.0").status == "production"
    assert namespace["complete_lineage"][-1]["node_id"] == "xgboost-v1.3"
    assert "sensors-raw → ['preprocessing-v1.2']" in out


# --------------------------------------------------------------------------- a table with a text column and the label


def _plant_readings(rows: int = 400) -> pd.DataFrame:
    """Readings as a Splunk search returns them: a time, a machine id, numbers, a text column and the label."""
    rng = np.random.default_rng(5)
    temperature = rng.normal(300, 2, rows).round(2)
    line = rng.choice(["H", "L", "M"], rows)
    return pd.DataFrame(
        {
            "_time": pd.date_range("2026-01-05T06:00", periods=rows, freq="10min").strftime(
                "%Y-%m-%dT%H:%M:%S.000+00:00"
            ),
            "machine": rng.choice(["M-1", "M-2", "M-3", "M-4"], rows),
            "temperature": temperature,
            "rpm": rng.normal(1500, 150, rows).round().astype(int),
            "vibration": rng.gamma(2, 1, rows).round(3),
            "line": line,
            "failure": ((temperature > 301.5) | (line == "H")).astype(int),
        }
    )


def _label_in_project(root: Path, label: str) -> None:
    with open(root / "kepler.toml", "a", encoding="utf-8") as handle:
        handle.write(f'\n[build]\nlabel = "{label}"\n')


@pytest.mark.filterwarnings(
    "ignore:Features .* are constant:UserWarning",  # the polynomial bias column
    "ignore:invalid value encountered:RuntimeWarning",
)
def test_guide_feature_block_on_a_table_with_text_and_the_label(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    init(tmp_path)
    _label_in_project(tmp_path, "failure")
    monkeypatch.chdir(tmp_path)
    data = _plant_readings().drop(columns=["_time", "machine"])
    block = _blocks(_section(START, END))[1]
    assert "apply_versioned_pipeline" in block and "SelectKBest" in block
    namespace = {"kp": kp, "data": data}
    exec(compile(block, "GUIDE.md", "exec"), namespace)

    out = namespace["transformed_data"]
    # temperature, rpm, vibration -> 10 polynomial terms (bias included), the 10 best kept; the text column
    # passes through unchanged; the label is kept out.
    assert out.shape == (len(data), 11) and list(out.columns[-1:]) == ["line"]
    assert "failure" not in out.columns
    pd.testing.assert_series_equal(out["line"], data["line"])
    assert namespace["pipeline"].pipeline_id == "sensor-preprocessing@v1.2.0"
    fitted = kp.versioning.list_pipelines()[0].fitted
    assert fitted["label"] == "failure" and fitted["layout"]["passthrough"] == ["line"]


class _SplunkExport(BaseHTTPRequestHandler):
    """Splunk's search/jobs/export endpoint as splunkd answers it: a Bearer token, a form, CSV, every field quoted."""

    table: pd.DataFrame
    token = "guide-test-token"
    searches: list[str] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
        if (
            self.path != "/services/search/jobs/export"
            or self.headers.get("Authorization") != f"Bearer {self.token}"
        ):
            self.send_response(401)
            self.end_headers()
            return
        self.searches.append(
            f"{form.get('search')} earliest={form.get('earliest_time')} output={form.get('output_mode')}"
        )
        out = io.StringIO()
        self.table.to_csv(out, index=False, quoting=csv.QUOTE_ALL, lineterminator="\n")
        body = out.getvalue().encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/csv; charset=UTF-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:  # keep test output quiet
        pass


@pytest.fixture
def splunk(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[_SplunkExport]]:
    """A local stand-in for Splunk's REST port, configured as the guide's code finds it (SPLUNK_HOST/SPLUNK_TOKEN)."""
    handler = type("Export", (_SplunkExport,), {"table": _plant_readings(), "searches": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("SPLUNK_HOST", f"http://127.0.0.1:{server.server_address[1]}")
    monkeypatch.setenv("SPLUNK_TOKEN", handler.token)
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    yield handler
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_guide_typical_pipeline_on_a_table_with_text_and_the_label(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, splunk: type[_SplunkExport]
) -> None:
    import mlflow
    from mlflow import MlflowClient

    root = tmp_path / "plant"
    project = init(root)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(root)
    (root / "data").mkdir()
    splunk.table.to_csv(root / "data" / "sensors-latest.csv", index=False)  # the extract the block versions
    block = _blocks(_section(TYPICAL_START, TYPICAL_END))[0]
    # The guide gives the search an hour; a few seconds keep this test short (the only change to the block).
    assert block.count('optimization_time="1h"') == 1
    block = block.replace('optimization_time="1h"', 'optimization_time="5s"')
    namespace = {"kp": kp}
    printed = io.StringIO()
    # As written, the block leaves the chosen artifact in a temporary folder removed at exit: here, tmp_path.
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    with contextlib.redirect_stdout(printed):
        exec(compile(block, "GUIDE.md", "exec"), namespace)
    out = printed.getvalue()

    assert splunk.searches == ["search index=sensors earliest=-7d output=csv"]
    assert len(namespace["data"]) == len(splunk.table) and "line" in namespace["data"].columns
    assert namespace["data_version"].version_id == "sensors-v2.0"
    result, exp = namespace["automl_result"], namespace["exp"]
    assert exp.status == "FINISHED" and mlflow.active_run() is None
    assert "line" in result["data"]["categorical_columns"] and result["data"]["label"] == "failure"

    # Kepler's runs are children of the block's run, in the project's store: the search, and its trials.
    client = MlflowClient(tracking_uri=project.tracking_uri)
    children = client.search_runs([exp.experiment_id], f"tags.mlflow.parentRunId = '{exp.run_id}'")
    assert [r.info.run_id for r in children] == [result["mlflow"]["search_run_id"]]
    search = children[0]
    assert search.data.params["family"] == result["best_algorithm"] and "test_score" in search.data.metrics
    trials = client.search_runs(
        [exp.experiment_id], f"tags.mlflow.parentRunId = '{search.info.run_id}'", max_results=1000
    )
    assert len(trials) == len(result["trials"]) > 0
    assert namespace["unified_version"].mlflow_run_id == exp.run_id

    # The release, made because the model fits the edge budgets.
    assert result["deployment_ready"], result["constraint_report"]
    release = namespace["release"]
    assert release.release_id == f"production-{result['best_algorithm']}-v2.0"
    assert (
        kp.versioning.get_release(release.release_id).status == "staging"
    )  # the guide's ready_for_deployment
    assert f"✅ Release creado: {release.release_id}" in out and f"kepler deploy {release.release_id}" in out

    # Nothing stray: no mlruns/, no MLflow store or FLAML log outside .kepler/.
    for pattern in ("mlruns", "mlartifacts", "mlflow.db", "flaml.log"):
        assert [p for p in tmp_path.rglob(pattern) if ".kepler" not in p.parts] == [], pattern
