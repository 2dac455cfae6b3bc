"""Pure rules of packaging and serving: tag names, lineage labels, batching from the profile, service settings."""

from __future__ import annotations

import importlib
import re

import pytest

from kepler.deploy.package import batching_settings, model_labels, tag_name
from kepler.errors import KeplerError

TAG = re.compile(r"[a-z0-9]([a-z0-9_.-]*[a-z0-9])?")
EDGE = {"target": {"latency_p99_ms": 50.0, "batch_sizes": [1, 100, 10000]}}


@pytest.mark.parametrize("release", ["stable-v1.0", "Stable-V1.0", "pm@2026.11", "x" * 128, "a_b.c-d"])
def test_tag_names_are_valid_bentoml_tags(release: str) -> None:
    name = tag_name(release)
    assert TAG.fullmatch(name) and len(name) <= 63 and name.startswith("kepler-")


def test_lossy_tag_names_keep_releases_apart() -> None:
    assert tag_name("stable-v1.0") == "kepler-stable-v1.0"
    assert tag_name("Stable-V1.0") != tag_name("stable-v1.0")
    assert tag_name("a@b") != tag_name("a-b")


def test_labels_are_text() -> None:
    labels = model_labels({"release": "r", "version": "1.0.0", "data_md5": "abc", "mlflow_run_id": None,
                           "artifact_sha256": "f" * 64})
    assert labels == {"kepler.release": "r", "kepler.version": "1.0.0", "kepler.data-md5": "abc",
                      "kepler.artifact-sha256": "f" * 64}


def test_batching_comes_from_the_profile() -> None:
    assert batching_settings(EDGE, None) == {"batching": False}
    assert batching_settings(EDGE, True) == {"batching": True, "max_batch_size": 100, "max_latency_ms": 50}
    assert batching_settings(EDGE, {"max_latency_ms": 120})["max_latency_ms"] == 120
    with pytest.raises(KeplerError, match="unknown batching option"):
        batching_settings(EDGE, {"latency": 5})
    with pytest.raises(KeplerError, match="batching must be"):
        batching_settings(EDGE, "fast")


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_service_settings_environment_over_bento_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEPLER_MODEL_TAG", "kepler-unit:1")
    service = importlib.import_module("kepler.deploy.service")
    arguments = {"model_tag": "kepler-r:abc", "release": "r", "workers": 2, "batching": False}
    values = service.settings(arguments, {"KEPLER_WORKERS": "3", "KEPLER_BATCHING": "on", "KEPLER_MODEL_TAG": "x:y"})
    assert values["model_tag"] == "kepler-r:abc" and values["release"] == "r"  # identity: the bento's
    assert values["workers"] == 3 and values["batching"] is True  # tuning: the environment's
    assert service.settings({}, {"KEPLER_MODEL_TAG": "m:1"})["release"] == "m:1"
    with pytest.raises(KeplerError, match="has no model"):
        service.settings({}, {})
    with pytest.raises(KeplerError, match="whole number"):
        service.settings(arguments, {"KEPLER_MAX_BODY_BYTES": "lots"})

