"""Kepler's constraint-aware search against plain FLAML on the example data, same time budget.

Kepler searches under the edge profile's budgets, measured on each compiled candidate; plain
FLAML searches the same table with the same metric and no constraints. Both are scored on one
held-out test split that neither search saw. The chosen Kepler artifact is then re-measured
independently (fresh session, 1 thread, batch 1).

Usage:
    python benchmarks/automl_vs_flaml.py                      # 60 s each, writes benchmarks/results/
    python benchmarks/automl_vs_flaml.py --budget 10 --output /tmp/out
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


import kepler as kp
from kepler.automl.run import split_test
from kepler.runtimes.benchmark import machine, time_calls

DATA = Path(__file__).resolve().parents[1] / "examples" / "data" / "sensors.csv"
RESULTS = Path(__file__).parent / "results"
METRIC = "roc_auc"


def plain_flaml(x_rest: Any, y_rest: Any, x_test: Any, y_test: Any, budget: float, seed: int) -> dict[str, Any]:
    """FLAML's AutoML with its defaults, the same metric and time budget, no constraints."""
    from flaml import AutoML
    from sklearn.metrics import roc_auc_score

    automl = AutoML()
    started = time.perf_counter()
    automl.fit(x_rest, y_rest, task="classification", metric=METRIC, time_budget=budget, seed=seed, verbose=0,
               log_file_name="")
    seconds = time.perf_counter() - started
    positive = list(automl.classes_).index(1)
    scores = automl.predict_proba(x_test)[:, positive]
    one = x_test.head(1)
    native = time_calls(lambda: automl.predict_proba(one), min_iters=200, min_time_s=1.0)
    return {"best_estimator": automl.best_estimator, "test_score": float(roc_auc_score(y_test, scores)),
            "search_seconds": seconds, "native_p50_ms": native["p50_ms"], "native_p99_ms": native["p99_ms"]}


def kepler_search(dataset: Any, x_test: Any, y_test: Any, budget: float, seed: int, workdir: Path) -> dict[str, Any]:
    """Kepler's search on the edge target, then an independent re-measurement of the artifact."""
    result = kp.automl.automl_pipeline(dataset, "failure", optimization_time=budget, environment="edge", seed=seed,
                                       output=workdir / "artifact")
    predictor = kp.runtimes.load(workdir / "artifact", target="edge")
    one = predictor.fastest_form(x_test.head(1))
    timing = time_calls(lambda: predictor.predict_proba(one), min_iters=2000, min_time_s=2.0)
    size_mb = predictor.artifact.size_bytes / 2**20
    profile = kp.targets.load_profile("edge")
    return {
        "best_algorithm": result["best_algorithm"], "test_score": result["test_metrics"]["score"],
        "search_seconds": result["search_seconds"], "trials": len(result["trials"]),
        "compliant_trials": sum(t["compliant"] for t in result["trials"]),
        "remeasured_p99_ms": timing["p99_ms"], "remeasured_p50_ms": timing["p50_ms"], "size_mb": size_mb,
        "threads": predictor.session_settings["intra_op_num_threads"],
        "within_budget": timing["p99_ms"] <= profile.latency_p99_ms and size_mb <= profile.size_mb,
        "budgets": {"latency_p99_ms": profile.latency_p99_ms, "size_mb": profile.size_mb},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=60.0, help="seconds for each search")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)

    dataset = kp.data.load(DATA, label="failure")
    x_rest, y_rest, x_test, y_test = split_test(dataset.frame, dataset.label, dataset.task, args.seed)
    with tempfile.TemporaryDirectory(prefix="kepler-automl-bench-") as scratch:
        ours = kepler_search(dataset, x_test, y_test, args.budget, args.seed, Path(scratch))
    theirs = plain_flaml(x_rest, y_rest, x_test, y_test, args.budget, args.seed)
    report = {
        "machine": machine(), "data": str(DATA.name), "rows": len(dataset), "test_rows": int(len(x_test)),
        "metric": METRIC, "budget_s": args.budget, "kepler": ours, "flaml": theirs,
        "score_ratio": ours["test_score"] / theirs["test_score"],
        "search_overrun": ours["search_seconds"] / args.budget,
    }
    lines = [
        "| | Kepler (edge budgets, compiled) | plain FLAML (no constraints) |",
        "|---|---|---|",
        f"| test {METRIC} ({report['test_rows']} held-out rows) | {ours['test_score']:.4f} | {theirs['test_score']:.4f} |",
        f"| chosen model | {ours['best_algorithm']} | {theirs['best_estimator']} |",
        f"| search time (budget {args.budget:.0f} s) | {ours['search_seconds']:.1f} s | {theirs['search_seconds']:.1f} s |",
        f"| p99 / p50 at batch 1 | {ours['remeasured_p99_ms'] * 1e3:.1f} / {ours['remeasured_p50_ms'] * 1e3:.1f} µs "
        f"(compiled, re-measured, {ours['threads']} thread) | {theirs['native_p99_ms'] * 1e3:.0f} / "
        f"{theirs['native_p50_ms'] * 1e3:.0f} µs (native predict_proba) |",
        f"| model size | {ours['size_mb']:.3f} MB (budget {ours['budgets']['size_mb']:g} MB) | — |",
        f"| trials | {ours['trials']} ({ours['compliant_trials']} within budgets) | — |",
    ]
    markdown = "\n".join(lines)
    print(markdown)
    print(f"\nscore ratio Kepler/FLAML {report['score_ratio']:.4f}; search time {report['search_overrun']:.2f}× budget; "
          f"artifact within edge budgets: {ours['within_budget']}", file=sys.stderr)
    output = args.output or RESULTS
    output.mkdir(parents=True, exist_ok=True)
    (output / "automl_vs_flaml.json").write_text(json.dumps(report, indent=2, default=str))
    m = report["machine"]
    (output / "automl_vs_flaml.md").write_text(
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['platform']}, Python {m['python']}\n\n{markdown}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
