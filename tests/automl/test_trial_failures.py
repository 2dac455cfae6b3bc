"""Why a search found nothing: trials that failed to compile are counted by reason, never taken for broken budgets."""

from __future__ import annotations

import re

import pytest

import kepler as kp
from kepler.automl import budgets
from kepler.automl.run import _no_candidate
from kepler.automl.search import SearchSpec, Trial, failure_summary, failure_text
from kepler.errors import BudgetError, CompileError, ParityError
from kepler.targets import load_profile

# Room for trials of both families on a busy machine (with 3 s, a loaded CI run saw only two trials, both of the
# unconvertible family).
BUDGET = 5
# A build's budget also covers reading the table and the final refit: room for both families' trials
# on a busy machine.
BUILD_BUDGET = 6


def test_when_every_trial_fails_to_compile_the_error_says_why(sensors, unconvertible) -> None:
    with pytest.raises(CompileError) as caught:
        kp.automl.automl_pipeline(
            sensors, "failure", optimization_time=BUDGET, constraints={"families": [unconvertible]}
        )
    message = str(caught.value)
    found = re.match(
        r"all (\d+) trials failed to compile: (\d+)× cannot compile \S*UnconvertibleTree: "
        r"no converter is registered for it",
        message,
    )
    assert found, message
    assert found.group(1) == found.group(2)  # one distinct reason, counted over every trial
    assert message.endswith(
        "; fix the cause named, or leave the families it names out of the search "
        "(constraint 'families'), then rerun"
    )
    assert not isinstance(caught.value, BudgetError) and "budget" not in message
    assert "\n" not in message


def test_failed_trials_are_listed_with_their_reasons_beside_the_ones_that_compiled(
    sensors, unconvertible, artifact_dir
) -> None:
    result = kp.automl.automl_pipeline(
        sensors,
        "failure",
        optimization_time=BUDGET,
        constraints={"families": [unconvertible, "decision_tree"]},
        output=artifact_dir,
    )
    assert result["best_algorithm"] == "decision_tree" and result["deployment_ready"] is True
    failed = [t for t in result["trials"] if t["family"] == unconvertible]
    assert failed, "FLAML tried the failing family at least once in its first round"
    assert all(t["error"].startswith("cannot compile") and t["compliant"] is False for t in failed)
    assert all(t["error"] is None for t in result["trials"] if t["family"] == "decision_tree")
    [summary] = result["failed_trials"]
    assert summary["count"] == len(failed) and summary["families"] == [unconvertible]
    assert summary["trials"] == [t["number"] for t in failed] and summary["reason"] == failed[0]["error"]


def test_broken_budgets_name_the_trials_that_failed_to_compile_too(sensors, unconvertible) -> None:
    with pytest.raises(BudgetError) as caught:
        kp.automl.automl_pipeline(
            sensors,
            "failure",
            optimization_time=BUDGET,
            constraints={"families": [unconvertible, "decision_tree"], "latency_p99_ms": 0.0001},
        )
    message = str(caught.value)
    assert message.startswith("no candidate fits the budgets (latency_p99_ms ≤ 0.0001 (constraints)")
    assert re.search(r"; \d+ of \d+ trials failed to compile: \d+× cannot compile", message)
    report = caught.value.report
    assert report["closest"] and all(c["family"] == "decision_tree" for c in report["closest"])
    assert report["failed_trials"][0]["families"] == [unconvertible]


def test_the_build_report_lists_failed_trials(sensors_csv, unconvertible, tmp_path) -> None:
    build = kp.build(
        sensors_csv,
        label="failure",
        time_budget=BUILD_BUDGET,
        output=tmp_path / "builds",
        track=False,
        constraints={"families": [unconvertible, "decision_tree"]},
    )
    assert build.report["failed_trials"][0]["families"] == [unconvertible]
    assert any(t["error"] for t in build.report["trials"])
    html = (build.path / "report.html").read_text()
    assert "Failed trials" in html and "UnconvertibleTree" in html


def _trial(number: int, error: str | None = None) -> Trial:
    return Trial(
        number=number,
        family="decision_tree",
        config={"max_depth": number},
        val_score=0.9,
        p99_ms=0.01,
        p50_ms=0.01,
        size_mb=0.01,
        elapsed_s=1.0,
        error=error,
    )


def _spec() -> SearchSpec:
    profile = load_profile("edge")
    return SearchSpec(
        task="classification",
        metric="roc_auc",
        metric_options={},
        families=[],
        profile=profile,
        budgets=budgets.merge_budgets(profile, {}, None, None),
        time_budget_s=10,
        seed=0,
        interpretable=False,
    )


def test_finals_that_all_fail_parity_raise_a_parity_error_not_a_budget_one() -> None:
    parity = ParityError(
        "parity check failed for DecisionTreeClassifier: label agreement 0.99 < 1", {"passed": False}
    )
    rejected = [
        {"trial": n, "family": "decision_tree", "reason": str(parity), "kind": "parity"} for n in (1, 2)
    ]
    error = _no_candidate([_trial(1), _trial(2), _trial(3, "cannot compile X")], _spec(), rejected, parity)
    assert isinstance(error, ParityError) and error.report == {"passed": False}
    assert str(error).startswith(
        "the 2 best candidates compiled but failed the parity check of the final build: "
        "trial 1 (decision_tree): parity check failed"
    )


def test_finals_that_fail_to_compile_and_break_budgets_stay_a_budget_error() -> None:
    rejected = [
        {"trial": 1, "family": "decision_tree", "reason": "pass 'x' failed", "kind": "compile"},
        {
            "trial": 2,
            "family": "decision_tree",
            "reason": "re-measured budgets broken: memory_mb 300 > 256",
            "kind": "budget",
        },
    ]
    error = _no_candidate([_trial(1), _trial(2)], _spec(), rejected, None)
    assert isinstance(error, BudgetError) and error.report["rejected_at_final_check"] == rejected
    only_compile = _no_candidate([_trial(1)], _spec(), rejected[:1], None)
    assert type(only_compile) is CompileError
    assert (
        str(only_compile)
        == "the best candidate failed the final build: trial 1 (decision_tree): pass 'x' failed"
    )


def test_failure_text_counts_each_reason_and_shortens_the_rest() -> None:
    trials = [_trial(n, "reason A") for n in range(1, 5)] + [_trial(5, "reason B " + "x" * 500)]
    trials += [_trial(n, f"reason {n}") for n in range(6, 9)]
    summary = failure_summary(trials)
    assert [(s["reason"][:8], s["count"]) for s in summary[:2]] == [("reason A", 4), ("reason B", 1)]
    text = failure_text(summary)
    assert text.startswith("4× reason A | 1× reason B xxx") and text.endswith(
        "| and 2 other reasons (2 trials)"
    )
    assert len(text) < 600
