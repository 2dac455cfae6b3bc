"""AutoML trials on Spark: FLAML's ``use_spark`` runs each trial (fit, compile, timing) on an executor.

Choices, and why:

* The search runs in-process on the driver, not in the forked child of :func:`kepler.automl.search.run_search`:
  the driver talks to its JVM through a py4j socket that a forked child would share with its parent. The time
  limit is FLAML's own (``time_budget`` with ``force_cancel``, which cancels the Spark jobs of the trials
  running at the deadline), and Kepler's deadline check backs it: at ``STOP_AT`` times the search budget a
  watchdog thread cancels every job of the session still running.
* What runs on an executor is :class:`TrialMetric` (Kepler's compile + timing of the candidate under the
  profile) inside FLAML's trial, with the learner of :func:`kepler.automl.pipelines.learner_class` holding
  every native pool to the profile's threads. Both pickle with cloudpickle and import only Kepler, FLAML and
  the model libraries, which an executor must have (``pip install 'kepler-ml[spark]'``, as on the driver).
* A trial reports its figures inside FLAML's ``metric_for_logging``; the driver reads them back from FLAML's
  training log (one record per trial) once the search ends, so the progress callback sees Spark trials then,
  not one by one.
* Trials running side by side disturb each other's timing: their latencies only guide the search. The driver's
  final re-measurement, in a quiet process once the search and its session are done, decides, as it does
  without Spark; the report says so (:func:`note`).
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kepler.errors import KeplerError

INSTALL = "pip install 'kepler-ml[spark]'"


@dataclass(frozen=True)
class SparkTrials:
    """Where the search's trials run.

    Attributes:
        master: The Spark master URL (``local[2]``, ``spark://HOST:7077``, ``yarn``, ``k8s://...``).
        concurrent_trials: Trials run at once; None: the session's default parallelism (its cores).
    """

    master: str
    concurrent_trials: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.master, str) or not self.master.strip():
            raise KeplerError("the Spark master is empty; pass one such as --spark local[2]")
        if self.concurrent_trials is not None and (
            isinstance(self.concurrent_trials, bool)
            or not isinstance(self.concurrent_trials, int)
            or self.concurrent_trials < 1
        ):
            raise KeplerError(
                f"concurrent trials must be a whole number of at least 1, not {self.concurrent_trials!r}"
            )

    def check(self) -> None:
        """Fails within seconds on a wrong or unreachable master, or without pyspark (before any work).

        Raises:
            KeplerError: one line naming the master and what to check, or the install command.
        """
        require_pyspark()
        from kepler.spark_sessions import check_master

        check_master(self.master.strip())


def require_pyspark() -> None:
    """Raises a one-line KeplerError naming the install command when pyspark or joblibspark is missing."""
    try:
        import joblibspark  # noqa: F401
        import pyspark  # noqa: F401
    except ImportError as exc:
        raise KeplerError(
            f"trials on Spark need pyspark and joblibspark ({exc.name} is not installed); install them with "
            f"`{INSTALL}`"
        ) from None


def note(master: str, concurrent: int) -> str:
    """The report's line on where the trials ran and what decided."""
    return (
        f"trials ran on Spark {master}, {concurrent} concurrent; their latencies only guided the search, "
        f"and the chosen model's budgets were re-measured on the driver"
    )


@contextlib.contextmanager
def session(trials: SparkTrials) -> Iterator[Any]:
    """This process's Spark session for ``trials.master``: the active one, or one started here and stopped on exit
    (so that the driver's final measurement runs with no Spark worker beside it).

    Raises:
        KeplerError: see :meth:`SparkTrials.check`; another master's session is active in this process; Spark
            could not start or the master refused the application.
    """
    trials.check()
    from pyspark.sql import SparkSession

    master = trials.master.strip()
    active = SparkSession.getActiveSession()
    if active is not None and active.sparkContext.master != master:
        raise KeplerError(
            f"a Spark session for master {active.sparkContext.master} is already active in this process; build "
            f"with --spark {active.sparkContext.master}, or stop that session first"
        )
    from kepler.spark_sessions import session_for

    spark, made = session_for(master, app_name="kepler-trials")
    try:
        yield spark
    finally:
        if made:
            spark.stop()


def concurrency(trials: SparkTrials, spark: Any) -> int:
    """Trials run at once: as asked, else the session's default parallelism (at least 1)."""
    if trials.concurrent_trials is not None:
        return trials.concurrent_trials
    return max(1, int(spark.sparkContext.defaultParallelism))


class TrialMetric:
    """FLAML's metric for trials on Spark: scores a fitted candidate, then converts and times it under the profile.

    It runs on the executor, inside FLAML's trial, and pickles with the trial (it holds only the search spec).
    The figures go back in FLAML's ``metric_for_logging``: ``val_score``, ``p99_ms``, ``p50_ms``, ``size_mb``,
    ``error``, ``family`` and ``config``. A configuration is converted and timed on its first fold only; its
    other folds reuse the figures (the same graph shape).
    """

    def __init__(self, spec: Any) -> None:
        self.spec = spec
        self._measured: dict[tuple[Any, ...], dict[str, Any]] = {}

    def __call__(
        self,
        X_val: Any,
        y_val: Any,
        estimator: Any,
        labels: Any,
        X_train: Any,
        y_train: Any,
        *args: Any,
        **kwargs: Any,
    ) -> tuple[float, dict[str, Any]]:
        from kepler.automl.measure import measure_compiled
        from kepler.automl.metrics import METRICS
        from kepler.automl.search import _FAILED, PROBE_ROWS, _plain, evaluate

        spec = self.spec
        config = _plain({k: v for k, v in estimator.params.items() if k != "n_jobs"})
        family = getattr(estimator, "kepler_family", "?")
        failed = getattr(estimator, "kepler_fit_error", None)
        score = math.nan
        if failed is None:
            try:
                score = float(METRICS.get(spec.metric)(evaluate(estimator.model, X_val, y_val, spec)))
            except Exception as exc:  # an executor's error would stall FLAML's Spark loop: report it instead
                failed = f"scoring the candidate failed: {type(exc).__name__}: {str(exc).strip()[:300]}"
        if failed is not None:
            measured = {"p99_ms": math.inf, "p50_ms": math.inf, "size_mb": math.inf, "error": failed}
        else:
            key = (family, tuple(sorted((k, repr(v)) for k, v in config.items())))
            if key not in self._measured:
                self._measured[key] = measure_compiled(estimator.model, X_val.head(PROBE_ROWS), spec.profile)
            measured = self._measured[key]
        figures = {
            "val_score": score,
            "p99_ms": float(measured["p99_ms"]),
            "p50_ms": float(measured["p50_ms"]),
            "size_mb": float(measured["size_mb"]),
            "error": measured["error"],
            "family": family,
            "config": config,
        }
        if measured["error"] is not None:
            return _FAILED, figures
        return -score, figures


def aggregate_folds(
    val_loss_folds: list[float], log_metrics_folds: list[dict[str, Any]]
) -> tuple[float, dict[str, Any]]:
    """FLAML's ``cv_score_agg_func`` for :class:`TrialMetric`: mean loss and score, the first fold's figures."""
    figures = dict(log_metrics_folds[0])
    scores = [f["val_score"] for f in log_metrics_folds if not math.isnan(f["val_score"])]
    figures["val_score"] = float(np.mean(scores)) if scores else math.nan
    return float(np.mean(val_loss_folds)), figures


def search(
    automl: Any,
    fit_kwargs: dict[str, Any],
    spec: Any,
    trials: SparkTrials,
    started: float,
    emit: Callable[[dict[str, Any], float], None],
) -> tuple[bool, dict[str, Any], float]:
    """Runs FLAML's search with its trials on Spark, then passes each trial's figures to ``emit``.

    Args:
        automl: The FLAML AutoML, its Kepler learners added.
        fit_kwargs: ``automl.fit``'s arguments of the search (``metric`` and the Spark ones are set here).
        spec: The search spec.
        trials: Where the trials run.
        started: The search's start (``time.perf_counter()``).
        emit: Called with each trial's figures (see :class:`TrialMetric`) and its seconds since the search began.

    Returns:
        ``(stopped, spark, seconds)``: whether the deadline cancelled running trials; the report's ``spark``
        section (``master``, ``concurrent_trials``, ``startup_seconds``: starting the session and its workers,
        which the search's clock leaves out, and ``note``); the search's seconds.
    """
    from kepler.automl.plan import STOP_AT

    with session(trials) as spark:
        concurrent = concurrency(trials, spark)
        install_joblibspark_fix()
        warm_up(spark, spec, concurrent)
        # Starting Spark and its Python workers is outside the budget, like the driver's imports.
        startup_s = time.perf_counter() - started
        started += startup_s
        done = threading.Event()
        fired = threading.Event()
        deadline = started + spec.search_budget_s * STOP_AT

        def watchdog() -> None:  # Kepler's own deadline, behind FLAML's force_cancel
            if not done.wait(max(0.0, deadline - time.perf_counter())):
                fired.set()
                spark.sparkContext.cancelAllJobs()

        with tempfile.TemporaryDirectory(prefix="kepler-trials-") as folder:
            log = Path(folder) / "trials.jsonl"
            guard = threading.Thread(target=watchdog, name="kepler-search-deadline", daemon=True)
            guard.start()
            try:
                with (
                    _max_concurrent(concurrent),
                    warnings.catch_warnings(),
                    contextlib.redirect_stdout(sys.stderr),
                ):
                    # joblibspark warns that local mode has no stage-level scheduling: nothing to act on.
                    warnings.simplefilter("ignore", UserWarning)
                    automl.fit(
                        **{
                            **fit_kwargs,
                            "metric": TrialMetric(spec),
                            "cv_score_agg_func": aggregate_folds,
                            "use_spark": True,
                            "n_concurrent_trials": concurrent,
                            "force_cancel": True,
                            # FLAML's default for parallel trials (BlendSearch) needs optuna; CFO is what the
                            # sequential search uses too.
                            "hpo_method": "cfo",
                            "log_file_name": str(log),
                            "log_type": "all",
                        }
                    )
            except KeplerError:
                raise
            except Exception as exc:
                raise KeplerError(
                    f"the search on Spark {trials.master} failed: {type(exc).__name__}: "
                    f"{_first_line(str(exc))}; check the executors' logs (they need Kepler installed: `{INSTALL}`)"
                ) from exc
            except BaseException:  # Ctrl-C or SIGTERM: no trial of this build keeps running on the cluster
                spark.sparkContext.cancelAllJobs()
                raise
            finally:
                done.set()
                guard.join()
            returned = 0
            for figures, seconds in _read_log(log):
                emit(figures, seconds)
                returned += 1
        if not returned:
            from kepler.errors import BudgetError

            # FLAML retries a trial whose task failed on the executor until its deadline, saying nothing.
            raise BudgetError(
                f"no trial came back from Spark {trials.master.strip()} within the search's "
                f"{spec.search_budget_s:.0f} s; check the executors' logs (each needs Kepler: `{INSTALL}`), or "
                f"give the search more time (e.g. --time-budget {max(60, int(spec.time_budget_s * 4))}s)",
                {},
            )
        elapsed = time.perf_counter() - started  # before a session started here stops
    section = {
        "master": trials.master.strip(),
        "concurrent_trials": concurrent,
        "startup_seconds": startup_s,
        "note": note(trials.master.strip(), concurrent),
    }
    return fired.is_set() or elapsed >= spec.search_budget_s, section, elapsed


def warm_up(spark: Any, spec: Any, concurrent: int) -> None:
    """Makes ``concurrent`` Python workers import what trials use (:func:`kepler.automl.search.preload`) before
    the search's clock starts: a fresh worker spends seconds on FLAML, scikit-learn and the converters, which a
    short budget would otherwise spend on nothing but imports. Spark reuses its Python workers between tasks."""
    try:
        spark.sparkContext.parallelize(range(concurrent), concurrent).map(_Preload(spec)).collect()
    except Exception as exc:  # py4j's or pyspark's error, holding the worker's traceback
        raise KeplerError(
            f"the executors of Spark {spark.sparkContext.master} cannot run Kepler's trials "
            f"({_last_line(str(exc))}); install Kepler in their Python at the driver's version (`{INSTALL}`)"
        ) from None


class _Preload:
    """The warm-up task (a class, so that it pickles with the spec alone)."""

    def __init__(self, spec: Any) -> None:
        self.spec = spec

    def __call__(self, _: int) -> int:
        from kepler.automl.search import preload

        preload(self.spec)
        return os.getpid()


@contextlib.contextmanager
def _max_concurrent(concurrent: int) -> Iterator[None]:
    """FLAML sizes Spark trials by the executors it counts (none in local mode): ``FLAML_MAX_CONCURRENT`` raises it."""
    before = os.environ.get("FLAML_MAX_CONCURRENT")
    os.environ["FLAML_MAX_CONCURRENT"] = str(concurrent)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("FLAML_MAX_CONCURRENT", None)
        else:
            os.environ["FLAML_MAX_CONCURRENT"] = before


def _read_log(path: Path) -> Iterator[tuple[dict[str, Any], float]]:
    """Each trial's figures and time from FLAML's training log (records of trials that reported figures)."""
    from flaml.automl.training_log import training_log_reader

    if not path.exists():
        return
    with training_log_reader(str(path)) as reader:
        for record in reader.records():
            figures = record.logged_metric
            if isinstance(figures, dict) and "family" in figures:
                yield figures, float(record.wall_clock_time or 0.0)


def install_joblibspark_fix() -> None:
    """See :func:`kepler._compat.joblibspark.fix_abort`."""
    from kepler._compat.joblibspark import fix_abort

    fix_abort()


def _last_line(text: str) -> str:
    """The line of a worker's traceback that names the error (its last one before Spark's own frames)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    named = [line for line in lines if re.match(r"^[\w.]+(Error|Exception|Exit)\b.*:", line)]
    return (named[-1] if named else (lines[0] if lines else "unknown error"))[:300]


def _first_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[0][:300] if lines else ""


SCALE_SECTION = "scale"
SCALE_KEYS = ("spark_master", "concurrent_trials")


def trials_setting(master: str | None = None, concurrent_trials: int | None = None) -> SparkTrials | None:
    """Where a search's trials run: ``master`` and ``concurrent_trials`` as given, else ``[scale] spark_master``
    and ``concurrent_trials`` of the nearest kepler.toml (what is given wins); None: on this machine.

    Raises:
        KeplerError: concurrent trials without a master, or a bad value in kepler.toml (DataError).
    """
    from kepler.data.config import project_section
    from kepler.errors import DataError
    from kepler.project_file import find_project_file

    table = project_section(SCALE_SECTION, SCALE_KEYS)
    where = find_project_file()
    file_master = table.get("spark_master")
    if file_master is not None and (not isinstance(file_master, str) or not file_master.strip()):
        raise DataError(f'{where}: [{SCALE_SECTION}] spark_master must be a master URL such as "local[2]"')
    file_concurrent = table.get("concurrent_trials")
    if file_concurrent is not None and (
        isinstance(file_concurrent, bool) or not isinstance(file_concurrent, int) or file_concurrent < 1
    ):
        raise DataError(f"{where}: [{SCALE_SECTION}] concurrent_trials must be a whole number of at least 1")
    chosen = master if master is not None else file_master
    if chosen is None:
        if concurrent_trials is not None:
            raise KeplerError(
                "concurrent trials run on Spark: add --spark MASTER (e.g. --spark local[2]) or [scale] "
                "spark_master in kepler.toml"
            )
        return None
    return SparkTrials(
        chosen.strip(), concurrent_trials if concurrent_trials is not None else file_concurrent
    )
