"""kepler.runtimes ships in serving images with onnxruntime and numpy only: importing it, and
predicting with it, must not pull in the training or conversion libraries."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

import kepler as kp

HEAVY = ["sklearn", "xgboost", "lightgbm", "skl2onnx", "onnxmltools", "flaml", "mlflow", "kepler.compilers"]

PROGRAM = """
import json, sys
import kepler.runtimes as kr
after_import = sorted(m for m in {heavy!r} if m in sys.modules)
predictor = kr.load({path!r})
labels = predictor.predict({records!r}).tolist()
report = kr.benchmark({path!r}, batch_sizes=(1,), min_time_s=0.01, max_time_s=0.02)
after_use = sorted(m for m in {heavy!r} if m in sys.modules)
print(json.dumps({{"after_import": after_import, "after_use": after_use, "labels": labels,
                  "p50": report["batches"][0]["p50_ms"]}}))
"""


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_runtimes_import_and_use_stay_light(industrial, tmp_path):
    numeric = ["temperature", "pressure", "vibration", "rpm"]
    model = Pipeline(
        [
            (
                "columns",
                ColumnTransformer(
                    [
                        ("num", SimpleImputer(), numeric),
                        ("cat", OneHotEncoder(handle_unknown="ignore"), ["line"]),
                    ]
                ),
            ),
            ("model", RandomForestClassifier(n_estimators=5, random_state=0)),
        ]
    )
    model.fit(industrial.frame, industrial.failure)
    output = tmp_path / "artifact"
    kp.compile(model, target="edge", sample=industrial.frame, output=output, benchmark=False)
    records = json.loads(industrial.frame.head(4).to_json(orient="records"))

    code = PROGRAM.format(heavy=HEAVY, path=str(output), records=records)
    result = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True, timeout=120)

    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["after_import"] == []
    assert seen["after_use"] == []
    assert seen["labels"] == model.predict(industrial.frame.head(4)).tolist()
    assert seen["p50"] > 0


def test_runtimes_does_not_import_compilers_in_source():
    """A static check of the rule 'runtimes imports nothing of compilers', beside the dynamic one above."""
    import ast
    import pathlib

    import kepler.runtimes

    folder = pathlib.Path(kepler.runtimes.__file__).parent
    offenders = []
    for path in folder.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                root = name.split(".")[0]
                if root in {
                    "sklearn",
                    "xgboost",
                    "lightgbm",
                    "skl2onnx",
                    "onnxmltools",
                    "flaml",
                    "mlflow",
                    "compilers",
                    "runtimes",
                    "targets",
                } or name.startswith("kepler.compilers"):
                    offenders.append(f"{path.name}: {name}")
    assert offenders == []
