"""The constraint-aware search: FLAML picks configurations, Kepler measures each compiled candidate."""

from __future__ import annotations

import logging
import math
import os
import signal
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kepler.automl import budgets as budget_mod
from kepler.automl.families import CLASSIFICATION, Family
from kepler.automl.measure import measure_compiled
from kepler.automl.metrics import METRICS, Evaluation
from kepler.automl.pipelines import learner_class
from kepler.automl.plan import CV_MAX_ROWS, STOP_AT
from kepler.automl.spark import SparkTrials
from kepler.automl.splits import CV_FOLDS
from kepler.errors import KeplerError
from kepler.targets import TargetProfile

_FAILED = 1e9  # what a trial that cannot be compiled reports, so FLAML steers away from it
PROBE_ROWS = 64


@dataclass
class Trial:
    """One evaluated configuration and what the compiled candidate measured."""

    number: int
    family: str
    config: dict[str, Any]
    val_score: float
    p99_ms: float
    p50_ms: float
    size_mb: float
    elapsed_s: float
    error: str | None = None
    violations: dict[str, float] = field(default_factory=dict)

    @property
    def compliant(self) -> bool:
        """No error and no budget broken."""
        return self.error is None and not self.violations

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (infinite figures become None)."""

        def clean(value: Any) -> Any:
            return None if isinstance(value, float) and not math.isfinite(value) else value

        return {
            "number": self.number,
            "family": self.family,
            "config": _plain(self.config),
            "val_score": clean(self.val_score),
            "p99_ms": clean(self.p99_ms),
            "p50_ms": clean(self.p50_ms),
            "size_mb": clean(self.size_mb),
            "elapsed_s": self.elapsed_s,
            "error": self.error,
            "violations": self.violations,
            "compliant": self.compliant,
        }


def _plain(config: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.item() if hasattr(v, "item") else v) for k, v in config.items()}


@dataclass
class SearchSpec:
    """Everything a search needs besides the data."""

    task: str
    metric: str
    metric_options: dict[str, float]
    families: list[Family]
    profile: TargetProfile
    budgets: dict[str, dict[str, Any]]
    time_budget_s: float
    seed: int
    interpretable: bool
    positive: Any = None
    search_s: float | None = None
    evaluation: dict[str, Any] | None = None
    spark: SparkTrials | None = None

    @property
    def search_budget_s(self) -> float:
        """The search's own budget: ``search_s`` from the time plan, else the whole ``time_budget_s``."""
        return self.search_s if self.search_s is not None else self.time_budget_s


def evaluate(model: Any, rows: Any, truth: Any, spec: SearchSpec) -> Evaluation:
    """Predictions and scores of a fitted model (native or compiled Predictor) on labelled rows."""
    truth = np.asarray(truth)
    if spec.task != CLASSIFICATION:
        return Evaluation(truth, np.asarray(model.predict(rows)), options=spec.metric_options)
    final = model.steps[-1][1] if hasattr(model, "steps") else None
    is_outlier = type(final).__name__ == "IsolationForest" or getattr(model, "task", None) == "outlier"
    if is_outlier:
        outlier_scores = -np.asarray(model.decision_function(rows), dtype=float)
        negatives = [c for c in np.unique(truth) if c != spec.positive]
        flagged = np.asarray(model.predict(rows)) == -1
        labels = np.where(flagged, spec.positive, negatives[0] if negatives else spec.positive)
        return Evaluation(truth, labels, outlier_scores, spec.positive, spec.metric_options)
    proba = np.asarray(model.predict_proba(rows), dtype=float)
    scores: np.ndarray | None = None
    if spec.positive is not None:
        # A model that never saw the positive class gives it no probability (the folds keep every class,
        # so this is a guard, not a path).
        found = [i for i, c in enumerate(model.classes_) if c == spec.positive]
        scores = proba[:, found[0]] if found else np.zeros(len(proba))
    return Evaluation(truth, np.asarray(model.predict(rows)), scores, spec.positive, spec.metric_options)


