"""The serving path is light: the service module and a prediction through it import only bentoml, numpy,
onnxruntime and Kepler's runtimes/targets; the bento carries only that code."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import kepler.deployment

HEAVY = [
    "sklearn",
    "xgboost",
    "lightgbm",
    "skl2onnx",
    "onnxmltools",
    "flaml",
    "mlflow",
    "pandas",
    "joblib",
    "dvc",
    "kepler.compilers",
    "kepler.versioning",
    "kepler.automl",
    "kepler.data",
    "kepler.builds",
    "kepler.deployment.package",
]

PROGRAM = """
import json, sys
heavy = {heavy!r}
import kepler.deployment.entry_service as entry     # what `bentoml serve` imports: configures the service
import kepler.deployment.service as service
after_import = sorted(m for m in heavy if m in sys.modules)
instance = entry.KeplerService.inner()            # loads the BentoML model's ONNX artifact
rows = {rows!r}
labels = instance.predict(rows)
probabilities = instance.predict_proba(rows)
checked = service.check_payload(b"[]", "predict", instance.loaded)
after_use = sorted(m for m in heavy if m in sys.modules)
print(json.dumps({{"after_import": after_import, "after_use": after_use, "labels": labels,
                  "probabilities": probabilities, "empty": checked[0], "release": instance.metadata["release"]}}))
"""


def test_service_import_and_prediction_stay_light(in_project) -> None:
    from kepler.deployment import package_release
    from kepler.runtimes import load

    project = in_project
    package = package_release("pm-1.1")
    rows = project.rows[:4]
    env = {**package.env(), "KEPLER_MODEL_TAG": package.model_tag, "KEPLER_RELEASE": "pm-1.1"}
    code = PROGRAM.format(heavy=HEAVY, rows=rows)
    done = subprocess.run(
        [sys.executable, "-P", "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=project.root,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["after_import"] == [] and seen["after_use"] == []
    local = load(project.artifacts["pm-1.1"])
    assert seen["labels"] == local.predict(rows).tolist()
    assert seen["probabilities"] == local.predict_proba(rows).tolist()
    assert seen["empty"] == 422 and seen["release"] == "pm-1.1"

    # The bento's source folder holds the serving code only.
    src = Path(package.bento_path) / "src"
    shipped = {p.relative_to(src).as_posix() for p in src.rglob("*.py")}
    assert "kepler/deployment/service.py" in shipped and "kepler/runtimes/predictor.py" in shipped
    assert not [
        p
        for p in shipped
        if p.split("/")[1] not in ("__init__.py", "errors.py", "deployment", "_compat", "runtimes", "targets")
    ]
    assert not {p for p in shipped if p.startswith("kepler/deployment/")} - {
        "kepler/deployment/__init__.py",
        "kepler/deployment/service.py",
        "kepler/deployment/entry_service.py",
        "kepler/deployment/recording.py",
    }
    assert {p for p in shipped if p.startswith("kepler/_compat/")} == {
        "kepler/_compat/__init__.py",
        "kepler/_compat/bentoml.py",
        "kepler/_compat/uvicorn.py",
    }
    requirements = (Path(package.bento_path) / "env" / "python" / "requirements.txt").read_text().split()
    assert {r.split("==")[0] for r in requirements} == {"numpy", "onnxruntime", "bentoml"}


def test_service_source_imports_only_the_serving_stack() -> None:
    """A static check beside the dynamic one: the serving modules of kepler/deployment/ import nothing else."""
    allowed_roots = {
        "bentoml",
        "numpy",
        "anyio",
        "__future__",
        "json",
        "os",
        "threading",
        "typing",
        "http",
        "importlib",
        "sys",
        "types",
        "copy",
        "gc",
        "asyncio",
        "functools",
        "logging",
        "math",
        "re",
        "shutil",
        "pathlib",
        "uvicorn",
        "atexit",  # the traffic recorder (kepler/deployment/recording.py): standard library only
        "datetime",
        "queue",
        "random",
        "time",
        "uuid",
    }  # BentoML's HTTP server, configured by kepler._compat.uvicorn
    allowed_kepler = {
        "kepler.errors",
        "kepler.runtimes",
        "kepler.runtimes.inputs",
        "kepler.runtimes.manifest",
        "kepler.runtimes.predictor",
        "kepler._compat.bentoml",
        "kepler._compat.uvicorn",
        "kepler.deployment.service",
        "kepler.deployment.recording",
    }
    folder = Path(kepler.deployment.__file__).parent
    offenders = []
    # The service's shims of BentoML's and uvicorn's private API ship with it (kepler/_compat/).
    for name in (
        "service.py",
        "entry_service.py",
        "recording.py",
        "__init__.py",
        "../_compat/bentoml.py",
        "../_compat/uvicorn.py",
    ):
        for node in ast.walk(ast.parse((folder / name).read_text(encoding="utf-8"))):
            modules = []
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                modules = [node.module]
            for module in modules:
                root = module.split(".")[0]
                if module.startswith("kepler"):
                    if module not in allowed_kepler:
                        offenders.append(f"{name}: {module}")
                elif root not in allowed_roots:
                    offenders.append(f"{name}: {module}")
    assert offenders == []


def test_service_refuses_to_start_without_a_model() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEPLER_")}
    done = subprocess.run(
        [sys.executable, "-P", "-c", "import kepler.deployment.entry_service"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode != 0 and "has no model" in done.stderr and "kepler serve" in done.stderr
