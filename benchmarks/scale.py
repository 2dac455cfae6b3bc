"""Scale-out: batch scoring in one process against Spark ``local[2]``, and the native model's UDF in the same job.

Part ``score`` (this file's part; part ``trials`` is AutoML trials on Spark):

* the data: ``--rows`` rows (5,000,000 by default) of 20 numeric features and an id, as Parquet in row groups;
* the model: XGBoost, 100 trees of depth 6 (the DESIGN's reference model; ``--model random_forest``: a
  scikit-learn RandomForest of 100 trees of depth at most 8 after a median imputer), fit on 50,000 rows, compiled with
  ``kp.compile`` for ``--target``: ``cloud-1t`` (default: the cloud profile on one thread, so the compiled C
  backend serves the large batches) or ``edge`` (onnxruntime alone, 1 thread);
* **kepler, 1 process**: ``kepler score ARTIFACT data.parquet --output out.parquet`` as a child process; wall time
  of the whole command (imports and model loading included) and the peak RSS of its process tree;
* **kepler, local[2]**: ``kp.score(..., spark=session)`` in a child that starts a ``local[2]`` session first
  (JVM start-up not counted; a warm-up job on 10,000 rows runs before), one onnxruntime session per Python worker;
* **native UDF, local[2]**: in the same session, the same input read and the same Parquet output written by
  ``mapInPandas`` calling the native model's ``predict_proba`` (XGBoost with ``n_jobs=1`` per task, the model
  broadcast once), so both Spark figures pay the same reading, Arrow transfer and writing.

rows/s is rows divided by wall seconds; per core divides by the cores used (1, or 2 for local[2]). The peak RSS
is the largest sum over the process tree (driver, JVM, Python workers), sampled every 0.1 s.
The goal (issue 12): ≥ 1,000,000 rows/s per core for a 100-tree model, and faster than the native UDF.

Part ``trials``: the same AutoML search (sensors table, edge profile) with its trials one at a time on this
machine, then on Spark ``local[2]`` with 2 concurrent trials: trials per minute, and the best compliant
validation score at equal wall time (see :func:`trials_part`).

Usage:
    python benchmarks/scale.py --part trials --trials-budget 60   # writes results/scale-trials.{json,md}
    python benchmarks/scale.py --part score                  # 5M rows, writes results/scale-score.{json,md}
    python benchmarks/scale.py --part score --rows 200000    # a quick run
    python benchmarks/scale.py --part score --model random_forest   # results/scale-score-random_forest.*
    python benchmarks/scale.py --part all
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"
FEATURES = 20
TREES = 100
DEPTH = 6
GOAL_PER_CORE = 1_000_000
KEPLER = Path(sys.executable).parent / "kepler"
# Every child runs offline, quietly and with one thread per native pool (onnxruntime's comes from the profile).
CHILD_ENV = {
    **os.environ,
    "OMP_NUM_THREADS": "1",
    "PYSPARK_PYTHON": sys.executable,
    "PYSPARK_DRIVER_PYTHON": sys.executable,
    "SPARK_LOCAL_IP": "127.0.0.1",
    "PYTHONWARNINGS": "ignore::FutureWarning",
}


# --------------------------------------------------------------------------- measuring a process tree


class TreeMemory:
    """Samples the summed RSS of a process and its descendants every 0.1 s; ``peak`` is the largest sum."""

    def __init__(self, pid: int) -> None:
        import psutil

        self.root = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psutil

        while not self._stop.is_set():
            try:
                processes = [self.root, *self.root.children(recursive=True)]
                total = 0
                for process in processes:
                    try:
                        total += process.memory_info().rss
                    except psutil.Error:
                        pass
                self.peak = max(self.peak, total)
            except psutil.Error:
                return
            self._stop.wait(0.1)

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run_measured(command: list[str], cwd: Path) -> dict[str, Any]:
    """Runs a child to its end; its wall seconds, peak tree RSS, and last stdout line as JSON (if any)."""
    start = time.perf_counter()
    child = subprocess.Popen(
        command, cwd=cwd, env=CHILD_ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    with TreeMemory(child.pid) as memory:
        out, err = child.communicate()
    seconds = time.perf_counter() - start
    if child.returncode != 0:
        raise SystemExit(f"{' '.join(command[:3])} failed ({child.returncode}): {err.strip()[-2000:]}")
    lines = [line for line in out.strip().splitlines() if line.strip()]
    try:
        answer = json.loads(out) if out.strip().startswith("{") else json.loads(lines[-1])
    except (ValueError, IndexError):
        answer = {}
    return {"seconds": seconds, "peak_rss_bytes": memory.peak, "answer": answer}


# --------------------------------------------------------------------------- the data and the model


def make_data(folder: Path, rows: int) -> Path:
    """Writes ``rows`` rows of 20 features and an id as Parquet, one million rows at a time."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = folder / "history.parquet"
    rng = np.random.default_rng(12)
    writer = None
    for start in range(0, rows, 1_000_000):
        count = min(1_000_000, rows - start)
        columns = {"id": pa.array(np.arange(start, start + count, dtype=np.int64))}
        values = rng.normal(size=(count, FEATURES))
        values[rng.random(values.shape) < 0.02] = np.nan
        for i in range(FEATURES):
            columns[f"f{i}"] = pa.array(values[:, i])
        table = pa.table(columns)
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table, row_group_size=250_000)
    assert writer is not None
    writer.close()
    return path


