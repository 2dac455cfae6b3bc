"""kp.automl.automl_pipeline and industrial_automl: search, choose the best compliant model, compile it."""

from __future__ import annotations

import dataclasses
import importlib
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kepler.automl import budgets as budget_mod
from kepler.automl.families import ALL_FAMILIES, CLASSIFICATION, FAMILIES, searchable
from kepler.automl.labels import LabelCodes, label_codes
from kepler.automl.metrics import METRICS
from kepler.automl.metrics import report as metric_report
from kepler.automl.pipelines import candidate
from kepler.automl.plan import check_time_budget
from kepler.automl.plan import plan as time_plan
from kepler.automl.presets import Preset, load_preset
from kepler.automl.result import AutoMLResult
from kepler.automl.search import (
    SearchSpec,
    Trial,
    closest_candidates,
    evaluate,
    failure_summary,
    failure_text,
    pareto_front,
    preload,
    run_search,
)
from kepler.automl.spark import SparkTrials
from kepler.automl.splits import TEST_SHARE, check_class_rows, split_test  # noqa: F401 (split_test: reproduce's)
from kepler.data.values import plain
from kepler.errors import BudgetError, CompileError, DataError, KeplerError, ParityError
from kepler.targets import TargetProfile, load_profile

FINAL_ATTEMPTS = 3


def _default_preset(task: str, n_classes: int) -> Preset:
    metric = "r2" if task != CLASSIFICATION else ("roc_auc" if n_classes == 2 else "accuracy")
    return Preset(
        name="default",
        description="Best score under the target's budgets.",
        task=task,
        metric=metric,
        families=ALL_FAMILIES,
    )


def _load(data: Any, target: str) -> Any:
    from kepler.data import Dataset, load

    return data if isinstance(data, Dataset) else load(data, label=target)


def _positive_class(label: Any, task: str) -> Any:
    if task != CLASSIFICATION:
        return None
    counts = label.value_counts()
    if len(counts) != 2:
        return None
    return plain(counts.idxmin())


def _constraints(constraints: Any) -> dict[str, Any]:
    if constraints is None:
        return {}
    if isinstance(constraints, (str, os.PathLike)):
        return budget_mod.read_constraints(constraints)
    if isinstance(constraints, dict):
        return budget_mod.check_constraints(constraints)
    raise KeplerError("constraints must be a dict or the path of a JSON file; see `kepler automl run --help`")


def _finalize(
    trials: list[Trial],
    spec: SearchSpec,
    x_rest: Any,
    y_rest: Any,
    numeric: list[str],
    categorical: list[str],
    output: Path | None,
    input_typing: dict[str, dict[str, str]],
    class_labels: list[Any] | None = None,
    batch_sizes: tuple[int, ...] | None = None,
) -> tuple[Any, Any, Trial, list[dict[str, Any]], list[dict]]:
    """Refits the best compliant trials on train+validation, compiles them and re-measures the budgets.

    A classifier fit on label codes compiles with ``class_labels`` (the graph answers the labels); the
    benchmark runs the ``batch_sizes`` of the time plan (the target's, capped for wide tables).
    """
    from sklearn.base import is_classifier
    from threadpoolctl import threadpool_limits

    from kepler.compilers import compile as compile_model

    profile = spec.profile
    if batch_sizes is not None and tuple(batch_sizes) != tuple(profile.batch_sizes):
        profile = dataclasses.replace(profile, batch_sizes=tuple(batch_sizes))
    rejected: list[dict[str, Any]] = []
    parity: ParityError | None = None
    ranked = sorted((t for t in trials if t.compliant), key=lambda t: (-t.val_score, t.p99_ms))
    for trial in ranked[:FINAL_ATTEMPTS]:
        family = FAMILIES.get(trial.family)
        model = candidate(family, trial.config, spec.task, spec.seed, numeric, categorical)
        with threadpool_limits(limits=spec.profile.resolved_threads):  # as in the trials: no oversubscription
            model.fit(x_rest, y_rest)
        # An outlier detector (IsolationForest) is fit without the label: there are no codes to restore.
        labels = class_labels if class_labels is not None and is_classifier(model.steps[-1][1]) else None
        try:
            artifact = compile_model(
                model, profile, x_rest, output=output, input_typing=input_typing, class_labels=labels
            )
        except CompileError as exc:  # parity, or a pass of the profile the trials do not run
            parity = exc if isinstance(exc, ParityError) else parity
            rejected.append(
                {
                    "trial": trial.number,
                    "family": trial.family,
                    "reason": str(exc),
                    "kind": "parity" if isinstance(exc, ParityError) else "compile",
                }
            )
            continue
        rows = budget_mod.check(spec.budgets, budget_mod.measured(artifact.benchmark))
        if all(r["ok"] for r in rows):
            return model, artifact, trial, rows, rejected
        rejected.append(
            {
                "trial": trial.number,
                "family": trial.family,
                "kind": "budget",
                "reason": "re-measured budgets broken: "
                + ", ".join(
                    f"{r['budget']} {_figure(r['measured'])} > {r['limit']:g}" for r in rows if not r["ok"]
                ),
            }
        )
    raise _no_candidate(trials, spec, rejected, parity)


