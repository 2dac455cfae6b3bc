"""The service is configured by an explicit call: importing kepler.deployment.service changes nothing, each
``configure(settings)`` makes its own service, and only the bento's entry module configures at import."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from kepler.errors import KeplerError

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

# Run in a fresh interpreter: the state a first import could change is still untouched there. The libraries the
# service uses are imported first: what their own imports do (numpy adds warning filters) is not Kepler's.
PROGRAM = """
import gc, importlib, json, logging, os, sys, warnings
import kepler, bentoml, numpy, onnxruntime, uvicorn
from bentoml._internal.configuration.containers import BentoMLContainer
from bentoml._internal.server.http import traffic

def state():
    root = logging.getLogger()
    return {
        "environ": dict(os.environ),
        "uvicorn_config_init": id(uvicorn.Config.__init__),
        "bentoml_timeout_middleware": id(traffic.TimeoutMiddleware),
        "bento_arguments": repr(BentoMLContainer.bento_arguments.get()),
        "root_logger": [root.level, [id(h) for h in root.handlers]],
        "configured_loggers": sorted(
            (name, logger.level, len(logger.handlers), logger.propagate, logger.disabled)
            for name, logger in logging.Logger.manager.loggerDict.items()
            if isinstance(logger, logging.Logger)
            and (logger.level or logger.handlers or not logger.propagate or logger.disabled)
        ),
        "warnings_filters": len(warnings.filters),
        "gc_frozen": gc.get_freeze_count(),
        "sys_path": list(sys.path),
    }

def changed(before, after):
    return sorted(k for k in before if before[k] != after[k])

seen = {}
before = state()
service = importlib.import_module("kepler.deployment.service")
seen["first_import_changed"] = changed(before, state())
first_names = sorted(vars(service))
os.environ.update({"KEPLER_MODEL_TAG": "kepler-other:9", "KEPLER_RELEASE": "other", "KEPLER_WORKERS": "4"})
before = state()
service = importlib.reload(service)  # imported again, under other settings
seen["second_import_changed"] = changed(before, state())
seen["same_names"] = sorted(vars(service)) == first_names
seen["configured_names"] = sorted({"SETTINGS", "LOADED", "KeplerService"} & set(vars(service)))

before = state()
a = service.configure({"model_tag": "kepler-a:1", "release": "a", "workers": 2})
b = service.configure({"model_tag": "kepler-b:2", "release": "b", "batching": True, "max_batch_size": 8})
seen["configure_changed"] = changed(before, state())
seen["services"] = {
    name: {
        "workers": svc.config["workers"],
        "labels": svc.labels,
        "models": [str(m.tag) for m in svc.models],
        "batchable": svc.apis["predict"].batchable,
        "gate_release": svc.middlewares[0][1]["release"],
        "release": svc.inner.config["release"],
    }
    for name, svc in (("a", a), ("b", b))
}
seen["own_loaded"] = a.middlewares[0][1]["loaded"] is a.inner.loaded and a.inner.loaded is not b.inner.loaded

before = state()
service.install_server_fixes("a")
seen["install_changed"] = changed(before, state())

before = state()
entry = importlib.import_module("kepler.deployment.entry_service")
seen["entry_changed"] = changed(before, state())
seen["entry"] = {
    "workers": entry.KeplerService.config["workers"],
    "labels": entry.KeplerService.labels,
    "models": [str(m.tag) for m in entry.KeplerService.models],
}
print(json.dumps(seen))
"""


def test_importing_the_service_changes_nothing_and_configure_makes_independent_services() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEPLER_")}
    done = subprocess.run(
        [sys.executable, "-P", "-c", PROGRAM], capture_output=True, text=True, timeout=120, env=env
    )
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["first_import_changed"] == [] and seen["second_import_changed"] == []
    assert seen["same_names"] and seen["configured_names"] == []
    assert seen["configure_changed"] == []
    assert seen["services"] == {
        "a": {
            "workers": 2,
            "labels": {"kepler.release": "a"},
            "models": ["kepler-a:1"],
            "batchable": False,
            "gate_release": "a",
            "release": "a",
        },
        "b": {
            "workers": 1,
            "labels": {"kepler.release": "b"},
            "models": ["kepler-b:2"],
            "batchable": True,
            "gate_release": "b",
            "release": "b",
        },
    }
    assert seen["own_loaded"]
    # The snapshot sees what the server fixes patch, so the empty lists above are not blind.
    assert seen["install_changed"] == ["bentoml_timeout_middleware", "uvicorn_config_init"]
    # The entry module is the one place that configures at import: from the environment it was given.
    assert seen["entry"] == {
        "workers": 4,
        "labels": {"kepler.release": "other"},
        "models": ["kepler-other:9"],
    }


def test_configure_refuses_unknown_or_missing_settings() -> None:
    from kepler.deployment.service import configure

    with pytest.raises(KeplerError, match="unknown service setting.s. worker; use model_tag"):
        configure({"model_tag": "kepler-a:1", "worker": 2})
    with pytest.raises(KeplerError, match="has no model"):
        configure({"release": "a"})
    with pytest.raises(KeplerError, match="setting workers must be at least 1, got 0"):
        configure({"model_tag": "kepler-a:1", "workers": 0})


def test_configure_ignores_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings given to configure are the service's; KEPLER_<NAME> variables apply where the entry module reads
    them (settings())."""
    from kepler.deployment.service import configure

    monkeypatch.setenv("KEPLER_WORKERS", "7")
    monkeypatch.setenv("KEPLER_MODEL_TAG", "kepler-env:1")
    service = configure({"model_tag": "kepler-a:1"})
    assert service.config["workers"] == 1 and [str(m.tag) for m in service.models] == ["kepler-a:1"]
    assert service.inner.config["release"] == "kepler-a:1"