MODELS = {
    "xgboost": f"XGBoost, {TREES} trees of depth {DEPTH}",
    "random_forest": f"scikit-learn RandomForest, {TREES} trees of depth at most 8",
}


TARGETS = {
    "cloud-1t": "the cloud profile on 1 thread (onnxruntime and the compiled C backend)",
    "edge": "the edge profile (onnxruntime alone, 1 thread)",
}


def make_model(folder: Path, kind: str = "xgboost", target: str = "cloud-1t") -> tuple[Path, Path]:
    """Fits the model (``xgboost``: 100 trees of depth 6; ``random_forest``: 100 trees of depth at most 8) on
    50,000 rows; compiles it for ``target`` (:data:`TARGETS`); returns ``(artifact, native model file)``."""
    import joblib
    import numpy as np
    import pandas as pd
    import xgboost

    import kepler as kp

    rng = np.random.default_rng(3)
    frame = pd.DataFrame(rng.normal(size=(50_000, FEATURES)), columns=[f"f{i}" for i in range(FEATURES)])
    label = (
        (frame["f0"] + frame["f1"] * frame["f2"] - 0.5 * frame["f3"] + rng.normal(size=len(frame))) > 0
    ).astype(int)
    if kind == "random_forest":
        from sklearn.ensemble import RandomForestClassifier
        from sklearn.impute import SimpleImputer
        from sklearn.pipeline import Pipeline

        model: Any = Pipeline(
            [
                ("impute", SimpleImputer(strategy="median")),
                ("forest", RandomForestClassifier(TREES, max_depth=8, n_jobs=1, random_state=0)),
            ]
        )
    else:
        model = xgboost.XGBClassifier(n_estimators=TREES, max_depth=DEPTH, n_jobs=1, random_state=0)
    model.fit(frame, label)
    artifact = folder / "artifact"
    import dataclasses

    profile = (
        dataclasses.replace(kp.targets.load_profile("cloud"), name="cloud-1t", threads=1)
        if target == "cloud-1t"
        else kp.targets.load_profile(target)
    )
    kp.compile(model, sample=frame.head(2000), target=profile, output=artifact, benchmark=False)
    native = folder / "model.joblib"
    joblib.dump(model, native)
    return artifact, native


# --------------------------------------------------------------------------- the Spark child


