"""Native vs compiled: batch-1 latency, batch-10k throughput, size and parity for a fixed model set.

Trains XGBoost (100 trees, depth 6), RandomForest (100 trees, depth 10), LightGBM
(100 trees) and a LogisticRegression Pipeline with a ColumnTransformer on one fixed
synthetic table of 20 features, compiles each for the edge profile (ONNX, 1 thread), the
cloud profile (ONNX and the compiled C backend, all cores) and the cloud profile on one
thread, and times native and compiled in the same run. Every figure is a median over
interleaved rounds so that drift on a shared machine hits both sides alike. At batch 10,000
each backend the artifact holds is timed on its own (forced) beside the one the artifact
chose for that batch size.

Usage:
    python benchmarks/compile_vs_native.py                 # full run, writes benchmarks/results/
    python benchmarks/compile_vs_native.py --quick         # small models, short timings (smoke test)
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import kepler as kp
from kepler.runtimes.benchmark import limit_native_threads, machine, time_calls

RESULTS = Path(__file__).parent / "results"
N_FEATURES = 20


def dataset(rows: int) -> tuple[pd.DataFrame, np.ndarray]:
    """The fixed synthetic table: 20 numeric features, a binary label."""
    from sklearn.datasets import make_classification

    x, y = make_classification(
        n_samples=rows, n_features=N_FEATURES, n_informative=12, n_redundant=4, class_sep=0.8, random_state=0
    )
    return pd.DataFrame(x, columns=[f"sensor_{i:02d}" for i in range(N_FEATURES)]), y


def models(quick: bool) -> dict[str, tuple[Any, bool]]:
    """name -> (unfitted model, fit on a DataFrame?)."""
    import lightgbm as lgb
    import xgboost as xgb
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import MinMaxScaler, StandardScaler

    trees = 10 if quick else 100
    columns = [f"sensor_{i:02d}" for i in range(N_FEATURES)]
    logistic = Pipeline(
        [
            (
                "columns",
                ColumnTransformer(
                    [("standard", StandardScaler(), columns[:10]), ("minmax", MinMaxScaler(), columns[10:])]
                ),
            ),
            ("model", LogisticRegression(max_iter=500)),
        ]
    )
    return {
        "xgboost": (xgb.XGBClassifier(n_estimators=trees, max_depth=6, random_state=0, n_jobs=1), False),
        "random_forest": (
            RandomForestClassifier(
                n_estimators=trees, max_depth=6 if quick else 10, random_state=0, n_jobs=1
            ),
            False,
        ),
        "lightgbm": (lgb.LGBMClassifier(n_estimators=trees, random_state=0, n_jobs=1, verbose=-1), False),
        "logistic_pipeline": (logistic, True),
    }


TARGETS = ("edge", "cloud-1t", "cloud")
# --quick (a smoke test of the script) leaves out the 2-thread cloud profile: the same code as cloud-1t.
QUICK_TARGETS = ("edge", "cloud-1t")


def profile_for(target: str) -> Any:
    """The profile of a benchmark target: ``cloud-1t`` is the cloud profile on one thread."""
    import dataclasses

    from kepler.targets import load_profile

    if target == "cloud-1t":
        return dataclasses.replace(load_profile("cloud"), name="cloud-1t", threads=1)
    return load_profile(target)


def interleaved_p50(
    calls: dict[str, Callable[[], Any]],
    rounds: int,
    seconds: float,
    warmup_s: float = 0.1,
    *,
    min_iters: int = 200,
) -> dict[str, float]:
    """Median over rounds of each call's p50 (ms); the calls take turns in every round."""
    per_call: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            per_call[name].append(
                time_calls(
                    call, min_iters=min_iters, min_time_s=seconds, max_time_s=seconds * 4, warmup_s=warmup_s
                )["p50_ms"]
            )
    return {name: statistics.median(values) for name, values in per_call.items()}


