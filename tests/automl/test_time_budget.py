"""Time budgets hold: native thread pools are held to the profile's threads, and a trial still running at the
deadline is stopped with the search."""

from __future__ import annotations

import json
import time

import pytest

import kepler as kp
from kepler.automl import budgets
from kepler.automl.families import CLASSIFICATION
from kepler.automl.search import STOP_AT, SearchSpec, can_isolate, run_search
from kepler.errors import BudgetError
from kepler.targets import load_profile

pytestmark = pytest.mark.skipif(
    not can_isolate(), reason="searches are stopped at the deadline only on Linux"
)

NEVER = 600  # seconds a slow trial would take: far beyond any budget here and the test's own timeout


def spec_for(sensors, family_names: list[str], target: str, seconds: float) -> SearchSpec:
    from kepler.automl.families import FAMILIES

    profile = load_profile(target)
    return SearchSpec(
        task=CLASSIFICATION,
        metric="roc_auc",
        metric_options={},
        families=[FAMILIES.get(n) for n in family_names],
        profile=profile,
        budgets=budgets.merge_budgets(profile, {}, None, None),
        time_budget_s=seconds,
        seed=0,
        interpretable=False,
        positive=1,
    )


@pytest.fixture
def slow(test_family) -> str:
    """A family whose fit never ends within a test."""
    return test_family("test_slow", "SlowTree", lambda: time.sleep(NEVER))


def test_a_trial_still_running_at_the_deadline_is_stopped(sensors, slow) -> None:
    spec = spec_for(sensors, [slow], "edge", 1.5)
    run = run_search(
        sensors.frame, sensors.label, spec, list(sensors.numeric_columns), list(sensors.categorical_columns)
    )
    assert run.isolation == "process" and run.stopped is True
    assert run.trials == []  # the one trial never finished: it was stopped, not waited for
    assert STOP_AT * 1.5 <= run.seconds


def test_a_search_whose_first_trial_never_ends_says_so(sensors, slow) -> None:
    with pytest.raises(
        BudgetError,
        match=r"^no trial finished within the time budget of 1\.5 s; give the search "
        r"more time \(e\.g\. --time-budget 60s\)$",
    ):
        kp.automl.automl_pipeline(sensors, "failure", optimization_time=1.5, constraints={"families": [slow]})


@pytest.mark.parametrize("target", ["edge", "cloud"])
def test_native_pools_are_held_to_the_profile_threads_in_trials(
    sensors, test_family, tmp_path, target
) -> None:
    from threadpoolctl import threadpool_info

    seen = tmp_path / "pools.jsonl"

    def record() -> None:
        with seen.open("a") as handle:
            handle.write(json.dumps([(p["user_api"], p["num_threads"]) for p in threadpool_info()]) + "\n")

    name = test_family("test_pools", "PoolsTree", record)
    spec = spec_for(sensors, [name], target, 2)
    run_search(
        sensors.frame, sensors.label, spec, list(sensors.numeric_columns), list(sensors.categorical_columns)
    )
    fits = [json.loads(line) for line in seen.read_text().splitlines()]
    assert fits and all(fit for fit in fits)
    threads = spec.profile.resolved_threads
    for fit in fits:
        # BLAS at the profile's threads; OpenMP at one in the forked search (see can_isolate)
        assert {n for api, n in fit if api == "blas"} <= {threads}
        assert {n for api, n in fit if api == "openmp"} <= {1}
    assert any(api == "openmp" for fit in fits for api, _ in fit)  # scikit-learn's OpenMP is loaded, and held
