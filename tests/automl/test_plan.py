"""The time plan: the final step's reserve grows with the columns, wide tables validate on a holdout and benchmark
smaller batches, and a budget above 24 h needs force."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import kepler as kp
from kepler.automl.plan import (
    BENCH_MAX_CELLS,
    MAX_TIME_BUDGET_S,
    MIN_SEARCH_SHARE,
    STOP_AT,
    check_time_budget,
    final_estimate,
    plan,
)
from kepler.errors import ProfileError
from kepler.targets import load_profile


def _label(rows: int) -> pd.Series:
    return pd.Series(np.arange(rows) % 2)


def test_a_narrow_table_searches_most_of_the_budget_with_five_folds() -> None:
    edge = load_profile("edge")
    narrow = plan(60, 0.3, 3.0, _label(1200), 8, "classification", edge)
    assert narrow.evaluation == {"eval_method": "cv", "n_splits": 5}
    assert narrow.batch_sizes == tuple(edge.batch_sizes) and not narrow.notes
    assert narrow.search_s == pytest.approx((60 - 0.3 - final_estimate(1200, 8)) / STOP_AT)
    assert narrow.to_dict()["imports_s"] == 3.0  # reported, outside the budget


def test_the_wide_table_of_the_issue_reserves_its_final_step_and_benchmarks_small_batches() -> None:
    edge = load_profile("edge")
    # 2,000 columns × 200 rows on a 10 s budget: before, 83 s, then a failure on memory (a 10,000-row batch of
    # 2,000 columns made the build's process peak at 1.6 GB; benchmarks/wide_table.py measures the goal).
    wide = plan(10, 1.6, 2.0, _label(160), 2000, "classification", edge)
    assert wide.final_s > final_estimate(160, 10) + 1.0  # the converter's cost grows with the columns squared
    assert wide.search_s == pytest.approx((10 - 1.6 - wide.final_s) / STOP_AT)
    assert wide.evaluation == {"eval_method": "holdout", "split_ratio": 0.2}
    assert wide.batch_sizes == (1, 100) and all(b * 2000 <= BENCH_MAX_CELLS for b in wide.batch_sizes)
    assert any("holdout instead of 5-fold" in n for n in wide.notes)
    assert any("benchmark batches of 10000 rows left out" in n for n in wide.notes)


def test_a_budget_too_small_for_the_table_keeps_a_quarter_for_the_search_and_says_so() -> None:
    tight = plan(4, 3.0, 2.0, _label(160), 4000, "classification", load_profile("edge"))
    assert tight.search_s == pytest.approx(4 * MIN_SEARCH_SHARE)
    assert any(n.startswith("the table needs about") and n.endswith("give it more time") for n in tight.notes)


def test_time_budget_maximum() -> None:
    assert check_time_budget(MAX_TIME_BUDGET_S) == MAX_TIME_BUDGET_S
    with pytest.raises(
        ProfileError,
        match=r"^time budget 99999 h is above the maximum of 24 h; give a shorter one, "
        r"or pass --force \(force=True\) to search that long$",
    ):
        check_time_budget(99999 * 3600.0)
    assert check_time_budget(99999 * 3600.0, force=True) == 99999 * 3600.0


def test_the_search_reports_its_plan(sensors, tmp_path) -> None:
    result = kp.automl.automl_pipeline(
        sensors,
        "failure",
        optimization_time=3,
        output=tmp_path / "artifact",
        constraints={"families": ["decision_tree"]},
    )
    planned = result["plan"]
    assert planned["budget_s"] == 3 and 0 < planned["search_s"] <= 3 and planned["final_s"] > 0
    assert planned["evaluation"] == {"eval_method": "cv", "n_splits": 5} and planned["batch_sizes"] == [
        1,
        100,
        10000,
    ]
    assert result.artifact.manifest.target.batch_sizes == (1, 100, 10000)