@dataclass
class SearchRun:
    """What a search produced.

    Attributes:
        trials: Every trial (one per configuration), in order.
        seconds: Wall-clock seconds from the first trial's start to the search's end.
        stopped: Whether the time budget ran out during a trial, which was then stopped.
        isolation: ``"process"`` when the search ran in a child process stopped at the deadline,
            ``"in-process"`` when it could not (see :func:`can_isolate`), ``"spark"`` when its trials ran on
            Spark (:mod:`kepler.automl.spark`).
        spark: Where the trials ran on Spark (``master``, ``concurrent_trials``, ``note``), or None.
    """

    trials: list[Trial]
    seconds: float
    stopped: bool
    isolation: str
    spark: dict[str, Any] | None = None


def run_search(
    x_fit: Any,
    y_fit: Any,
    spec: SearchSpec,
    numeric: list[str],
    categorical: list[str],
    progress: Callable[[Trial, Trial | None, float], None] | None = None,
) -> SearchRun:
    """Runs FLAML over the families; every configuration is compiled and timed under the profile.

    Configurations are scored as ``spec.evaluation`` says (the time plan: k-fold cross-validation
    whose folds hold every class, or a 20% holdout for large or wide tables); without it, tables up
    to 20,000 rows by 5-fold cross-validation and larger ones on a holdout. Either way the rows
    passed here exclude the test split. A configuration is converted and timed once, on its first
    fold, since every fold builds the same graph shape.

    Every native thread pool (OpenMP, BLAS) is held to the profile's threads during the search,
    so that two builds on the same cores do not oversubscribe them. On Linux (see
    :func:`can_isolate`) the search runs in a forked child process that sends each trial back
    and is stopped at ``spec.search_budget_s * STOP_AT`` with the trial then running, since FLAML alone
    checks its budget only between trials (OpenMP is then held to one thread: see
    :func:`can_isolate`). With ``spec.spark``, the trials run on Spark executors instead
    (:mod:`kepler.automl.spark`: the search runs in this process, FLAML's deadline cancels the trials then
    running, and Kepler's deadline check backs it).

    Returns:
        The trials and how the search ended.
    """
    preload(spec)
    trials: dict[int, Trial] = {}
    started = time.perf_counter()

    def record(trial: Trial) -> None:
        trials[trial.number] = trial
        if progress is not None:
            best = max((t for t in trials.values() if t.compliant), key=lambda t: t.val_score, default=None)
            progress(trial, best, trial.elapsed_s)

    if spec.spark is not None:
        return _spark_search(x_fit, y_fit, spec, numeric, categorical, started, record)
    isolated = can_isolate()

    def search(emit: Callable[[Trial], None]) -> None:
        _search(x_fit, y_fit, spec, numeric, categorical, started, emit, forked=isolated)

    stopped = False
    if isolated:
        stopped = _run_in_child(search, record, deadline=started + spec.search_budget_s * STOP_AT)
    else:
        search(record)
    return SearchRun(
        sorted(trials.values(), key=lambda t: t.number),
        time.perf_counter() - started,
        stopped,
        "process" if isolated else "in-process",
    )


def preload(spec: SearchSpec) -> None:
    """Imports what trials use (FLAML, the converters, each family's library) before the clock starts,
    so that neither the budget nor a forked child pays for it (a second call costs nothing)."""
    import flaml  # noqa: F401

    import kepler.compilers.convert
    import kepler.runtimes.benchmark  # noqa: F401
    from kepler.compilers.converters import install_backends

    install_backends()
    for family in spec.families:
        space = family.space(100, spec.task, spec.interpretable)
        family.build({k: v["init_value"] for k, v in space.items()}, spec.task, spec.seed)


def can_isolate() -> bool:
    """Whether the search can run in a forked child process that is stopped at the deadline (Linux).

    GNU OpenMP (libgomp, which scikit-learn, XGBoost and LightGBM bring) keeps its worker threads
    between parallel regions, and a forked child that asks for more than one OpenMP thread waits
    forever for workers that were not copied; the child therefore holds OpenMP to one thread
    (only HistGradientBoosting would use more: the other families fit with ``n_jobs=1``). BLAS
    pools survive a fork. macOS forks unsafely with its system frameworks, so it searches in-process.
    """
    return sys.platform.startswith("linux") and hasattr(os, "fork")


