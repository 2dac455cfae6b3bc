"""A profile's ``backends``: which backends its artifacts may hold and serve with, checked when it is read."""

from __future__ import annotations

from pathlib import Path

import pytest

from kepler.targets import ProfileError, load_profile, profile_from_dict, read_profile_file
from kepler.targets.profile import BACKENDS

PROFILE = """\
name = "plant-server"
threads = 1
memory_mb = 512
latency_p99_ms = 50.0
size_mb = 20
batch_sizes = [1, 500]
artifact_format = "onnx"
passes = ["prune_unused", "embed_metadata"]
"""


def _read(tmp_path: Path, backends: str | None) -> object:
    path = tmp_path / "plant-server.toml"
    path.write_text(PROFILE + (f"backends = {backends}\n" if backends is not None else ""), encoding="utf-8")
    return read_profile_file(path)


def test_the_shipped_profiles_allow_what_their_targets_can_run() -> None:
    assert load_profile("edge").backends == ("onnxruntime",)
    assert load_profile("cloud").backends == ("onnxruntime", "c-trees")
    assert set(BACKENDS) == {"onnxruntime", "c-trees"}


def test_a_profile_without_backends_gets_onnx_only(tmp_path) -> None:
    assert _read(tmp_path, None).backends == ("onnxruntime",)  # type: ignore[attr-defined]


def test_backends_are_read_in_order_once_each(tmp_path) -> None:
    profile = _read(tmp_path, '["c-trees", "onnxruntime", "c-trees"]')
    assert profile.backends == ("c-trees", "onnxruntime")  # type: ignore[attr-defined]


def test_an_unknown_backend_is_refused_naming_the_known_ones(tmp_path) -> None:
    with pytest.raises(ProfileError) as refused:
        _read(tmp_path, '["onnxruntime", "tl2cgen"]')
    message = str(refused.value)
    assert "\n" not in message
    assert "plant-server.toml" in message and "'backends'" in message
    assert "unknown backend 'tl2cgen' (known: onnxruntime, c-trees)" in message


def test_backends_must_include_onnxruntime(tmp_path) -> None:
    with pytest.raises(ProfileError, match="must include 'onnxruntime': every artifact holds its ONNX graph"):
        _read(tmp_path, '["c-trees"]')


@pytest.mark.parametrize("value", ['"c-trees"', "[]", '["onnxruntime", ""]', "[1]"])
def test_backends_must_be_a_list_of_names(value: str, tmp_path) -> None:
    with pytest.raises(ProfileError, match="field 'backends'"):
        _read(tmp_path, value)


def test_backends_round_trip_through_to_dict() -> None:
    for name in ("cloud", "edge"):
        profile = load_profile(name)
        data = profile.to_dict()
        source = data.pop("source")
        assert profile_from_dict(data, source) == profile
    # The default is left out of the record, so a record reads as it did before profiles named backends.
    assert "backends" not in load_profile("edge").to_dict()
    assert load_profile("cloud").to_dict()["backends"] == ["onnxruntime", "c-trees"]