def _figure(value: float | None) -> str:
    return "not measured" if value is None else f"{value:.3g}"


def _no_candidate(
    trials: list[Trial], spec: SearchSpec, rejected: list[dict[str, Any]], parity: ParityError | None
) -> KeplerError:
    """The error that says why no model came out of a search: time, compilation, parity, or budgets."""
    failures = failure_summary(trials)
    failed = sum(f["count"] for f in failures)
    if not trials:
        return BudgetError(
            f"no trial finished within the time budget of {spec.time_budget_s:g} s; give the search "
            f"more time (e.g. --time-budget {max(60, int(spec.time_budget_s * 4))}s)",
            {},
        )
    if failed == len(trials):
        return CompileError(
            f"all {len(trials)} trials failed to compile: {failure_text(failures)}; fix the cause named, or leave "
            f"the families it names out of the search (constraint 'families'), then rerun"
        )
    reasons = " | ".join(f"trial {r['trial']} ({r['family']}): {r['reason']}" for r in rejected)
    if rejected and all(r["kind"] != "budget" for r in rejected):
        best = f"the {len(rejected)} best candidates" if len(rejected) > 1 else "the best candidate"
        if parity is not None and all(r["kind"] == "parity" for r in rejected):
            return ParityError(
                f"{best} compiled but failed the parity check of the final build: {reasons}", parity.report
            )
        return CompileError(f"{best} failed the final build: {reasons}")
    failed_text = (
        f"; {failed} of {len(trials)} trials failed to compile: {failure_text(failures)}" if failed else ""
    )
    return BudgetError(
        f"no candidate fits the budgets ({_budget_text(spec.budgets)}) after {len(trials)} trials{failed_text}; "
        f"relax a budget, pick another target, or give the search more time",
        {
            "budgets": spec.budgets,
            "closest": closest_candidates(trials),
            "rejected_at_final_check": rejected,
            "trials": len(trials),
            "failed_trials": failures,
        },
    )


def _budget_text(budgets: dict[str, dict[str, Any]]) -> str:
    return ", ".join(f"{k} ≤ {v['limit']:g} ({v['source']})" for k, v in budgets.items())


