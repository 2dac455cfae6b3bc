"""Presets, constraint files, budget merging (the stricter wins) and durations."""

from __future__ import annotations

import json

import pytest

from kepler.automl import budgets, list_presets, load_preset
from kepler.errors import ProfileError
from kepler.targets import load_profile


def test_shipped_presets_match_the_issue_table() -> None:
    assert list_presets() == ["anomaly_detection", "predictive_maintenance", "quality_control"]
    maintenance = load_preset("predictive_maintenance")
    assert maintenance.metric == "f1" and maintenance.budgets() == {"latency_p99_ms": 100.0, "size_mb": 50.0}
    assert "logistic_regression" not in maintenance.families
    quality = load_preset("quality_control")
    assert quality.metric == "recall_at_precision" and quality.budgets() == {"latency_p99_ms": 50.0}
    assert set(quality.families) <= {"logistic_regression", "decision_tree", "small_boosting"}
    anomaly = load_preset("anomaly_detection")
    assert (
        anomaly.metric == "fpr_at_recall"
        and "isolation_forest" in anomaly.families
        and anomaly.budgets() == {}
    )


def test_stricter_budget_wins() -> None:
    edge, cloud = load_profile("edge"), load_profile("cloud")
    preset = load_preset("predictive_maintenance")
    on_edge = budgets.merge_budgets(edge, preset.budgets(), preset.name, None)
    assert on_edge["latency_p99_ms"] == {"limit": 50.0, "source": "target edge"}
    assert on_edge["size_mb"] == {"limit": 10.0, "source": "target edge"}
    on_cloud = budgets.merge_budgets(cloud, preset.budgets(), preset.name, None)
    assert on_cloud["latency_p99_ms"] == {"limit": 100.0, "source": "use case predictive_maintenance"}
    assert on_cloud["size_mb"] == {"limit": 50.0, "source": "use case predictive_maintenance"}
    tight = budgets.merge_budgets(cloud, preset.budgets(), preset.name, {"latency_p99_ms": 5})
    assert tight["latency_p99_ms"] == {"limit": 5.0, "source": "constraints"}


def test_check_reports_how_far_over() -> None:
    rows = budgets.check(
        {"latency_p99_ms": {"limit": 2.0, "source": "x"}, "size_mb": {"limit": 1.0, "source": "y"}},
        {"latency_p99_ms": 3.0, "size_mb": 0.5},
    )
    assert rows[0]["ok"] is False and rows[0]["over_by"] == pytest.approx(1.5)
    assert rows[1]["ok"] is True and rows[1]["over_by"] is None


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90), ("90s", 90), ("5m", 300), ("1h", 3600), ("1h30m", 5400), (12.5, 12.5)]
)
def test_durations(text, seconds) -> None:
    assert budgets.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "-5m", "0", "5x"])
def test_bad_durations(text) -> None:
    with pytest.raises(ProfileError, match="time budget"):
        budgets.parse_duration(text)


def test_constraints_file(tmp_path) -> None:
    good = tmp_path / "industrial.json"
    good.write_text(json.dumps({"latency_p99_ms": 20, "size_mb": 5, "families": ["xgboost"]}))
    assert budgets.read_constraints(good)["size_mb"] == 5
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"latency": 20}))
    with pytest.raises(ProfileError, match="'latency' is not a constraint"):
        budgets.read_constraints(bad)
    negative = tmp_path / "negative.json"
    negative.write_text(json.dumps({"size_mb": -1}))
    with pytest.raises(ProfileError, match="'size_mb' must be a number > 0"):
        budgets.read_constraints(negative)
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    with pytest.raises(ProfileError, match="not valid JSON"):
        budgets.read_constraints(broken)


def test_unknown_preset() -> None:
    with pytest.raises(ProfileError, match="unknown use case 'cooking'"):
        load_preset("cooking")


def test_bad_preset_file(tmp_path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(
        'name = "mine"\ntask = "classification"\nmetric = "f1"\nfamilies = ["xgboost"]\ncolour = "red"\n'
    )
    with pytest.raises(ProfileError, match="'colour' is not a preset field"):
        load_preset(path)
