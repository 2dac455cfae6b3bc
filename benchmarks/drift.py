"""Drift on a long table: `kp.monitoring.data_drift` against a stored reference profile, and Evidently 0.7.

The table: 1,000,000 rows × 50 columns (30 numeric, 20 categorical), the reference and the current
drawn from the same generator, where the current moves some columns by known amounts (mean shifts of
0.02 to 1 standard deviation, one close to each side of the 0.1 threshold, a scale change, shifted
category shares, a new category, a changed missing rate) and leaves the rest alone.

Kepler: the reference is profiled once (timed apart) and stored as JSON; each run loads the profile and
tests the current table, already in memory, in a fresh process. Reported: the first call (with the
one-off imports of scipy and the rest), the median of ``--runs`` calls after it, and memory: the process's resident set before the call (interpreter, libraries and the table)
and its peak during the call (``VmHWM`` reset through ``/proc/self/clear_refs``), against the table's
own size (``DataFrame.memory_usage(deep=True)``); the process runs with glibc's mmap threshold fixed and
Arrow on the system allocator, so that freed memory leaves the resident set. Goals: ≤ 5 s, and the call adding ≤ 0.5× the table
(so table plus call ≤ 1.5× the table).

Evidently 0.7 runs in its own virtualenv (``--evidently-venv``, created when missing with
``pip install 'evidently>=0.7,<0.8' 'pandas<3'``: Evidently 0.7 imports a private function that
pandas 3 removed), never in Kepler's. It computes the same drift per column, one ``ValueDrift`` per
column, from the raw reference table, with the same methods: ``auto`` (each side's own pick; the picks
are compared too) and ``psi`` for every column. Reported: the time ratio and how often the per-column
verdicts agree (goal ≥ 95%). Kepler's ``missing_share`` rows have no Evidently counterpart and are
listed apart. When Evidently cannot be installed, the script says so and skips that part.

Usage:
    python benchmarks/drift.py                          # 1M × 50, 3 runs, writes results/drift.{json,md}
    python benchmarks/drift.py --rows 200000 --runs 1 --output /tmp/out
    python benchmarks/drift.py --skip-evidently
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

RESULTS = Path(__file__).parent / "results"
GOAL_SECONDS = 5.0
GOAL_MEMORY = 1.5  # peak of table + call, in tables
GOAL_AGREEMENT = 0.95
DEFAULT_VENV = Path("/tmp/evidently-bench-venv")
# Memory is read from the process's resident set; freed memory must leave it for that to mean anything.
# glibc keeps freed arrays in its heap once its mmap threshold has grown (its default), and Arrow's own
# allocator keeps freed buffers: a fixed threshold and the system allocator give it back.
MEASURED_ENV = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072", "ARROW_DEFAULT_MEMORY_POOL": "system"}
EVIDENTLY_NAMES = {  # Evidently's display names -> Kepler's method names
    "K-S p_value": "ks",
    "chi-square p_value": "chi2",
    "Z-test p_value": "z",
    "Wasserstein distance (normed)": "wasserstein",
    "Jensen-Shannon distance": "jensenshannon",
    "PSI": "psi",
}
NUMERIC_SHIFTS = {  # column -> mean shift in standard deviations
    "n00": 0.02,
    "n01": 0.05,
    "n02": 0.08,
    "n03": 0.09,
    "n04": 0.11,
    "n05": 0.15,
    "n06": 0.3,
    "n07": 1.0,
}


def make_tables(rows: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, str]]:
    """The reference and current tables (30 numeric and 20 categorical columns) and what drifts where."""
    rng = np.random.default_rng(seed)
    truth: dict[str, str] = {}

    def numeric(i: int, size: int, current: bool) -> np.ndarray:
        kind = i % 5
        if kind == 0:
            values = rng.normal(50.0, 10.0, size)
        elif kind == 1:
            values = rng.lognormal(1.0, 0.6, size)
        elif kind == 2:
            values = rng.gamma(2.0, 3.0, size)
        elif kind == 3:
            values = rng.uniform(-5.0, 5.0, size)
        else:
            values = rng.poisson(4.0, size).astype(float)  # about 15 distinct values: kept exactly
        name = f"n{i:02d}"
        if current and name in NUMERIC_SHIFTS:
            values = values + NUMERIC_SHIFTS[name] * float(np.std(values))
        if current and name == "n08":
            values = values.mean() + (values - values.mean()) * 1.15
        if i >= 27:  # dropouts: 5% everywhere, 15% in the current n29
            rate = 0.15 if current and i == 29 else 0.05
            values[rng.random(size) < rate] = np.nan
        return values

    def categorical(i: int, size: int, current: bool) -> Any:
        levels = [3, 5, 8, 12, 30][i % 5]
        names = np.array([f"c{i:02d}_{k:02d}" for k in range(levels)], dtype=object)
        weights = 1.0 / np.arange(1, levels + 1)
        if current and i == 0:
            weights[0] *= 1.5  # one share moves
        if current and i == 1:
            weights[-1] *= 1.15  # a small move
        if current and i == 2:
            names = names.copy()
            names[-1] = f"c{i:02d}_new"  # a category the reference never had
        return rng.choice(names, size, p=weights / weights.sum())

    frames = []
    for current in (False, True):
        columns: dict[str, Any] = {}
        for i in range(30):
            columns[f"n{i:02d}"] = numeric(i, rows, current)
        for i in range(20):
            columns[f"c{i:02d}"] = pd.array(categorical(i, rows, current), dtype="str")
        frames.append(pd.DataFrame(columns))
    for name, shift in NUMERIC_SHIFTS.items():
        truth[name] = f"mean +{shift:g} sd"
    truth.update(
        n08="scale ×1.15",
        n29="missing 5% → 15%",
        c00="one share ×1.5",
        c01="one share ×1.15",
        c02="a new category",
    )
    return frames[0], frames[1], truth


# --------------------------------------------------------------------------- Kepler, in a fresh process


def _vm(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


def kepler_child(
    profile: Path, current: Path, reference: Path, runs: int, methods: list[str]
) -> dict[str, Any]:
    """Runs in a fresh process: loads the current table, then times data_drift against the profile."""
    from kepler.monitoring import ReferenceProfile, data_drift

    table = pd.read_parquet(current)
    table_bytes = int(table.memory_usage(deep=True).sum())
    out: dict[str, Any] = {"table_bytes": table_bytes, "methods": {}}
    # The first call pays the one-off imports (scipy.stats alone is about a second here): timed apart.
    start = time.perf_counter()
    data_drift(ReferenceProfile.load(profile), table)
    out["first_call_seconds"] = time.perf_counter() - start
    for method in methods:
        seconds, peaks, befores = [], [], []
        report = None
        for _ in range(runs):
            before = _vm("VmRSS")
            Path("/proc/self/clear_refs").write_text("5")  # resets the peak (VmHWM) to the current RSS
            start = time.perf_counter()
            loaded = ReferenceProfile.load(profile)
            report = data_drift(loaded, table, method=method)
            seconds.append(time.perf_counter() - start)
            peaks.append(_vm("VmHWM"))
            befores.append(before)
            del loaded
        assert report is not None
        out["methods"][method] = {
            "seconds": seconds,
            "median_seconds": statistics.median(seconds),
            "rss_before_bytes": max(befores),
            "peak_rss_bytes": max(peaks),
            "added_bytes": max(p - b for p, b in zip(peaks, befores, strict=True)),
            "report": report.to_dict(),
        }
    start = time.perf_counter()
    data_drift(ReferenceProfile.load(profile), pd.read_parquet(current))
    out["seconds_with_parquet_read"] = time.perf_counter() - start
    # The exact mode: the reference table itself, every statistic scipy's (memory not measured here).
    raw = pd.read_parquet(reference)
    start = time.perf_counter()
    report = data_drift(raw, table)
    out["exact"] = {"seconds": time.perf_counter() - start, "report": report.to_dict()}
    return out


# --------------------------------------------------------------------------- Evidently, in its own venv

EVIDENTLY_CHILD = textwrap.dedent(
    """
    import json, resource, sys, time
    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift

    reference_path, current_path, method = sys.argv[1], sys.argv[2], sys.argv[3]
    reference, current = pd.read_parquet(reference_path), pd.read_parquet(current_path)
    numeric = [c for c in reference.columns if pd.api.types.is_numeric_dtype(reference[c])]
    categorical = [c for c in reference.columns if c not in numeric]
    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    started = time.perf_counter()
    ref = Dataset.from_pandas(reference, data_definition=definition)
    cur = Dataset.from_pandas(current, data_definition=definition)
    chosen = None if method == "auto" else method
    report = Report([ValueDrift(column=c, method=chosen) for c in reference.columns], include_tests=True)
    snapshot = report.run(current_data=cur, reference_data=ref)
    seconds = time.perf_counter() - started
    data = snapshot.dict()
    failed = {t["metric_config"]["metric_id"]: t["status"] == "FAIL" for t in data["tests"]}
    columns = [
        {
            "column": m["config"]["column"],
            "method": m["config"]["method"],
            "threshold": m["config"]["threshold"],
            "score": m["value"],
            "drifted": failed[m["id"]],
        }
        for m in data["metrics"]
    ]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"seconds": seconds, "peak_rss_bytes": peak, "columns": columns}))
    """
)


def evidently_python(venv: Path) -> tuple[Path | None, str]:
    """The venv's python with Evidently 0.7 importable, creating the venv when missing; or why not."""
    python = venv / "bin" / "python"
    check = [
        str(python),
        "-c",
        "import evidently, sys; sys.exit(0 if evidently.__version__.startswith('0.7') else 1)",
    ]
    if python.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return python, "existing"
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
        install = [str(python), "-m", "pip", "install", "-q", "evidently>=0.7,<0.8", "pandas>=2.2,<3"]
        done = subprocess.run(install, capture_output=True, text=True, timeout=900)
    except (subprocess.SubprocessError, OSError) as exc:
        return None, f"could not create {venv}: {exc}"
    if done.returncode != 0 or subprocess.run(check, capture_output=True).returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        return None, f"pip could not install evidently 0.7 into {venv}: {tail[0]}"
    return python, "created"


