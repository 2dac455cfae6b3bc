"""The manifest's ``backends`` record: the compiled backends an artifact holds, their figures and which serves
which batch sizes; read back as written, and refused in one line when it names what the artifact lacks."""

from __future__ import annotations

from typing import Any

import pytest

from kepler.errors import ArtifactError
from kepler.runtimes.manifest import Backends, CompiledBackend, Parity
from kepler.targets import ParityTolerance

FINISH = {
    "op": "TreeEnsembleClassifier",
    "input": "numeric_features",
    "outputs": ["label", "probabilities"],
    "n_features": 6,
    "input_dtype": "float32",
    "n_outputs": 1,
    "post_transform": "LOGISTIC",
    "base_values": [0.25],
    "classes": ["fail", "ok"],
    "binary": True,
}


def _compiled(**changes: Any) -> CompiledBackend:
    fields: dict[str, Any] = {
        "name": "c-trees",
        "library": "trees.so",
        "sha256": "a" * 64,
        "size_bytes": 32352,
        "machine": "x86_64",
        "isa": "x86-64-v3",
        "cpu_flags": ("avx", "avx2"),
        "compiler": "cc (Debian 12.2.0-14) 12.2.0",
        "finish": FINISH,
        "prefix": "trees-prefix.onnx",
        "prefix_sha256": "b" * 64,
        "parity": Parity(
            rows=400,
            passed=True,
            bit_exact=False,
            max_abs_diff=1e-7,
            max_rel_diff=2e-7,
            rows_out_of_tolerance=0,
            label_agreement=1.0,
            tolerance=ParityTolerance(atol=1e-4, rtol=1e-3, min_label_agreement=1.0),
        ),
    }
    fields.update(changes)
    return CompiledBackend(**fields)


PLAN = Backends(
    compiled=(_compiled(),),
    skipped={"tl2cgen": "not installed"},
    timings_ms={"onnxruntime": {"1": 0.01, "10000": 11.7}, "c-trees": {"1": 0.02, "10000": 3.3}},
    choice=((1, "onnxruntime"), (100, "c-trees")),
)


def test_the_record_reads_back_as_written() -> None:
    assert Backends.from_dict(PLAN.to_dict()) == PLAN
    bare = Backends(compiled=(_compiled(prefix=None, prefix_sha256=None, parity=None),))
    assert Backends.from_dict(bare.to_dict()) == bare
    assert bare.choice == ((1, "onnxruntime"),)


def test_a_backends_files_are_its_library_and_its_prefix() -> None:
    assert _compiled().files() == {"trees.so": "a" * 64, "trees-prefix.onnx": "b" * 64}
    assert _compiled(prefix=None, prefix_sha256=None).files() == {"trees.so": "a" * 64}


def test_the_choice_names_a_backend_for_every_row_count() -> None:
    assert [PLAN.backend_for(rows) for rows in (0, 1, 99, 100, 10**7)] == [
        "onnxruntime",
        "onnxruntime",
        "onnxruntime",
        "c-trees",
        "c-trees",
    ]
    assert PLAN.compiled_backend("c-trees") == PLAN.compiled[0]
    assert PLAN.compiled_backend("tl2cgen") is None


@pytest.mark.parametrize(
    "choice",
    [
        [],
        [{"from_rows": 100, "backend": "onnxruntime"}],
        [{"from_rows": 1, "backend": "tl2cgen"}],
        [{"from_rows": 1, "backend": "onnxruntime"}, {"from_rows": 100, "backend": "tl2cgen"}],
    ],
)
def test_a_choice_not_from_one_row_or_naming_a_backend_not_held_is_refused(choice: list[Any]) -> None:
    data = {**PLAN.to_dict(), "choice": choice}
    with pytest.raises(ArtifactError) as refused:
        Backends.from_dict(data)
    message = str(refused.value)
    assert "\n" not in message and "field 'backends.choice'" in message
    assert "must start from 1 row and name only c-trees, onnxruntime" in message


def test_a_choice_naming_a_compiled_backend_needs_its_record() -> None:
    data = {**PLAN.to_dict(), "compiled": []}
    with pytest.raises(ArtifactError, match="name only onnxruntime"):
        Backends.from_dict(data)


@pytest.mark.parametrize("name", ["../trees.so", "lib/trees.so", "", ".."])
def test_a_library_outside_the_artifact_folder_is_refused(name: str) -> None:
    data = PLAN.to_dict()
    data["compiled"][0]["library"] = name
    with pytest.raises(ArtifactError, match="must be a file name"):
        Backends.from_dict(data)
