"""Estimator families: each task's search and result name the model it holds."""

from __future__ import annotations

from pathlib import Path

from sklearn.linear_model import LogisticRegression, Ridge

import kepler as kp
from kepler.automl.families import ALL_FAMILIES, CLASSIFICATION, REGRESSION, searchable
from kepler.automl.presets import load_preset


def names(families) -> list[str]:
    return [f.name for f in families]


def test_the_linear_family_is_named_for_its_task() -> None:
    regression = names(searchable(ALL_FAMILIES, REGRESSION, interpretable=False))
    classification = names(searchable(ALL_FAMILIES, CLASSIFICATION, interpretable=False))
    assert "ridge" in regression and "logistic_regression" not in regression
    assert "logistic_regression" in classification and "ridge" not in classification
    (ridge,) = searchable(["ridge"], REGRESSION, interpretable=True)
    assert isinstance(ridge.build({"C": 2.0}, REGRESSION, 0), Ridge)
    (logistic,) = searchable(["logistic_regression"], CLASSIFICATION, interpretable=True)
    assert isinstance(logistic.build({"C": 2.0}, CLASSIFICATION, 0), LogisticRegression)


def test_a_list_written_for_one_task_keeps_its_linear_model_on_the_other() -> None:
    quality = load_preset("quality_control").families
    assert "logistic_regression" in quality
    assert names(searchable(quality, REGRESSION, interpretable=True)) == [
        "ridge",
        "decision_tree",
        "small_boosting",
    ]
    assert names(searchable(["ridge", "logistic_regression"], CLASSIFICATION, interpretable=False)) == [
        "logistic_regression"
    ]


def test_a_regression_search_reports_a_regression_model(sensors_csv: Path, artifact_dir: Path) -> None:
    result = kp.automl.automl_pipeline(
        sensors_csv,
        "torque_nm",
        optimization_time=2,
        constraints={"families": ["logistic_regression"]},
        output=artifact_dir,
    )
    assert result["families"] == ["ridge"]
    assert result["best_algorithm"] == "ridge" and result["best_estimator"] == "Ridge"
    assert {t["family"] for t in result["trials"]} == {"ridge"}
