"""Kepler's constraint-aware search against plain FLAML on the example data and the corpus, same budget.

For every table, Kepler searches under the edge profile's budgets, measured on each compiled candidate;
plain FLAML searches the same rows with the same metric, the same time budget and no constraints. Both
are scored on one held-out test split that neither search saw (Kepler's split, by seed). FLAML gets the
typed table that Kepler's own search gets, with positional column names (``c0``, ``c1``...): LightGBM
rejects JSON characters in feature names, and this benchmark compares searches, not header handling.

Usage:
    python benchmarks/automl_vs_flaml.py                      # 30 s each, every table, writes benchmarks/results/
    python benchmarks/automl_vs_flaml.py --budget 5 --tables sensors iris --output /tmp/out
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import kepler as kp
from kepler.automl.run import split_test
from kepler.runtimes.benchmark import machine

sys.path.insert(0, str(Path(__file__).resolve().parent))
import corpus

SENSORS = Path(__file__).resolve().parents[1] / "examples" / "data" / "sensors.csv"
RESULTS = Path(__file__).parent / "results"


def _metric(dataset: Any) -> str:
    if dataset.task == "regression":
        return "r2"
    return "roc_auc" if dataset.label.nunique() == 2 else "accuracy"


def _score(metric: str, truth: Any, predicted: Any, proba: Any, classes: list[Any], positive: Any) -> float:
    from sklearn.metrics import accuracy_score, r2_score, roc_auc_score

    if metric == "r2":
        return float(r2_score(truth, predicted))
    if metric == "accuracy":
        return float(accuracy_score(truth, predicted))
    return float(roc_auc_score(truth == positive, proba[:, classes.index(positive)]))


def plain_flaml(
    x_rest: Any, y_rest: Any, x_test: Any, y_test: Any, metric: str, positive: Any, budget: float, seed: int
) -> dict[str, Any]:
    """FLAML's AutoML with its defaults, the same metric and time budget, no constraints."""
    from flaml import AutoML

    rename = {name: f"c{i}" for i, name in enumerate(x_rest.columns)}
    if metric != "r2":  # FLAML's XGBoost learner needs codes 0..k-1 for text labels
        labels = sorted(set(y_rest) | set(y_test), key=str)
        code = {label: i for i, label in enumerate(labels)}
        y_rest, y_test = y_rest.map(code), y_test.map(code)
        positive = code.get(positive, positive)
    automl = AutoML()
    task = "regression" if metric == "r2" else "classification"
    started = time.perf_counter()
    automl.fit(
        x_rest.rename(columns=rename),
        y_rest,
        task=task,
        metric=metric,
        time_budget=budget,
        seed=seed,
        verbose=0,
        log_file_name="",
        mlflow_logging=False,
    )
    seconds = time.perf_counter() - started
    test = x_test.rename(columns=rename)
    proba = automl.predict_proba(test) if task == "classification" else None
    classes = list(automl.classes_) if task == "classification" else []
    score = _score(metric, y_test, automl.predict(test), proba, classes, positive)
    return {"best_estimator": automl.best_estimator, "test_score": score, "search_seconds": seconds}


def kepler_search(dataset: Any, label: str, budget: float, seed: int, workdir: Path) -> dict[str, Any]:
    """Kepler's search on the edge target; the score is the compiled artifact's on the held-out split."""
    started = time.perf_counter()
    result = kp.automl.automl_pipeline(
        dataset, label, optimization_time=budget, environment="edge", seed=seed, output=workdir / "artifact"
    )
    total = time.perf_counter() - started
    return {
        "best_algorithm": result["best_algorithm"],
        "test_score": result["test_metrics"]["score"],
        "metric": result["metric"],
        "search_seconds": result["search_seconds"],
        "total_seconds": total,
        "trials": len(result["trials"]),
        "compliant_trials": sum(t["compliant"] for t in result["trials"]),
        "size_mb": result.artifact.manifest.size_bytes / 2**20,
    }