def run_evidently(python: Path, reference: Path, current: Path, method: str) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as script:
        script.write(EVIDENTLY_CHILD)
    try:
        done = subprocess.run(
            [str(python), script.name, str(reference), str(current), method],
            capture_output=True,
            text=True,
            timeout=3600,
        )
    finally:
        os.unlink(script.name)
    if done.returncode != 0:
        raise RuntimeError(f"Evidently failed: {done.stderr.strip().splitlines()[-3:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# --------------------------------------------------------------------------- comparison


def compare(kepler: dict[str, Any], evidently: dict[str, Any]) -> dict[str, Any]:
    """Per-column verdicts and methods of both tools (Kepler's value rows; missing_share rows apart)."""
    ours = {r["column"]: r for r in kepler["columns"] if r["method"] != "missing_share"}
    rows = []
    for theirs in evidently["columns"]:
        mine = ours.get(theirs["column"])
        if mine is None:
            continue
        method = EVIDENTLY_NAMES.get(theirs["method"], theirs["method"])
        score = mine["p_value"] if mine["method"] in ("ks", "chi2", "z") else mine["statistic"]
        rows.append(
            {
                "column": mine["column"],
                "kepler_method": mine["method"],
                "evidently_method": method,
                "kepler_score": score,
                "evidently_score": theirs["score"],
                "kepler_drifted": mine["drifted"],
                "evidently_drifted": theirs["drifted"],
                "agree": mine["drifted"] == theirs["drifted"],
            }
        )
    agree = sum(r["agree"] for r in rows)
    return {
        "columns": rows,
        "agreement": agree / len(rows) if rows else None,
        "same_method": sum(r["kepler_method"] == r["evidently_method"] for r in rows),
        "compared": len(rows),
        "disagreements": [r for r in rows if not r["agree"]],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--methods", default="auto,psi", help="Comma-separated methods to run both tools with."
    )
    parser.add_argument("--evidently-venv", type=Path, default=DEFAULT_VENV)
    parser.add_argument("--skip-evidently", action="store_true")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument(
        "--child", nargs=4, metavar=("PROFILE", "CURRENT", "REFERENCE", "RUNS"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if args.child:
        profile, current, reference_path, runs = args.child
        print(
            json.dumps(kepler_child(Path(profile), Path(current), Path(reference_path), int(runs), methods))
        )
        return

    from kepler.monitoring import ReferenceProfile
    from kepler.runtimes.benchmark import machine

    summary: dict[str, Any] = {"rows": args.rows, "columns": 50, "runs": args.runs, "machine": machine()}
    with tempfile.TemporaryDirectory(prefix="kepler-drift-bench-") as scratch:
        folder = Path(scratch)
        reference, current, truth = make_tables(args.rows)
        summary["drifts"] = truth
        reference.to_parquet(folder / "reference.parquet")
        current.to_parquet(folder / "current.parquet")
        start = time.perf_counter()
        profile = ReferenceProfile.from_frame(reference)
        summary["profile_seconds"] = time.perf_counter() - start
        profile.save(folder / "profile.json")
        summary["profile_bytes"] = (folder / "profile.json").stat().st_size
        del reference, current, profile
        print(f"tables and profile ready ({summary['profile_bytes']} bytes of JSON)", flush=True)

        done = subprocess.run(
            [
                sys.executable,
                __file__,
                "--methods",
                ",".join(methods),
                "--child",
                str(folder / "profile.json"),
                str(folder / "current.parquet"),
                str(folder / "reference.parquet"),
                str(args.runs),
            ],
            capture_output=True,
            text=True,
            check=True,
            env=MEASURED_ENV,
        )
        kepler = json.loads(done.stdout.strip().splitlines()[-1])
        summary["kepler"] = kepler
        table = kepler["table_bytes"]
        for method, result in kepler["methods"].items():
            print(
                f"kepler {method}: median {result['median_seconds']:.2f} s over {args.runs} runs; "
                f"table {table / 2**20:.0f} MiB, process before {result['rss_before_bytes'] / 2**20:.0f} MiB, "
                f"peak {result['peak_rss_bytes'] / 2**20:.0f} MiB, call added {result['added_bytes'] / 2**20:.0f} MiB",
                flush=True,
            )

        if args.skip_evidently:
            summary["evidently"] = {"skipped": "--skip-evidently"}
        else:
            python, how = evidently_python(args.evidently_venv)
            if python is None:
                print(f"Evidently skipped: {how}", flush=True)
                summary["evidently"] = {"skipped": how}
            else:
                summary["evidently"] = {"venv": str(args.evidently_venv), "methods": {}}
                for method in methods:
                    result = run_evidently(
                        python, folder / "reference.parquet", folder / "current.parquet", method
                    )
                    compared = compare(kepler["methods"][method]["report"], result)
                    ratio = result["seconds"] / kepler["methods"][method]["median_seconds"]
                    summary["evidently"]["methods"][method] = {
                        "seconds": result["seconds"],
                        "peak_rss_bytes": result["peak_rss_bytes"],
                        "time_ratio": ratio,
                        **compared,
                    }
                    print(
                        f"evidently {method}: {result['seconds']:.1f} s ({ratio:.0f}× Kepler); verdicts agree on "
                        f"{compared['agreement']:.0%} of {compared['compared']} columns; same method on "
                        f"{compared['same_method']}",
                        flush=True,
                    )
                    if method == "auto":
                        exact = compare(kepler["exact"]["report"], result)
                        summary["evidently"]["exact_auto"] = {
                            "time_ratio": result["seconds"] / kepler["exact"]["seconds"],
                            **exact,
                        }

    auto = kepler["methods"].get("auto") or next(iter(kepler["methods"].values()))
    summary["goal"] = {
        "seconds": GOAL_SECONDS,
        "memory_tables": GOAL_MEMORY,
        "agreement": GOAL_AGREEMENT,
        "time_met": auto["median_seconds"] <= GOAL_SECONDS,
        "memory_met": (table + auto["added_bytes"]) / table <= GOAL_MEMORY,
        "agreement_met": all(
            m["agreement"] >= GOAL_AGREEMENT for m in summary["evidently"].get("methods", {}).values()
        )
        if summary["evidently"].get("methods")
        else None,
    }
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "drift.json").write_text(json.dumps(summary, indent=2) + "\n")
    lines = [
        f"Drift, {args.rows:,} rows × 50 columns against a stored reference profile "
        f"({summary['profile_bytes']:,} bytes; profiling the reference took {summary['profile_seconds']:.1f} s).",
        "",
        "| method | Kepler (median) | table | call adds | table + call | Evidently 0.7 | ratio | verdicts agree | same pick |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for method, result in kepler["methods"].items():
        theirs = summary["evidently"].get("methods", {}).get(method)
        lines.append(
            f"| {method} | {result['median_seconds']:.2f} s | {table / 2**20:.0f} MiB | "
            f"{result['added_bytes'] / 2**20:.0f} MiB | {(table + result['added_bytes']) / table:.2f}× | "
            + (
                f"{theirs['seconds']:.1f} s | {theirs['time_ratio']:.0f}× | {theirs['agreement']:.0%} "
                f"({theirs['compared']}) | {theirs['same_method']} |"
                if theirs
                else "skipped | | | |"
            )
        )
    for method, theirs in summary["evidently"].get("methods", {}).items():
        for row in theirs["disagreements"]:
            lines.append(
                f"\n{method}, {row['column']} ({truth.get(row['column'], 'no drift')}): Kepler "
                f"{row['kepler_method']} {row['kepler_score']:.4g} → {'drift' if row['kepler_drifted'] else 'none'}, "
                f"Evidently {row['evidently_method']} {row['evidently_score']:.4g} → "
                f"{'drift' if row['evidently_drifted'] else 'none'}"
            )
    missing = [r for r in auto["report"]["columns"] if r["method"] == "missing_share"]
    lines.append(
        "\nKepler's missing_share rows (no Evidently counterpart): "
        + ", ".join(f"{r['column']} {r['statistic']:.3f}{' drift' if r['drifted'] else ''}" for r in missing)
    )
    exact = summary["evidently"].get("exact_auto")
    lines.append(
        f"\nExact mode (the reference table itself, not its profile), auto: {kepler['exact']['seconds']:.2f} s"
        + (
            f"; {exact['time_ratio']:.0f}× faster than Evidently, verdicts agree on {exact['agreement']:.0%}."
            if exact
            else "."
        )
    )
    lines.append(
        f"\nFirst call in a fresh process (imports included): {kepler['first_call_seconds']:.2f} s; "
        f"with the Parquet read of the current table: {kepler['seconds_with_parquet_read']:.2f} s."
    )
    goal = summary["goal"]
    lines.append(
        f"\ngoals: time ≤ {GOAL_SECONDS:g} s {'met' if goal['time_met'] else 'NOT met'}; memory ≤ {GOAL_MEMORY}× "
        f"{'met' if goal['memory_met'] else 'NOT met'}; agreement ≥ {GOAL_AGREEMENT:.0%} "
        f"{ {True: 'met', False: 'NOT met', None: 'not measured'}[goal['agreement_met']] }"
    )
    (args.output / "drift.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
