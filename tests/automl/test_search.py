"""The search end to end on a slice of the example data: presets, environments, budgets, reports."""

from __future__ import annotations

import pytest

import kepler as kp
from kepler.automl.search import Trial, pareto_front
from kepler.errors import BudgetError, DataError
from kepler.runtimes.benchmark import time_calls

BUDGET = 4  # seconds per search: enough for a handful of trials on 1,500 rows


@pytest.mark.parametrize("environment", ["edge", "cloud"])
def test_default_search_returns_a_compliant_compiled_model(sensors, environment, tmp_path) -> None:
    result = kp.automl.automl_pipeline(
        sensors, "failure", optimization_time=BUDGET, environment=environment, output=tmp_path / "artifact"
    )
    assert result["deployment_ready"] is True
    assert result["best_algorithm"] in result["families"]
    assert result["metric"] == "roc_auc" and 0.5 < result["test_metrics"]["score"] <= 1.0
    assert all(row["ok"] for row in result["constraint_report"])
    assert {row["budget"] for row in result["constraint_report"]} == {
        "latency_p99_ms",
        "size_mb",
        "memory_mb",
    }
    assert result["trials"] and set(result["pareto_front"]) <= {t["number"] for t in result["trials"]}
    assert result.artifact.path == tmp_path / "artifact"
    # The reference profile holds the calibration table of the held-out test rows (label-free estimates).
    reference = kp.monitoring.artifact_reference(tmp_path / "artifact")
    assert reference.calibration is not None and reference.calibration["rows"] == result["test_rows"]
    assert reference.calibration["positive"] == result["positive_class"] == 1
    # The budgets hold when re-measured independently on the target's settings.
    predictor = kp.runtimes.load(tmp_path / "artifact", target=environment)
    one = predictor.fastest_form(sensors.frame.head(1))
    p99 = time_calls(lambda: predictor.predict_proba(one), min_iters=300, min_time_s=0.2)["p99_ms"]
    profile = kp.targets.load_profile(environment)
    assert p99 <= profile.latency_p99_ms
    assert predictor.artifact.size_bytes / 2**20 <= profile.size_mb
    # The search and the final build are timed apart (speed goals live in benchmarks/budget_under_load.py).
    assert result["search_seconds"] > 0 and result["final_seconds"] > 0
    assert result["total_seconds"] >= result["search_seconds"] + result["final_seconds"]
    assert result["search_isolation"] == "process" and isinstance(result["search_stopped"], bool)
    memory = next(row for row in result["constraint_report"] if row["budget"] == "memory_mb")
    assert memory["measured"] == result.artifact.benchmark.process_peak_rss_mb
    assert memory["measure"].startswith("peak RSS of a fresh process")


@pytest.mark.parametrize("use_case", ["predictive_maintenance", "quality_control", "anomaly_detection"])
def test_each_preset(sensors, use_case, artifact_dir) -> None:
    result = kp.automl.industrial_automl(
        sensors,
        target="failure",
        use_case=use_case,
        production_environment="edge",
        optimization_time=BUDGET,
        output=artifact_dir,
    )
    preset = kp.automl.load_preset(use_case)
    assert result["use_case"] == use_case and result["metric"] == preset.metric
    assert set(result["families"]) <= set(preset.families)
    assert {t["family"] for t in result["trials"]} <= set(preset.families)
    assert result["deployment_ready"] is True
    for name, limit in preset.budgets().items():
        assert result["budgets"][name]["limit"] <= limit
    if use_case == "anomaly_detection":
        assert "false_positive_rate" in result["test_metrics"]


def test_interpretability_narrows_the_families(sensors, artifact_dir) -> None:
    result = kp.automl.automl_pipeline(
        sensors, "failure", optimization_time=BUDGET, interpretability_required=True, output=artifact_dir
    )
    assert set(result["families"]) == {"logistic_regression", "decision_tree", "small_boosting"}
    depths = [t["config"].get("max_depth") for t in result["trials"] if t["family"] == "decision_tree"]
    assert all(d is None or d <= 4 for d in depths)


def test_impossible_budget_fails_with_the_closest_candidates(sensors, tmp_path) -> None:
    with pytest.raises(BudgetError) as caught:
        kp.automl.automl_pipeline(
            sensors,
            "failure",
            optimization_time=3,
            constraints={"latency_p99_ms": 0.001},
            output=tmp_path / "artifact",
        )
    report = caught.value.report
    assert report["budgets"]["latency_p99_ms"] == {"limit": 0.001, "source": "constraints"}
    assert report["closest"] and all("latency_p99_ms" in c["broken"] for c in report["closest"])
    assert all(c["broken"]["latency_p99_ms"]["over_by"] > 1 for c in report["closest"])
    assert "no candidate fits the budgets" in str(caught.value)
    assert not (tmp_path / "artifact").exists()


def test_result_reads_as_the_guides_dict(sensors, artifact_dir) -> None:
    result = kp.automl.automl_pipeline(sensors, "failure", optimization_time=3, output=artifact_dir)
    assert result["best_algorithm"] == result.best_algorithm
    assert isinstance(result["deployment_ready"], bool)
    assert set(result.to_dict()) >= {
        "best_config",
        "test_metrics",
        "constraint_report",
        "trials",
        "pareto_front",
    }


def test_use_case_needs_a_matching_label(sensors_csv) -> None:
    import pandas as pd

    frame = pd.read_csv(sensors_csv)
    with pytest.raises(DataError, match="needs a classification label"):
        kp.automl.industrial_automl(
            frame, target="torque_nm", use_case="predictive_maintenance", optimization_time=2
        )


def test_pareto_front_keeps_only_undominated_trials() -> None:
    def trial(n, score, p99, size):
        return Trial(
            number=n,
            family="x",
            config={},
            val_score=score,
            p99_ms=p99,
            p50_ms=p99,
            size_mb=size,
            elapsed_s=0.0,
        )

    trials = [
        trial(1, 0.9, 1.0, 1.0),
        trial(2, 0.8, 2.0, 2.0),
        trial(3, 0.95, 3.0, 1.0),
        trial(4, 0.7, 0.5, 5.0),
    ]
    assert [t.number for t in pareto_front(trials)] == [3, 1, 4]