def run_table(name: str, path: Path, label: str, budget: float, seed: int) -> dict[str, Any]:
    """One table: both searches on the same split."""
    dataset = kp.data.load(path, label=label)
    metric = _metric(dataset)
    x_rest, y_rest, x_test, y_test = split_test(dataset.frame, dataset.label, dataset.task, seed)
    positive = None
    if metric == "roc_auc":
        counts = dataset.label.value_counts()
        positive = counts.idxmin()
    with tempfile.TemporaryDirectory(prefix="kepler-automl-bench-") as scratch:
        try:
            ours = kepler_search(dataset, label, budget, seed, Path(scratch))
        except kp.errors.KeplerError as exc:
            ours = {"error": f"{type(exc).__name__}: {exc}"}
    try:
        theirs = plain_flaml(x_rest, y_rest, x_test, y_test, metric, positive, budget, seed)
    except Exception as exc:
        theirs = {
            "error": f"{type(exc).__name__}: {str(exc)[:200]}",
            "test_score": float("nan"),
            "best_estimator": "failed",
            "search_seconds": float("nan"),
        }
    row = {
        "table": name,
        "rows": len(dataset),
        "columns": len(dataset.features),
        "test_rows": int(len(x_test)),
        "metric": metric,
        "budget_s": budget,
        "kepler": ours,
        "flaml": theirs,
    }
    if "error" not in ours:
        # Scores can be negative (R²): the ratio is taken as written, and the goal is checked on it.
        row["score_ratio"] = ours["test_score"] / theirs["test_score"] if theirs["test_score"] else None
        row["search_overrun"] = ours["search_seconds"] / budget
    return row


def _tables(names: list[str] | None, folder: Path) -> list[tuple[str, Path, str]]:
    tables = [("sensors", SENSORS, "failure")]
    tables += [(t.name, t.path, t.label) for t in corpus.write_corpus(folder)]
    return [t for t in tables if not names or t[0] in names]


def _markdown(rows: list[dict[str, Any]], budget: float) -> str:
    lines = [
        f"| table | rows × cols | metric | Kepler (edge, compiled) | plain FLAML | ratio | Kepler search s "
        f"(budget {budget:g}) | Kepler model |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        ours, theirs = row["kepler"], row["flaml"]
        if "error" in ours:
            lines.append(
                f"| {row['table']} | {row['rows']} × {row['columns']} | {row['metric']} | failed: "
                f"{ours['error'][:80]} | {theirs['test_score']:.4f} | — | — | — |"
            )
            continue
        lines.append(
            f"| {row['table']} | {row['rows']} × {row['columns']} | {row['metric']} | {ours['test_score']:.4f} "
            f"| {theirs['test_score']:.4f} ({theirs['best_estimator']}) | {row['score_ratio']:.3f} | "
            f"{ours['search_seconds']:.1f} ({row['search_overrun']:.2f}×) | {ours['best_algorithm']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=30.0, help="seconds for each search")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--tables", nargs="*", help="only these tables (default: sensors and the whole corpus)"
    )
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="kepler-corpus-") as folder:
        rows = []
        for name, path, label in _tables(args.tables, Path(folder)):
            rows.append(run_table(name, path, label, args.budget, args.seed))
            print(_markdown(rows[-1:], args.budget).splitlines()[-1], file=sys.stderr, flush=True)
    done = [r for r in rows if "score_ratio" in r]
    summary = {
        "tables": len(rows),
        "failed": len(rows) - len(done),
        "min_score_ratio": min(
            (r["score_ratio"] for r in done if r["score_ratio"] is not None), default=None
        ),
        "median_score_ratio": statistics.median(r["score_ratio"] for r in done) if done else None,
        "max_search_overrun": max((r["search_overrun"] for r in done), default=None),
        "tables_below_0_98": [
            r["table"] for r in done if r["score_ratio"] is not None and r["score_ratio"] < 0.98
        ],
        "tables_over_1_2x": [r["table"] for r in done if r["search_overrun"] > 1.2],
    }
    report = {
        "machine": machine(),
        "budget_s": args.budget,
        "seed": args.seed,
        "summary": summary,
        "results": rows,
    }
    markdown = _markdown(rows, args.budget)
    print(markdown)
    print(f"\n{json.dumps(summary)}", file=sys.stderr)
    output = args.output or RESULTS
    output.mkdir(parents=True, exist_ok=True)
    (output / "automl_vs_flaml.json").write_text(json.dumps(report, indent=2, default=str))
    m = report["machine"]
    (output / "automl_vs_flaml.md").write_text(
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['platform']}, Python {m['python']}\n\n{markdown}\n\n"
        f"Summary: {json.dumps(summary)}\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