def spark_child(artifact: Path, native: Path, data: Path, folder: Path) -> dict[str, Any]:
    """In one local[2] session: kp.score, then the native model's UDF, each timed (JVM start-up excluded)."""
    import joblib
    from pyspark.sql import SparkSession

    import kepler as kp

    session = (
        SparkSession.builder.master("local[2]")
        .appName("kepler-scale-benchmark")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.local.dir", str(folder / "spark"))
        .config("spark.driver.memory", "4g")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    results: dict[str, Any] = {}
    warm = folder / "warm.parquet"
    session.read.parquet(str(data)).limit(10_000).write.parquet(str(warm))
    kp.score(artifact, warm, folder / "warm-out.parquet", spark=session)

    start = time.perf_counter()
    scored = kp.score(artifact, data, folder / "kepler-spark.parquet", spark=session, keep=["id"])
    results["kepler"] = {"seconds": time.perf_counter() - start, "rows": scored.rows}

    model = joblib.load(native)
    features = [f"f{i}" for i in range(FEATURES)]
    broadcast = session.sparkContext.broadcast(model)

    def native_udf(frames: Any) -> Any:
        import pandas as pd

        fitted = broadcast.value
        if hasattr(fitted, "n_jobs"):
            fitted.set_params(n_jobs=1)
        for frame in frames:
            probabilities = fitted.predict_proba(frame[features])
            yield pd.DataFrame(
                {
                    "id": frame["id"].to_numpy(),
                    "prediction": probabilities.argmax(axis=1).astype("int64"),
                    "proba_0": probabilities[:, 0].astype("float32"),
                    "proba_1": probabilities[:, 1].astype("float32"),
                }
            )

    schema = "id long, prediction long, proba_0 float, proba_1 float"
    frame = session.read.parquet(str(data)).select("id", *features)
    frame.limit(10_000).mapInPandas(native_udf, schema).write.parquet(str(folder / "warm-native.parquet"))
    start = time.perf_counter()
    frame.mapInPandas(native_udf, schema).write.parquet(str(folder / "native-spark.parquet"))
    results["native"] = {"seconds": time.perf_counter() - start, "rows": scored.rows}
    written = session.read.parquet(str(folder / "native-spark.parquet")).count()
    results["native"]["rows_written"] = int(written)
    session.stop()
    return results


# --------------------------------------------------------------------------- the parts


def score_part(args: argparse.Namespace) -> dict[str, Any]:
    """Part ``score``: rows/s and peak memory, one process against local[2], and the native UDF."""
    from kepler.runtimes.benchmark import machine

    summary: dict[str, Any] = {
        "rows": args.rows,
        "features": FEATURES,
        "model": f"{MODELS[args.model]}, compiled for {TARGETS[args.target]}",
        "machine": machine(),
        "load_average_before": list(os.getloadavg()),
    }
    with tempfile.TemporaryDirectory(prefix="kepler-scale-bench-", dir=args.scratch) as scratch:
        folder = Path(scratch)
        start = time.perf_counter()
        data = make_data(folder, args.rows)
        artifact, native = make_model(folder, args.model, args.target)
        summary["input_bytes"] = data.stat().st_size
        print(
            f"data ({data.stat().st_size / 2**20:.0f} MiB Parquet) and model ready in "
            f"{time.perf_counter() - start:.0f} s",
            flush=True,
        )

        local = run_measured(
            [
                str(KEPLER),
                "score",
                str(artifact),
                str(data),
                "--output",
                str(folder / "kepler.parquet"),
                "--keep",
                "id",
                "--json",
            ],
            folder,
        )
        summary["kepler_local"] = {
            "seconds": local["seconds"],
            "scoring_seconds": local["answer"].get("seconds"),
            "rows_per_s": args.rows / local["seconds"],
            "rows_per_s_per_core": args.rows / local["seconds"],
            "peak_rss_bytes": local["peak_rss_bytes"],
        }
        print(
            f"kepler, 1 process: {local['seconds']:.1f} s, {args.rows / local['seconds']:,.0f} rows/s, "
            f"peak {local['peak_rss_bytes'] / 2**20:.0f} MiB",
            flush=True,
        )

        spark = run_measured(
            [sys.executable, __file__, "--child", str(artifact), str(native), str(data), str(folder)], folder
        )
        answer = spark["answer"]
        for name in ("kepler", "native"):
            seconds = answer[name]["seconds"]
            summary[f"{name}_spark"] = {
                "seconds": seconds,
                "rows_per_s": args.rows / seconds,
                "rows_per_s_per_core": args.rows / seconds / 2,
            }
        summary["spark_peak_rss_bytes"] = spark["peak_rss_bytes"]
        summary["spark_process_seconds"] = spark["seconds"]
        for name in ("kepler", "native"):
            result = summary[f"{name}_spark"]
            print(
                f"{name}, local[2]: {result['seconds']:.1f} s, {result['rows_per_s']:,.0f} rows/s "
                f"({result['rows_per_s_per_core']:,.0f} per core)",
                flush=True,
            )
        print(f"local[2] process tree peak {spark['peak_rss_bytes'] / 2**20:.0f} MiB", flush=True)
    summary["load_average_after"] = list(os.getloadavg())
    best = max(summary["kepler_local"]["rows_per_s_per_core"], summary["kepler_spark"]["rows_per_s_per_core"])
    summary["goals"] = {
        "per_core_1M": best >= GOAL_PER_CORE,
        "faster_than_native_udf": summary["kepler_spark"]["seconds"] < summary["native_spark"]["seconds"],
    }
    return summary


SENSORS = Path(__file__).resolve().parents[1] / "examples" / "data" / "sensors.csv"


def _search(
    table: Path, budget: float, seed: int, spark: str | None, concurrent: int | None
) -> dict[str, Any]:
    """One search of the sensors table under the edge profile; its trials, times and chosen model."""
    from kepler.automl import automl_pipeline
    from kepler.automl.spark import SparkTrials

    with tempfile.TemporaryDirectory(prefix="kepler-scale-trials-") as out:
        result = automl_pipeline(
            table,
            "failure",
            optimization_time=budget,
            environment="edge",
            seed=seed,
            output=Path(out) / "artifact",
            spark=SparkTrials(spark, concurrent) if spark else None,
        )
    return {
        "trials": result["trials"],
        "search_seconds": result["search_seconds"],
        "search_isolation": result["search_isolation"],
        "spark": result.get("spark"),
        "best_algorithm": result["best_algorithm"],
        "validation_score": result["validation_score"],
        "test_score": result["test_metrics"]["score"],
        "metric": result["metric"],
        "p99_ms_final": next(
            r["measured"] for r in result["constraint_report"] if r["budget"] == "latency_p99_ms"
        ),
    }


def _trial_figures(run: dict[str, Any], budget: float) -> dict[str, Any]:
    """Trials per minute, and the best compliant validation score found by a quarter, half and all of the budget."""
    trials = run["trials"]
    best_by = {}
    for share in (0.25, 0.5, 1.0):
        scores = [
            t["val_score"]
            for t in trials
            if t["compliant"] and t["elapsed_s"] <= budget * share and t["val_score"] is not None
        ]
        best_by[f"{share:g}"] = max(scores) if scores else None
    return {
        "trials": len(trials),
        "failed": sum(1 for t in trials if t["error"]),
        "trials_per_minute": 60.0 * len(trials) / run["search_seconds"] if run["search_seconds"] else None,
        "best_validation_by_share_of_search": best_by,
    }


def trials_part(args: argparse.Namespace) -> dict[str, Any]:
    """Part ``trials``: the same search of the sensors table (edge profile, every family), its trials in this
    machine's forked search process one at a time, then on Spark ``local[2]`` with 2 concurrent trials.

    Trials per minute count the search's own seconds (Spark's and its workers' start-up is reported apart, as it
    is outside a build's budget); the best validation score of the compliant trials is compared at equal wall
    time: by a quarter, half and all of the search's seconds. Each trial's latency is timed where it ran (two
    concurrent trials share the 2 cores with the JVM); the chosen model is re-measured on the driver either way.
    """
    import pandas as pd

    from kepler.runtimes.benchmark import machine

    summary: dict[str, Any] = {
        "table": f"examples/data/sensors.csv, first {args.trial_rows} rows",
        "budget_s": args.trials_budget,
        "target": "edge (1 thread per trial)",
        "machine": machine(),
        "load_average_before": os.getloadavg()[0],  # the cores are shared: a busy machine skews both runs
    }
    with tempfile.TemporaryDirectory(prefix="kepler-scale-trials-", dir=args.scratch) as scratch:
        table = Path(scratch) / "sensors.csv"
        pd.read_csv(SENSORS).head(args.trial_rows).to_csv(table, index=False)
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        runs = {
            "serial": _search(table, args.trials_budget, args.seed, None, None),
            "spark_local2": _search(table, args.trials_budget, args.seed, "local[2]", 2),
        }
    for name, run in runs.items():
        figures = _trial_figures(run, run["search_seconds"])
        summary[name] = {**figures, **{k: v for k, v in run.items() if k != "trials"}}
        print(
            f"{name}: {figures['trials']} trials in {run['search_seconds']:.1f} s "
            f"({figures['trials_per_minute']:.1f}/min), best validation {run['metric']} by 25/50/100% of the "
            f"search: {figures['best_validation_by_share_of_search']}, chosen {run['best_algorithm']} "
            f"(test {run['test_score']:.4f})",
            flush=True,
        )
    serial, spark = summary["serial"], summary["spark_local2"]
    summary["goals"] = {
        "more_trials_per_minute_on_spark": (spark["trials_per_minute"] or 0)
        > (serial["trials_per_minute"] or 0),
    }
    return summary


def write_trials(summary: dict[str, Any], folder: Path) -> None:
    """results/scale-trials.json and .md."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "scale-trials.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    metric = summary["serial"]["metric"]

    def best(run: dict[str, Any], share: str) -> str:
        value = run["best_validation_by_share_of_search"][share]
        return "—" if value is None else f"{value:.4f}"

    lines = [
        f"AutoML trials, {summary['table']}, {summary['budget_s']:g} s budget, target {summary['target']}; "
        f"{summary['machine']['cpu']}, {summary['machine']['cores']} cores "
        f"(1-minute load average {summary['load_average_before']:.1f} before).",
        "",
        f"| search | trials | trials/min | best validation {metric} at 25% / 50% / 100% of the search | "
        f"chosen (test {metric}) | Spark start-up (outside the budget) |",
        "|---|---|---|---|---|---|",
    ]
    for name, label in (
        ("serial", "this machine, 1 trial at a time"),
        ("spark_local2", "Spark local[2], 2 concurrent"),
    ):
        run = summary[name]
        startup = run["spark"]["startup_seconds"] if run.get("spark") else None
        lines.append(
            f"| {label} | {run['trials']} | {run['trials_per_minute']:.1f} | "
            f"{best(run, '0.25')} / {best(run, '0.5')} / {best(run, '1')} | "
            f"{run['best_algorithm']} ({run['test_score']:.4f}) | "
            + ("—" if startup is None else f"{startup:.1f} s")
            + " |"
        )
    (folder / "scale-trials.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


PARTS = {"score": score_part, "trials": trials_part}


def write_score(summary: dict[str, Any], folder: Path, model: str) -> None:
    """results/scale-score.{json,md} (XGBoost) or results/scale-score-random_forest.{json,md}."""
    folder.mkdir(parents=True, exist_ok=True)
    name = "scale-score" if model == "xgboost" else f"scale-score-{model}"
    (folder / f"{name}.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    mib = 2**20
    rows = summary["rows"]
    lines = [
        f"Batch scoring, {rows:,} rows × {summary['features']} features (Parquet, {summary['input_bytes'] / mib:.0f} MiB), "
        f"{summary['model']}; {summary['machine']['cpu']}, {summary['machine']['cores']} cores "
        f"(1-minute load average {summary['load_average_before'][0]:.1f} before, "
        f"{summary['load_average_after'][0]:.1f} after: the machine is shared, so figures vary run to run).",
        "",
        "| run | wall | rows/s | rows/s per core | peak RSS |",
        "|---|---|---|---|---|",
        f"| `kepler score`, 1 process (whole command) | {summary['kepler_local']['seconds']:.1f} s | "
        f"{summary['kepler_local']['rows_per_s']:,.0f} | {summary['kepler_local']['rows_per_s_per_core']:,.0f} | "
        f"{summary['kepler_local']['peak_rss_bytes'] / mib:,.0f} MiB |",
        f"| `kp.score(spark=local[2])` | {summary['kepler_spark']['seconds']:.1f} s | "
        f"{summary['kepler_spark']['rows_per_s']:,.0f} | {summary['kepler_spark']['rows_per_s_per_core']:,.0f} | "
        f"{summary['spark_peak_rss_bytes'] / mib:,.0f} MiB (whole Spark process tree, both jobs) |",
        f"| native model's UDF, local[2], same session | {summary['native_spark']['seconds']:.1f} s | "
        f"{summary['native_spark']['rows_per_s']:,.0f} | {summary['native_spark']['rows_per_s_per_core']:,.0f} | "
        f"(same tree) |",
        "",
        f"goals: ≥ 1,000,000 rows/s per core {'met' if summary['goals']['per_core_1M'] else 'NOT met'}; "
        f"faster than the native UDF {'met' if summary['goals']['faster_than_native_udf'] else 'NOT met'}",
    ]
    (folder / f"{name}.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["score", "trials", "all"], default="all")
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument(
        "--model", choices=sorted(MODELS), default="xgboost", help="The 100-tree model to score."
    )
    parser.add_argument(
        "--target", choices=sorted(TARGETS), default="cloud-1t", help="The profile the model is compiled for."
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument(
        "--scratch", type=Path, default=None, help="Where the data goes (default: the temp folder)."
    )
    parser.add_argument(
        "--trials-budget", type=float, default=60.0, help="Time budget of each search (part trials)."
    )
    parser.add_argument(
        "--trial-rows", type=int, default=2000, help="Rows of the sensors table (part trials)."
    )
    parser.add_argument("--seed", type=int, default=0, help="Seed of the searches (part trials).")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        artifact, native, data, folder = (Path(p) for p in args.child)
        print(json.dumps(spark_child(artifact, native, data, folder)), flush=True)
        return
    parts = list(PARTS) if args.part == "all" else [args.part]
    for part in parts:
        summary = PARTS[part](args)
        if part == "score":
            write_score(summary, args.output, args.model)
        elif part == "trials":
            write_trials(summary, args.output)
        print(json.dumps({part: summary.get("goals", summary)}), flush=True)


if __name__ == "__main__":
    main()
