"""Every Python block of the versioning guide's sections 1-7 runs unchanged, in order, in a real project.

The blocks are read from a copy of those sections kept beside this test
(``guide_versioning.md``); when the shared guide is present (as in CI), the copy must
match it, so the test follows the guide rather than a private variant.
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import kepler as kp
from kepler.versioning.project import init

HERE = Path(__file__).resolve().parent
COPY = HERE / "guide_versioning.md"
SHARED = HERE.parents[2] / "shared" / "GUIDE.md"
START, END = "### **1. Versionado de Datos**", "## 🏭 AutoML Industrial"


def _blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, re.S)


def test_the_copy_matches_the_shared_guide() -> None:
    if not SHARED.is_file():
        pytest.skip(f"{SHARED} is not beside this checkout, so the copy cannot be compared with the guide")
    text = SHARED.read_text(encoding="utf-8")
    assert text[text.index(START):text.index(END)] == COPY.read_text(encoding="utf-8")


def test_guide_blocks_run_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    init(tmp_path)
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    (tmp_path / "data").mkdir()
    sensors = pd.DataFrame({"temperature": rng.normal(70, 5, 2890), "pressure": rng.normal(3, 0.2, 2890),
                            "vibration": rng.gamma(2, 1, 2890), "rpm": rng.normal(1500, 100, 2890)})
    sensors.to_csv("data/sensors.csv", index=False)
    pd.DataFrame({"machine": ["a", "b"], "hours": [10, 20]}).to_csv("data/maintenance.csv", index=False)
    blocks = _blocks(COPY.read_text(encoding="utf-8"))
    assert len(blocks) == 7
    namespace = {"data": sensors}  # block 2 transforms a table named `data` that the guide leaves to the reader
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        for block in blocks:
            exec(compile(block, "GUIDE.md", "exec"), namespace)  # noqa: S102 - the guide's own code
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
