"""Target profiles: the shipped defaults, user TOML files, and validation that names the file and field."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kepler.targets import (
    _PROFILES,  # the module's registry, restored by tests that add to it
    ParityTolerance,
    ProfileError,
    TargetProfile,
    list_profiles,
    load_profile,
    profile_from_dict,
    read_profile_file,
    register_profile,
)

VALID = """\
name = "plant-gateway"
description = "ARM gateway on the line"
threads = 2
memory_mb = 512
latency_p99_ms = 20.0
size_mb = 25
batch_sizes = [1, 32]
artifact_format = "onnx"
passes = ["prune_unused", "embed_metadata"]
graph_optimization = "basic"
allowed_estimators = ["forest", "boosting"]

[parity]
atol = 1e-5
rtol = 0.0
min_label_agreement = 0.99
"""


def _write(tmp_path: Path, text: str, name: str = "profile.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _replace(text: str, line_start: str, new_line: str | None) -> str:
    lines = text.splitlines()
    matches = [i for i, line in enumerate(lines) if line.startswith(line_start)]
    assert len(matches) == 1, line_start
    if new_line is None:
        del lines[matches[0]]
    else:
        lines[matches[0]] = new_line
    return "\n".join(lines) + "\n"


def test_edge_defaults_follow_the_industrial_guide():
    edge = load_profile("edge")
    assert edge.name == "edge"
    assert edge.threads == 1 and edge.resolved_threads == 1
    assert edge.latency_p99_ms == 50.0
    assert edge.size_mb == 10.0
    assert edge.batch_sizes.count(1) == 1
    assert edge.artifact_format == "onnx"
    assert edge.passes == ("ort_optimize", "prune_unused", "embed_metadata")
    assert edge.parity == ParityTolerance(atol=1e-4, rtol=1e-3, min_label_agreement=1.0)
    assert Path(edge.source).name == "edge.toml"


def test_cloud_defaults_use_all_cores():
    cloud = load_profile("cloud")
    assert cloud.threads == 0
    assert cloud.resolved_threads == (os.cpu_count() or 1)
    assert cloud.latency_p99_ms == 200.0
    assert cloud.size_mb > load_profile("edge").size_mb


def test_builtins_are_listed():
    assert {"edge", "cloud"} <= set(list_profiles())


def test_user_profile_by_path(tmp_path):
    path = _write(tmp_path, VALID)
    for target in (path, str(path)):
        profile = load_profile(target)
        assert profile.name == "plant-gateway"
        assert profile.threads == 2 and profile.memory_mb == 512.0
        assert profile.batch_sizes == (1, 32)
        assert profile.passes == ("prune_unused", "embed_metadata")
        assert profile.graph_optimization == "basic"
        assert profile.allowed_estimators == ("forest", "boosting")
        assert profile.parity == ParityTolerance(atol=1e-5, rtol=0.0, min_label_agreement=0.99)
        assert profile.source == str(path)


def test_a_profile_object_passes_through():
    edge = load_profile("edge")
    assert load_profile(edge) is edge


def test_optional_fields_default(tmp_path):
    text = VALID
    for key in (
        "description",
        "graph_optimization",
        "allowed_estimators",
        "[parity]",
        "atol",
        "rtol",
        "min_label_agreement",
    ):
        text = _replace(text, key, None)
    profile = load_profile(_write(tmp_path, text))
    assert profile.description == ""
    assert profile.graph_optimization == "all"
    assert profile.allowed_estimators == ()
    assert profile.parity == ParityTolerance()


def test_batch_sizes_are_sorted_and_deduplicated(tmp_path):
    profile = load_profile(
        _write(tmp_path, _replace(VALID, "batch_sizes", "batch_sizes = [100, 1, 100, 10]"))
    )
    assert profile.batch_sizes == (1, 10, 100)


def test_to_dict_round_trips_through_validation(tmp_path):
    profile = load_profile(_write(tmp_path, VALID))
    data = profile.to_dict()
    assert data["batch_sizes"] == [1, 32] and data["passes"] == ["prune_unused", "embed_metadata"]
    source = data.pop("source")
    assert profile_from_dict(data, source) == profile


@pytest.mark.parametrize(
    "edit, field",
    [
        (("threads", "threads = 2\nturbo = true"), "turbo"),
        (("[parity]", "[parity]\nepsilon = 1"), "parity.epsilon"),
        (("name", None), "name"),
        (("threads", None), "threads"),
        (("passes", None), "passes"),
        (("batch_sizes", None), "batch_sizes"),
        (("latency_p99_ms", "latency_p99_ms = -5.0"), "latency_p99_ms"),
        (("latency_p99_ms", "latency_p99_ms = 0"), "latency_p99_ms"),
        (("size_mb", "size_mb = -1"), "size_mb"),
        (("memory_mb", 'memory_mb = "lots"'), "memory_mb"),
        (("memory_mb", "memory_mb = nan"), "memory_mb"),
        (("memory_mb", "memory_mb = true"), "memory_mb"),
        (("threads", "threads = -1"), "threads"),
        (("threads", "threads = 1.5"), "threads"),
        (("artifact_format", 'artifact_format = "tflite"'), "artifact_format"),
        (("batch_sizes", "batch_sizes = [10, 100]"), "batch_sizes"),
        (("batch_sizes", "batch_sizes = []"), "batch_sizes"),
        (("batch_sizes", "batch_sizes = [1, 0]"), "batch_sizes"),
        (("batch_sizes", "batch_sizes = [1, true]"), "batch_sizes"),
        (("passes", 'passes = "prune_unused"'), "passes"),
        (("passes", 'passes = ["prune_unused", ""]'), "passes"),
        (("graph_optimization", 'graph_optimization = "max"'), "graph_optimization"),
        (("allowed_estimators", "allowed_estimators = [1]"), "allowed_estimators"),
        (("name", 'name = "  "'), "name"),
        (("description", "description = 3"), "description"),
        (("atol", "atol = -1e-5"), "parity.atol"),
        (("min_label_agreement", "min_label_agreement = 1.5"), "parity.min_label_agreement"),
    ],
    ids=lambda value: value if isinstance(value, str) else value[0],
)
def test_invalid_profiles_name_the_file_and_the_field(edit, field, tmp_path):
    path = _write(tmp_path, _replace(VALID, *edit), name="broken.toml")
    with pytest.raises(ProfileError) as caught:
        load_profile(path)
    message = str(caught.value)
    assert str(path) in message
    assert f"'{field}'" in message


def test_parity_must_be_a_table(tmp_path):
    text = VALID.split("[parity]")[0].replace("passes = [", "parity = 0.1\npasses = [")
    path = _write(tmp_path, text)
    with pytest.raises(ProfileError, match=r"field 'parity' must be a table"):
        load_profile(path)


def test_unknown_key_lists_known_fields(tmp_path):
    path = _write(tmp_path, VALID.replace("threads = 2", "threads = 2\ncores = 4"))
    with pytest.raises(ProfileError) as caught:
        load_profile(path)
    assert "'cores' is not a profile field" in str(caught.value)
    assert "latency_p99_ms" in str(caught.value)


def test_negative_budget_message_says_what_is_wrong(tmp_path):
    path = _write(tmp_path, _replace(VALID, "size_mb", "size_mb = -3"))
    with pytest.raises(ProfileError, match=r"field 'size_mb' must be > 0, got -3"):
        load_profile(path)


def test_batch_sizes_without_one_explains_why(tmp_path):
    path = _write(tmp_path, _replace(VALID, "batch_sizes", "batch_sizes = [8, 64]"))
    with pytest.raises(ProfileError, match=r"must include 1, where latency_p99_ms is measured"):
        load_profile(path)


def test_invalid_toml_names_the_file(tmp_path):
    path = _write(tmp_path, 'name = "edge\nthreads = 1\n', name="syntax.toml")
    with pytest.raises(ProfileError) as caught:
        load_profile(path)
    assert str(path) in str(caught.value) and "not valid TOML" in str(caught.value)


def test_missing_profile_file(tmp_path):
    with pytest.raises(ProfileError, match="no such profile file"):
        load_profile(tmp_path / "absent.toml")


def test_unreadable_profile_file(tmp_path):
    path = tmp_path / "binary.toml"
    path.write_bytes(b"\xff\xfe\x00name")
    with pytest.raises(ProfileError, match="cannot read the profile"):
        read_profile_file(path)


def test_unknown_target_name_lists_the_known_ones():
    with pytest.raises(ProfileError) as caught:
        load_profile("raspberry")
    message = str(caught.value)
    assert "'raspberry'" in message and "cloud" in message and "edge" in message and ".toml" in message


def test_register_profile_makes_a_name_and_refuses_duplicates(tmp_path, monkeypatch):
    from kepler.errors import RegistryError

    monkeypatch.setattr(_PROFILES, "_entries", dict(_PROFILES._entries))  # restored after the test
    path = _write(tmp_path, VALID)
    registered = register_profile(path)
    assert registered.name == "plant-gateway"
    assert "plant-gateway" in list_profiles()
    assert load_profile("plant-gateway") == registered
    with pytest.raises(RegistryError, match="plant-gateway"):
        register_profile(path)
    with pytest.raises(RegistryError, match="'edge' is already registered"):
        register_profile(_write(tmp_path, _replace(VALID, "name", 'name = "edge"'), name="edge2.toml"))


def test_profile_is_immutable():
    edge = load_profile("edge")
    with pytest.raises(AttributeError):
        edge.threads = 4  # type: ignore[misc]
    assert isinstance(edge, TargetProfile)


def test_profile_listing_an_unknown_pass_fails_compile_before_writing(industrial, tmp_path, monkeypatch):
    import tempfile

    from sklearn.linear_model import Ridge

    import kepler as kp

    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # where kp.compile would stage its files
    path = _write(
        tmp_path, _replace(VALID, "passes", 'passes = ["prune_unused", "quantize_int4"]'), name="bad.toml"
    )
    model = Ridge().fit(industrial.numeric_filled, industrial.wear)
    output = tmp_path / "artifact"

    with pytest.raises(ProfileError) as caught:
        kp.compile(model, target=path, sample=industrial.numeric_filled, output=output)

    message = str(caught.value)
    assert str(path) in message and "'passes'" in message and "quantize_int4" in message
    assert "ort_optimize" in message  # lists the known passes
    assert not output.exists()
    assert list(scratch.iterdir()) == []