def _run_in_child(
    search: Callable[[Callable[[Trial], None]], None], record: Callable[[Trial], None], deadline: float
) -> bool:
    """Runs ``search`` in a forked child, passing each trial it emits to ``record``.

    Returns:
        Whether the child was stopped at ``deadline`` (a ``time.perf_counter()`` value).

    Raises:
        KeplerError: the child died without finishing; or the error the search raised.
    """
    from multiprocessing import Pipe

    reader, writer = Pipe(duplex=False)
    for stream in (sys.stdout, sys.stderr):  # or the child's copy of unwritten output is written twice
        if stream is not None:
            stream.flush()
    parent = os.getpid()
    with warnings.catch_warnings():
        # Python 3.12+ warns when a process with threads forks; the child uses no lock of the other threads.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: search, send every trial, and never return into the caller's code
        code = 0
        try:
            _die_with(parent)
            reader.close()
            search(lambda trial: writer.send(("trial", trial)))
            writer.send(("done", None))
        except BaseException as exc:
            code = 1
            try:
                writer.send(("error", _portable(exc)))
            except BaseException:
                pass
        finally:
            os._exit(code)
    writer.close()
    finished = stopped = False
    try:
        while True:
            left = deadline - time.perf_counter()
            if left <= 0:
                stopped = True
                break
            if not reader.poll(min(left, 1.0)):
                continue
            try:
                kind, value = reader.recv()
            except EOFError:
                break
            if kind == "trial":
                record(value)
            elif kind == "error":
                raise value
            else:
                finished = True
                break
    finally:
        reader.close()
        status = _reap(pid, stop=not finished)
    if not finished and not stopped:
        code = os.waitstatus_to_exitcode(status)
        how = f"killed by signal {-code}, perhaps for lack of memory" if code < 0 else f"exit status {code}"
        raise KeplerError(f"the search process died ({how}); rerun with KEPLER_DEBUG=1, or on fewer rows")
    return stopped


def _die_with(parent: int) -> None:
    """Makes the kernel kill this (child) process when its parent dies, however it dies (SIGKILL, SIGTERM),
    so that no orphaned search runs on."""
    import ctypes

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux's libc: the parent's finally still stops the child
        pass
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


def _reap(pid: int, *, stop: bool) -> int:
    """Waits for the child (stopping it first when ``stop``) and returns its wait status."""
    if not stop:
        end = time.monotonic() + 5.0
        while time.monotonic() < end:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return status
            time.sleep(0.005)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    return os.waitpid(pid, 0)[1]


def _portable(exc: BaseException) -> BaseException:
    """``exc`` as it can cross the pipe (a KeplerError naming it when it cannot), with the child's traceback."""
    import pickle
    import traceback

    text = "".join(traceback.format_exception(exc))
    try:
        copy = pickle.loads(pickle.dumps(exc))
    except Exception:
        copy = KeplerError(f"the search failed: {type(exc).__name__}: {exc}")
    copy.add_note("raised in the search process:\n" + text)
    return copy