def measure(
    name: str, model: Any, frame: pd.DataFrame, labels: np.ndarray, target: str, workdir: Path, quick: bool
) -> dict[str, Any]:
    """Compiles one model for one target and times native against compiled (each backend, and the chosen one)."""
    as_frame = models(quick)[name][1]
    native_rows = frame if as_frame else frame.to_numpy()
    profile = profile_for(target)
    artifact = kp.compile(
        model, profile, native_rows[:2000], output=workdir / f"{name}-{target}", benchmark=False
    )
    predictor = artifact.predictor(profile)
    limit_native_threads(model, predictor.profile.resolved_threads)

    one_native = native_rows[:1] if as_frame else native_rows[:1]
    one_compiled = predictor.fastest_form(frame.iloc[:1] if as_frame else frame.to_numpy()[:1])
    feed = predictor.feed(one_compiled)
    proba_name = [artifact.output_schema.probabilities]
    session = predictor.session
    # --quick is a smoke test of the script (every model, target and figure), never a published figure: its
    # timings are as short as still give each figure a few calls.
    rounds, seconds, warmup_s = (3, 0.01, 0.01) if quick else (7, 0.4, 0.1)
    batch1 = interleaved_p50(
        {
            "native": lambda: model.predict_proba(one_native),
            "predictor": lambda: predictor.predict_proba(one_compiled),
            "session": lambda: session.run(proba_name, feed),
        },
        rounds,
        seconds,
        warmup_s,
    )

    big = 1000 if quick else 10_000
    index = np.resize(np.arange(len(frame)), big)
    big_native = native_rows.iloc[index] if as_frame else native_rows[index]
    big_frame = frame.iloc[index] if as_frame else frame.to_numpy()[index]
    plan = artifact.manifest.backends
    held = ["onnxruntime", *(b.name for b in plan.compiled)] if plan is not None else ["onnxruntime"]
    forced = {b: kp.runtimes.load(artifact.path, profile, backend=b) for b in held}
    big_compiled = predictor.fastest_form(big_frame)
    calls: dict[str, Callable[[], Any]] = {
        "native": lambda: model.predict_proba(big_native),
        "chosen": lambda: predictor.predict_proba(big_compiled),
    }
    for backend, forced_predictor in forced.items():
        rows = forced_predictor.fastest_form(big_frame)
        calls[backend] = lambda p=forced_predictor, r=rows: p.predict_proba(r)
    big_rounds, big_seconds = (2, 0.05) if quick else (5, 1.0)
    big_ms = interleaved_p50(calls, big_rounds, big_seconds, warmup_s, min_iters=5)
    reference = forced["onnxruntime"].predict_proba(big_compiled)
    backend_diff = {
        b: float(np.abs(p.predict_proba(big_compiled) - reference).max()) for b, p in forced.items()
    }

    parity = artifact.parity
    return {
        "model": name,
        "target": target,
        "threads": predictor.profile.resolved_threads,
        "native_p50_us": batch1["native"] * 1e3,
        "compiled_p50_us": batch1["predictor"] * 1e3,
        "session_p50_us": batch1["session"] * 1e3,
        "speedup_batch1": batch1["native"] / batch1["predictor"],
        "predictor_overhead": batch1["predictor"] / batch1["session"] - 1.0,
        "batch": big,
        "backend_batch1": predictor.backend_for(1),
        "backend_batch": predictor.backend_for(big),
        "choice": [list(c) for c in plan.choice] if plan is not None else [[1, "onnxruntime"]],
        "skipped": dict(plan.skipped) if plan is not None else {},
        "native_rows_s": big / (big_ms["native"] / 1e3),
        "compiled_rows_s": big / (big_ms["chosen"] / 1e3),
        "backend_rows_s": {b: big / (big_ms[b] / 1e3) for b in forced},
        "backend_max_abs_diff_vs_onnx": backend_diff,
        "throughput_ratio": big_ms["native"] / big_ms["chosen"],
        "backend_ratio": {b: big_ms["native"] / big_ms[b] for b in forced},
        "size_mb": artifact.size_bytes / 2**20,
        "parity_max_abs_diff": parity.max_abs_diff,
        "label_agreement": parity.label_agreement,
        "parity_passed": parity.passed,
        "backend_parity": {b.name: b.parity.max_abs_diff for b in plan.compiled if b.parity}
        if plan is not None
        else {},
    }


def table(results: list[dict[str, Any]]) -> str:
    """The results as a Markdown table."""
    columns = [
        "model",
        "target",
        "native p50 b=1",
        "compiled p50 b=1",
        "speed-up",
        "Predictor overhead",
        "native rows/s b=10k",
        "onnxruntime rows/s b=10k",
        "c-trees rows/s b=10k",
        "serves b=1 / b=10k",
        "compiled/native throughput",
        "size MB",
        "parity max abs diff",
        "labels agree",
    ]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for r in results:
        per = r["backend_rows_s"]
        c_trees = f"{per['c-trees']:,.0f}" if "c-trees" in per else "—"
        lines.append(
            f"| {r['model']} | {r['target']} ({r['threads']}t) | {r['native_p50_us']:.0f} µs | {r['compiled_p50_us']:.1f} µs | "
            f"{r['speedup_batch1']:.0f}× | {r['predictor_overhead']:+.0%} | {r['native_rows_s']:,.0f} | "
            f"{per['onnxruntime']:,.0f} | {c_trees} | {r['backend_batch1']} / {r['backend_batch']} | "
            f"{r['throughput_ratio']:.2f}× | {r['size_mb']:.3f} | "
            f"{r['parity_max_abs_diff']:.1e} | {r['label_agreement']:.2%} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small models and short timings (a smoke test)")
    parser.add_argument("--output", type=Path, default=None, help="folder for the JSON and Markdown results")
    args = parser.parse_args(argv)
    rows = 4000 if args.quick else 20_000
    frame, labels = dataset(rows)
    results = []
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="kepler-bench-") as scratch:
        for name, (model, as_frame) in models(args.quick).items():
            model.fit(frame if as_frame else frame.to_numpy(), labels)
            for target in QUICK_TARGETS if args.quick else TARGETS:
                result = measure(name, model, frame, labels, target, Path(scratch), args.quick)
                results.append(result)
                print(
                    f"{name:18s} {target:5s} native {result['native_p50_us']:9.1f} µs  compiled "
                    f"{result['compiled_p50_us']:7.1f} µs  speed-up {result['speedup_batch1']:6.1f}×  "
                    f"overhead {result['predictor_overhead']:+.1%}  throughput ratio {result['throughput_ratio']:.2f}×",
                    file=sys.stderr,
                )
    report = {
        "machine": machine(),
        "rows": rows,
        "quick": args.quick,
        "seconds": round(time.time() - started, 1),
        "libraries": {k: v for k, v in kp.compilers.environment.library_versions().items()},
        "results": results,
    }
    markdown = table(results)
    print(markdown)
    output = args.output or (None if args.quick else RESULTS)
    if output:
        output.mkdir(parents=True, exist_ok=True)
        (output / "compile_vs_native.json").write_text(json.dumps(report, indent=2))
        (output / "compile_vs_native.md").write_text(
            f"Machine: {report['machine']['cpu']}, {report['machine']['cores']} cores, {report['machine']['platform']}, "
            f"Python {report['machine']['python']}\n\n{markdown}\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