def automl_pipeline(
    data: Any,
    target: str,
    optimization_time: str | float = "1h",
    interpretability_required: bool = False,
    environment: str | os.PathLike[str] | TargetProfile = "edge",
    constraints: Any = None,
    seed: int = 0,
    *,
    use_case: str | Preset | None = None,
    output: str | os.PathLike[str] | None = None,
    progress: Callable[[Trial, Trial | None, float], None] | None = None,
    force: bool = False,
    spark: SparkTrials | str | None = None,
) -> AutoMLResult:
    """Searches for the most accurate model that fits a target's budgets, measured on the compiled artifact.

    Args:
        data: A CSV/Parquet path, a DataFrame or a ``kp.data`` Dataset.
        target: The label column.
        optimization_time: Search time budget (``"90s"``, ``"5m"``, ``"1h"`` or seconds).
        interpretability_required: Search only linear models, shallow trees and small boosted models.
        environment: ``"edge"``, ``"cloud"``, a profile TOML path or a profile.
        constraints: Extra budgets (``latency_p99_ms``, ``size_mb``, ``memory_mb``), ``metric`` or
            ``families``, as a dict or a JSON file; the stricter budget wins.
        seed: Seed of the split, the search and the models.
        use_case: A preset name (``predictive_maintenance``, ``quality_control``, ``anomaly_detection``) or file.
        output: Folder for the chosen artifact; by default a temporary one.
        progress: Called after every trial with the trial, the best compliant trial and the elapsed seconds.
        force: Accept a time budget above the maximum of 24 h.
        spark: Run the trials on Spark: a master URL (``"local[2]"``, ``"spark://HOST:7077"``) or a
            :class:`~kepler.automl.spark.SparkTrials` (with its concurrent trials). Trial latencies then only
            guide the search: the driver's final re-measurement decides (the result's ``spark`` says so).
            Starting Spark, like the imports, is outside the time budget.

    The time budget covers the work on the table (reading it, the search, the final refit, compile and
    measurement), not the one-off library imports: the search gets what the time plan leaves it
    (:mod:`kepler.automl.plan`; the report's ``plan``).

    Classification labels are fit as codes 0..k-1 of the sorted labels by every family (XGBoost takes
    nothing else), and the compiled artifact answers the labels themselves. ``result.model``, the native
    Pipeline, predicts the codes: ``result.class_labels[code]`` is the label (``result.labels_of(codes)``).

    Returns:
        The result: best config, held-out test metrics of the compiled model, constraint report,
        trials, Pareto front, and the compiled artifact.

    Raises:
        DataError: bad data or label, or a class with too few rows for the test split and the folds.
        ProfileError: unknown target, preset or bad constraints; a time budget above 24 h without ``force``.
        BudgetError: compiled candidates broke the budgets (the error's report names the closest ones),
            or no trial finished within the time budget.
        CompileError: every trial failed to compile (the message counts each reason), or the best
            candidates failed the final build (ParityError when all failed the parity check).
    """
    trials_on = SparkTrials(spark) if isinstance(spark, str) else spark
    if trials_on is not None:
        trials_on.check()  # a wrong master or a missing pyspark fails here, within seconds, before any work
    started = time.perf_counter()
    importlib.import_module(
        "kepler.data"
    )  # pandas: a one-off import, outside the budget like the search's own
    imports_s = time.perf_counter() - started
    profile = load_profile(environment)
    extra = _constraints(constraints)
    time_budget_s = check_time_budget(budget_mod.parse_duration(optimization_time), force=force)
    dataset = _load(data, target)
    if dataset.label is None:
        raise DataError("the search needs a label column; pass target='<column>'")
    task = dataset.task
    n_classes = int(dataset.label.nunique())
    preset = load_preset(use_case) if use_case is not None else _default_preset(task, n_classes)
    if preset.task != task:
        raise DataError(
            f"use case {preset.name!r} needs a {preset.task} label, but {target!r} is a {task} label; "
            f"pick another use case or label"
        )
    metric = extra.get("metric", preset.metric)
    METRICS.get(metric)
    codes: LabelCodes | None = None
    if task == CLASSIFICATION:
        check_class_rows(dataset.label, target)
        codes = label_codes(dataset.label)
    positive = _positive_class(dataset.label, task)
    if metric in ("roc_auc", "pr_auc", "recall_at_precision", "fpr_at_recall") and positive is None:
        raise DataError(
            f"metric {metric!r} needs a label with exactly two classes; {target!r} has {n_classes}"
        )
    names = tuple(extra.get("families", preset.families))
    unknown = [n for n in names if n not in FAMILIES]
    if unknown:
        raise KeplerError(f"unknown model family {unknown[0]!r}; known: {', '.join(FAMILIES.names())}")
    families = searchable(
        names, task, interpretable=interpretability_required, allowed=profile.allowed_estimators
    )
    if not families:
        raise KeplerError(
            f"no model family of {', '.join(names)} can be searched for a {task} task on target "
            f"{profile.name!r}{' with interpretability required' if interpretability_required else ''}; "
            f"widen the families"
        )
    spec = SearchSpec(
        task=task,
        metric=metric,
        metric_options={"precision_floor": preset.precision_floor, "recall_target": preset.recall_target},
        families=families,
        profile=profile,
        budgets=budget_mod.merge_budgets(profile, preset.budgets(), preset.name, extra),
        time_budget_s=time_budget_s,
        seed=seed,
        interpretable=interpretability_required,
        positive=codes.code(positive) if codes is not None and positive is not None else positive,
        spark=trials_on,
    )

    imports_started = time.perf_counter()
    preload(spec)  # FLAML, scikit-learn, the converters and each family's library
    imports_s += time.perf_counter() - imports_started
    label = codes.encode(dataset.label) if codes is not None else dataset.label
    x_rest, y_rest, x_test, y_test = split_test(dataset.frame, label, task, seed)
    numeric, categorical = list(dataset.numeric_columns), list(dataset.categorical_columns)
    plan = time_plan(
        time_budget_s,
        time.perf_counter() - started - imports_s,
        imports_s,
        y_rest,
        len(dataset.features),
        task,
        profile,
    )
    spec.search_s, spec.evaluation = plan.search_s, plan.evaluation
    search = run_search(x_rest, y_rest, spec, numeric, categorical, progress)
    trials = search.trials
    final_started = time.perf_counter()
    model, artifact, chosen, constraint_rows, rejected = _finalize(
        trials,
        spec,
        x_rest,
        y_rest,
        numeric,
        categorical,
        Path(output) if output else None,
        dataset.input_typing(),
        class_labels=codes.class_labels if codes is not None else None,
        batch_sizes=plan.batch_sizes,
    )

    # The compiled artifact is judged against the labels as it answers them (the codes decoded).
    compiled = artifact.predictor()
    test_spec = spec
    if codes is not None:
        y_test = codes.decode(y_test)
        test_spec = dataclasses.replace(
            spec, positive=None if spec.positive is None else plain(codes.decode([spec.positive])[0])
        )
    evaluation = evaluate(compiled, x_test, y_test, test_spec)
    if artifact.output_schema.task == "classifier":  # the reference profile's CBPE calibration: held-out rows
        from kepler.compilers.compile import calibrate

        artifact = calibrate(
            artifact, compiled.predict_proba(x_test), y_test, positive=positive, options=spec.metric_options
        )
    test_metrics = {"score": float(METRICS.get(metric)(evaluation)), **metric_report(evaluation, task)}
    if metric == "fpr_at_recall":
        test_metrics["false_positive_rate"] = 1.0 - test_metrics["score"]
    result = {
        "best_algorithm": chosen.family,
        "best_estimator": type(model.steps[-1][1]).__name__,
        "best_config": chosen.to_dict()["config"],
        "best_trial": chosen.number,
        "deployment_ready": all(r["ok"] for r in constraint_rows) and artifact.parity.passed,
        "metric": metric,
        "validation_score": chosen.val_score,
        "test_metrics": test_metrics,
        "test_rows": int(len(x_test)),
        "budgets": spec.budgets,
        "constraint_report": constraint_rows,
        "rejected_at_final_check": rejected,
        "trials": [t.to_dict() for t in trials],
        "failed_trials": failure_summary(trials),
        "pareto_front": [t.number for t in pareto_front(trials)],
        "artifact": str(artifact.path),
        "target": profile.name,
        "use_case": preset.name,
        "families": [f.name for f in families],
        "interpretability_required": interpretability_required,
        "seed": seed,
        "time_budget_s": time_budget_s,
        "plan": plan.to_dict(),
        "search_seconds": search.seconds,
        "search_stopped": search.stopped,
        "search_isolation": search.isolation,
        **({"spark": search.spark} if search.spark is not None else {}),
        "final_seconds": time.perf_counter() - final_started,
        "total_seconds": time.perf_counter() - started,
        "data": dataset.summary(),
        "positive_class": positive,
        "class_labels": list(codes.labels) if codes is not None else None,
        "labels_encoded": codes is not None and not codes.identity,
    }
    from kepler.versioning.build_tracking import track_search  # child runs of the caller's MLflow run, if any

    result.update(track_search(result))
    return AutoMLResult(result, artifact=artifact, model=model)


def industrial_automl(
    data: Any,
    target: str,
    use_case: str = "predictive_maintenance",
    production_environment: str | os.PathLike[str] | TargetProfile = "edge",
    optimization_time: str | float = "5m",
    **kwargs: Any,
) -> AutoMLResult:
    """The guide's industrial entry point: a use-case preset on an edge or cloud target.

    See :func:`automl_pipeline` for the other arguments.
    """
    return automl_pipeline(
        data,
        target,
        optimization_time=optimization_time,
        environment=production_environment,
        use_case=use_case,
        **kwargs,
    )