def _search(
    x_fit: Any,
    y_fit: Any,
    spec: SearchSpec,
    numeric: list[str],
    categorical: list[str],
    started: float,
    emit: Callable[[Trial], None],
    *,
    forked: bool,
) -> None:
    """The FLAML search itself; ``emit`` receives each trial after every fold it is scored on."""
    from threadpoolctl import threadpool_limits

    trials: dict[tuple, Trial] = {}
    fold_scores: dict[tuple, list[float]] = {}
    score_of = METRICS.get(spec.metric)

    def metric(
        X_val: Any,
        y_val: Any,
        estimator: Any,
        labels: Any,
        X_train: Any,
        y_train: Any,
        *args: Any,
        **kwargs: Any,
    ) -> tuple[float, dict[str, float]]:
        model = estimator.model  # the fitted model (FLAML's public property)
        score = float(score_of(evaluate(model, X_val, y_val, spec)))
        config = {k: v for k, v in estimator.params.items() if k != "n_jobs"}
        family = getattr(estimator, "kepler_family", "?")
        key = (family, tuple(sorted((k, repr(v)) for k, v in config.items())))
        trial = trials.get(key)
        if trial is None:
            measured = measure_compiled(model, X_val.head(PROBE_ROWS), spec.profile)
            trial = Trial(
                number=len(trials) + 1,
                family=family,
                config=config,
                val_score=score,
                p99_ms=measured["p99_ms"],
                p50_ms=measured["p50_ms"],
                size_mb=measured["size_mb"],
                elapsed_s=0.0,
                error=measured["error"],
            )
            trial.violations = violations(spec.budgets, trial.p99_ms, trial.size_mb)
            trials[key] = trial
            fold_scores[key] = []
        fold_scores[key].append(score)
        trial.val_score = float(np.mean(fold_scores[key]))
        trial.elapsed_s = time.perf_counter() - started
        emit(trial)
        if trial.error is not None:
            return _FAILED, {"p99_ms": _FAILED, "size_mb": _FAILED, "val_score": score}
        return -score, {"p99_ms": trial.p99_ms, "size_mb": trial.size_mb, "val_score": score}

    automl = _automl(spec, numeric, categorical)
    # Native pools (OpenMP of the boosters and HistGradientBoosting, BLAS) default to every core; two builds
    # side by side then oversubscribe the cores and a trial of a few hundred rows takes seconds.
    threads = spec.profile.resolved_threads
    limits = {"blas": threads, "openmp": 1 if forked else threads}
    with warnings.catch_warnings(), threadpool_limits(limits=limits):
        # FLAML 2.7 calls pandas APIs that pandas 3 deprecates; the warnings are FLAML's to fix.
        warnings.simplefilter("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", message=".*inplace keyword.*")
        automl.fit(**_fit_arguments(x_fit, y_fit, spec), metric=metric)


def _automl(
    spec: SearchSpec, numeric: list[str], categorical: list[str], *, trial_threads: int | None = None
) -> Any:
    """FLAML's AutoML with one Kepler learner per family (``trial_threads``: see :func:`learner_class`)."""
    from flaml import AutoML

    # FLAML logs its own model into an active MLflow run (MLflow 3.17 refuses its types) and leaves mlruns/;
    # Kepler records its own runs.
    automl = AutoML(mlflow_logging=False)
    for family in spec.families:
        automl.add_learner(
            f"kepler_{family.name}",
            learner_class(
                family,
                spec.task,
                spec.seed,
                numeric,
                categorical,
                interpretable=spec.interpretable,
                trial_threads=trial_threads,
            ),
        )
    logging.getLogger("flaml.automl.logger").setLevel(logging.ERROR)
    return automl


def _fit_arguments(x_fit: Any, y_fit: Any, spec: SearchSpec) -> dict[str, Any]:
    """``AutoML.fit``'s arguments of a search, but its metric."""
    evaluation = spec.evaluation or (
        {"eval_method": "cv", "n_splits": CV_FOLDS}
        if len(x_fit) <= CV_MAX_ROWS
        else {"eval_method": "holdout", "split_ratio": 0.2}
    )
    return {
        "X_train": x_fit,
        "y_train": y_fit,
        "task": spec.task,
        **evaluation,
        "metric_constraints": [
            ("p99_ms", "<=", spec.budgets["latency_p99_ms"]["limit"]),
            ("size_mb", "<=", spec.budgets["size_mb"]["limit"]),
        ],
        "estimator_list": [f"kepler_{family.name}" for family in spec.families],
        "time_budget": spec.search_budget_s,
        "seed": spec.seed,
        "skip_transform": True,
        "retrain_full": False,
        "verbose": 0,
        "log_file_name": "",
        "n_jobs": 1,
        "auto_augment": False,
        "early_stop": False,
        "keep_search_state": False,
        "model_history": False,
        "mlflow_logging": False,
    }


