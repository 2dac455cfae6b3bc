"""The Predictor's backends: each call goes to the backend the artifact chose for its row count, and a compiled
library that cannot run here leaves its calls to the ONNX graph, saying why.

The artifacts are compiled once with the C compiler (a subprocess), so the module is integration. Each test
works on a copy whose manifest it edits: the choice the compile measured depends on this machine's load, so a
test that needs the compiled backend in the choice writes that choice itself.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from xgboost import XGBClassifier

import kepler as kp
from kepler.compilers.backends.build import LIBRARY_NAME
from kepler.errors import ArtifactError
from kepler.runtimes.artifact import MANIFEST_NAME, read_artifact, sha256_file
from kepler.runtimes.compiled_trees import BackendUnavailable
from kepler.runtimes.predictor import Predictor
from kepler.targets import load_profile, profile_from_dict

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore::UserWarning")]

FEATURES = 6
# onnxruntime up to 99 rows, the compiled kernel from 100.
CHOICE = [{"from_rows": 1, "backend": "onnxruntime"}, {"from_rows": 100, "backend": "c-trees"}]
NO_SUCH_FLAG = "kepler_test_no_such_flag"


def _profile() -> Any:
    data = load_profile("cloud").to_dict()
    data.pop("source")
    data.update(name="cloud-test", batch_sizes=[1], threads=2)
    return profile_from_dict(data, "test profile")


PROFILE = _profile()


def _rows(count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rows = rng.normal(size=(count, FEATURES))
    rows[rng.random(rows.shape) < 0.03] = np.nan
    return rows


TRAIN = _rows(800, seed=1)
SCORE = TRAIN[:, 0] + TRAIN[:, 1] - 0.5 * TRAIN[:, 2]
BIG = _rows(10000, seed=2)


def _compile(labels: np.ndarray, folder: Path) -> Path:
    model = XGBClassifier(n_estimators=12, max_depth=4).fit(TRAIN, labels)
    kp.compile(model, target=PROFILE, sample=TRAIN[:400], output=folder, benchmark=False)
    return folder


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> dict[str, Path]:
    """Two XGBoost classifiers over the same columns, compiled with the c-trees backend; the second answers
    the opposite question, so its library's answers are far from the first one's."""
    folder = tmp_path_factory.mktemp("sources")
    positive = (np.nan_to_num(SCORE) > 0).astype(np.int64)
    return {"first": _compile(positive, folder / "first"), "other": _compile(1 - positive, folder / "other")}


@pytest.fixture
def copy(source, tmp_path) -> Callable[..., Path]:
    """``copy(edit=None, name="first")``: a copy of a source artifact whose manifest ``edit(manifest)`` changed,
    with the compiled backend in its choice from 100 rows."""

    def make(edit: Callable[[dict[str, Any]], None] | None = None, name: str = "first") -> Path:
        target = tmp_path / f"copy-{len(list(tmp_path.iterdir()))}"
        shutil.copytree(source[name], target)
        manifest = json.loads((target / MANIFEST_NAME).read_text(encoding="utf-8"))
        manifest["backends"]["choice"] = CHOICE
        if edit is not None:
            edit(manifest)
        (target / MANIFEST_NAME).write_text(json.dumps(manifest), encoding="utf-8")
        return target

    return make


def _onnx(path: Path) -> Predictor:
    return Predictor(read_artifact(path), PROFILE, backend="onnxruntime")


def _assert_serves_like_onnx(predictor: Predictor, path: Path) -> None:
    graph = _onnx(path)
    for rows in (BIG[:1], BIG):
        np.testing.assert_allclose(
            predictor.predict_proba(rows), graph.predict_proba(rows), rtol=1e-6, atol=1e-6
        )
        np.testing.assert_array_equal(predictor.predict(rows), graph.predict(rows))


# --------------------------------------------------------------------------- the choice by batch size


def test_each_call_goes_to_the_backend_chosen_for_its_row_count(copy) -> None:
    path = copy()
    predictor = kp.runtimes.load(path)
    assert predictor.profile.backends == ("onnxruntime", "c-trees")  # the profile recorded at compile time
    assert [predictor.backend_for(rows) for rows in (1, 99, 100, 10000)] == [
        "onnxruntime",
        "onnxruntime",
        "c-trees",
        "c-trees",
    ]
    assert predictor.backend_notes == []
    assert predictor.backends == {"serving": CHOICE, "notes": []}
    _assert_serves_like_onnx(predictor, path)


def test_the_calls_routed_to_the_compiled_backend_run_its_library(copy, source) -> None:
    """With another model's library in its place (and its sha256 recorded), the calls of 100 rows and more
    answer that library's scores, the smaller ones the graph's: the route decides which code runs."""

    def swap(manifest: dict[str, Any]) -> None:
        manifest["backends"]["compiled"][0]["sha256"] = sha256_file(source["other"] / LIBRARY_NAME)

    path = copy(swap)
    shutil.copyfile(source["other"] / LIBRARY_NAME, path / LIBRARY_NAME)
    predictor = kp.runtimes.load(path)
    graph = _onnx(path)
    np.testing.assert_allclose(predictor.predict_proba(BIG[:99]), graph.predict_proba(BIG[:99]), atol=1e-6)
    routed = predictor.predict_proba(BIG[:100])
    assert np.abs(routed - graph.predict_proba(BIG[:100])).max() > 0.1
    # The service's batched path (a checked feed) is routed the same way.
    probabilities = str(predictor.manifest.output_schema.probabilities)
    np.testing.assert_array_equal(predictor.run_feed([probabilities], predictor.feed(BIG[:100]))[0], routed)
    np.testing.assert_array_equal(
        routed, Predictor(read_artifact(path), PROFILE, backend="c-trees").predict_proba(BIG[:100])
    )


def test_a_forced_backend_serves_every_call(copy) -> None:
    path = copy()
    for name in ("onnxruntime", "c-trees"):
        predictor = kp.runtimes.load(path, backend=name)
        assert {predictor.backend_for(rows) for rows in (1, 100, 10000)} == {name}
        _assert_serves_like_onnx(predictor, path)


def test_forcing_a_backend_the_artifact_does_not_hold_raises(copy) -> None:
    with pytest.raises(BackendUnavailable, match="holds no compiled backend 'tl2cgen'"):
        kp.runtimes.load(copy(), backend="tl2cgen")


def test_a_choice_naming_a_backend_the_artifact_does_not_hold_is_refused(copy) -> None:
    def unknown(manifest: dict[str, Any]) -> None:
        manifest["backends"]["choice"] = [{"from_rows": 1, "backend": "tl2cgen"}]

    with pytest.raises(ArtifactError) as refused:
        kp.runtimes.load(copy(unknown))
    assert "choice" in str(refused.value) and "\n" not in str(refused.value)


# --------------------------------------------------------------------------- falling back to ONNX


def _assert_falls_back(path: Path, caplog: pytest.LogCaptureFixture, *, why: str) -> Predictor:
    """The artifact loads, serves every call with onnxruntime, and its note and the logged warning say ``why``."""
    with caplog.at_level(logging.WARNING, logger="kepler.runtimes"):
        predictor = kp.runtimes.load(path)
    assert {predictor.backend_for(rows) for rows in (1, 100, 10000)} == {"onnxruntime"}
    assert len(predictor.backend_notes) == 1
    note = predictor.backend_notes[0]
    assert why in note and "'c-trees'" in note and note.endswith("serving those calls with onnxruntime")
    assert "\n" not in note
    assert predictor.backends["notes"] == [note]
    assert {route["backend"] for route in predictor.backends["serving"]} == {"onnxruntime"}
    warnings = [r for r in caplog.records if r.name == "kepler.runtimes" and r.levelno == logging.WARNING]
    assert [note in r.getMessage() for r in warnings] == [True]
    _assert_serves_like_onnx(predictor, path)
    with pytest.raises(BackendUnavailable, match=why.split(" (")[0]):
        kp.runtimes.load(path, backend="c-trees")
    return predictor


def test_a_library_needing_a_cpu_flag_this_machine_lacks_falls_back(copy, caplog) -> None:
    def needs_more(manifest: dict[str, Any]) -> None:
        manifest["backends"]["compiled"][0]["cpu_flags"].append(NO_SUCH_FLAG)

    _assert_falls_back(copy(needs_more), caplog, why=f"this CPU lacks {NO_SUCH_FLAG}")


def test_a_library_built_for_another_machine_falls_back(copy, caplog) -> None:
    def elsewhere(manifest: dict[str, Any]) -> None:
        manifest["backends"]["compiled"][0]["machine"] = "riscv64"

    _assert_falls_back(copy(elsewhere), caplog, why="it was built for riscv64")


def _other_machine(path: Path) -> bytes:
    """The library's bytes with its ELF header's e_machine (2 bytes, little-endian, at offset 18) set to another
    architecture: aarch64 (183), or x86-64 (62) on an aarch64 machine."""
    data = bytearray(path.read_bytes())
    assert data[:4] == b"\x7fELF" and data[5] == 1  # little-endian ELF
    current = int.from_bytes(data[18:20], "little")
    data[18:20] = (183 if current != 183 else 62).to_bytes(2, "little")
    return bytes(data)


def test_a_library_changed_after_the_compile_fails_the_integrity_check(copy) -> None:
    path = copy()
    (path / LIBRARY_NAME).write_bytes(_other_machine(path / LIBRARY_NAME))
    with pytest.raises(ArtifactError) as refused:
        kp.runtimes.load(path)
    message = str(refused.value)
    assert (
        LIBRARY_NAME in message and "c-trees backend's file was modified" in message and "\n" not in message
    )


def _record_library(path: Path) -> None:
    manifest = json.loads((path / MANIFEST_NAME).read_text(encoding="utf-8"))
    manifest["backends"]["compiled"][0]["sha256"] = sha256_file(path / LIBRARY_NAME)
    (path / MANIFEST_NAME).write_text(json.dumps(manifest), encoding="utf-8")


def test_a_library_of_another_architecture_falls_back(copy, caplog) -> None:
    """A library built for another architecture (its ELF header says aarch64), recorded as it is: the note names
    the architecture (the dynamic loader's own message would read as a missing file)."""
    path = copy()
    (path / LIBRARY_NAME).write_bytes(_other_machine(path / LIBRARY_NAME))
    _record_library(path)
    _assert_falls_back(path, caplog, why="its library is built for aarch64")


def test_a_library_the_loader_refuses_falls_back(copy, caplog) -> None:
    """A library the dynamic loader truly refuses (cut short after its ELF header), recorded as it is."""
    path = copy()
    (path / LIBRARY_NAME).write_bytes((path / LIBRARY_NAME).read_bytes()[:256])
    _record_library(path)
    _assert_falls_back(path, caplog, why="cannot load here")


def test_a_copy_without_the_library_falls_back(copy, caplog) -> None:
    path = copy()
    (path / LIBRARY_NAME).unlink()
    read_artifact(path)  # a copy without the compiled files is still a valid artifact
    _assert_falls_back(path, caplog, why=f"is not in this copy ({LIBRARY_NAME} missing)")


def test_a_target_that_does_not_allow_the_compiled_backend_serves_onnx_only(copy, caplog) -> None:
    path = copy()
    with caplog.at_level(logging.WARNING, logger="kepler.runtimes"):
        predictor = kp.runtimes.load(path, target="edge")
    assert predictor.profile.name == "edge"
    assert {predictor.backend_for(rows) for rows in (1, 100, 10000)} == {"onnxruntime"}
    assert predictor.backend_notes == [
        "target 'edge' does not allow backend 'c-trees'; serving those calls with onnxruntime"
    ]
    assert any("does not allow backend 'c-trees'" in r.getMessage() for r in caplog.records)
    np.testing.assert_allclose(
        predictor.predict_proba(BIG), _onnx(path).predict_proba(BIG), rtol=1e-6, atol=1e-6
    )