def _spark_search(
    x_fit: Any,
    y_fit: Any,
    spec: SearchSpec,
    numeric: list[str],
    categorical: list[str],
    started: float,
    record: Callable[[Trial], None],
) -> SearchRun:
    """The search with its trials on Spark (:mod:`kepler.automl.spark`), in this process."""
    from kepler.automl import spark as spark_mod

    assert spec.spark is not None
    trials: dict[tuple[Any, ...], Trial] = {}

    def emit(figures: dict[str, Any], seconds: float) -> None:
        config = figures["config"]
        key = (figures["family"], tuple(sorted((k, repr(v)) for k, v in config.items())))
        if key in trials:  # the same configuration again: FLAML's result, not a new candidate
            return
        trial = Trial(
            number=len(trials) + 1,
            family=figures["family"],
            config=config,
            val_score=figures["val_score"],
            p99_ms=figures["p99_ms"],
            p50_ms=figures["p50_ms"],
            size_mb=figures["size_mb"],
            elapsed_s=seconds,
            error=figures["error"],
        )
        trial.violations = violations(spec.budgets, trial.p99_ms, trial.size_mb)
        trials[key] = trial
        record(trial)

    automl = _automl(spec, numeric, categorical, trial_threads=spec.profile.resolved_threads)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=FutureWarning)  # FLAML and pyspark on pandas 3
        warnings.filterwarnings("ignore", message=".*inplace keyword.*")
        stopped, where, seconds = spark_mod.search(
            automl, _fit_arguments(x_fit, y_fit, spec), spec, spec.spark, started, emit
        )
    return SearchRun(
        sorted(trials.values(), key=lambda t: t.number),
        seconds,
        stopped,
        "spark",
        where,
    )


def violations(budgets: dict[str, dict[str, Any]], p99_ms: float, size_mb: float) -> dict[str, float]:
    """The budgets a trial's figures break, each with its measured share of the limit."""
    broken = {}
    for budget, value in (("latency_p99_ms", p99_ms), ("size_mb", size_mb)):
        limit = budgets[budget]["limit"]
        if value > limit:
            broken[budget] = value / limit
    return broken


def pareto_front(trials: list[Trial]) -> list[Trial]:
    """Trials no other trial beats on validation score, p99 latency and size at once."""
    candidates = [t for t in trials if t.error is None]
    front = []
    for t in candidates:
        dominated = any(
            o is not t
            and o.val_score >= t.val_score
            and o.p99_ms <= t.p99_ms
            and o.size_mb <= t.size_mb
            and (o.val_score > t.val_score or o.p99_ms < t.p99_ms or o.size_mb < t.size_mb)
            for o in candidates
        )
        if not dominated:
            front.append(t)
    return sorted(front, key=lambda t: -t.val_score)


def closest_candidates(trials: list[Trial], limit: int = 5) -> list[dict[str, Any]]:
    """The trials that came nearest to every budget, with what each broke and by how much."""
    ranked = sorted(
        (t for t in trials if t.error is None), key=lambda t: max(t.violations.values(), default=0.0)
    )
    return [
        {
            "trial": t.number,
            "family": t.family,
            "val_score": t.val_score,
            "p99_ms": t.p99_ms,
            "size_mb": t.size_mb,
            "broken": {k: {"over_by": round(v, 3)} for k, v in t.violations.items()},
        }
        for t in ranked[:limit]
    ]


def failure_summary(trials: list[Trial]) -> list[dict[str, Any]]:
    """The distinct reasons trials failed, most frequent first: each with its count, families and trials."""
    reasons: dict[str, dict[str, Any]] = {}
    for t in trials:
        if t.error is None:
            continue
        entry = reasons.setdefault(t.error, {"reason": t.error, "count": 0, "families": [], "trials": []})
        entry["count"] += 1
        entry["trials"].append(t.number)
        if t.family not in entry["families"]:
            entry["families"].append(t.family)
    return sorted(reasons.values(), key=lambda r: (-r["count"], r["trials"][0]))


def failure_text(summary: list[dict[str, Any]], shown: int = 3, width: int = 240) -> str:
    """The distinct failure reasons on one line, each with its count (the most frequent ``shown`` ones)."""

    def one(entry: dict[str, Any]) -> str:
        reason = " ".join(entry["reason"].split())
        reason = reason if len(reason) <= width else reason[: width - 1] + "…"
        return f"{entry['count']}× {reason}"

    text = " | ".join(one(e) for e in summary[:shown])
    rest = summary[shown:]
    if rest:
        text += f" | and {len(rest)} other reason{'s' if len(rest) > 1 else ''} ({sum(e['count'] for e in rest)} trials)"
    return text


budget_check = budget_mod.check
