"""Do search time budgets hold under contention? Two `kepler build` searches side by side on the same cores.

Each round starts two builds at once: the example sensors table (classification, 10k rows)
and scikit-learn's diabetes table (regression, 442 rows, the table on which HistGradientBoosting
trials took seconds when two builds shared the cores). Both run on the edge target with the
same time budget; each build's report gives the search seconds (FLAML and the per-trial compile
and timing), and separately the final refit, compile and measurement. A quiet round runs each
build alone for reference. Goal: every search ends within budget × 1.2.

Usage:
    python benchmarks/budget_under_load.py                          # 20 s budgets, 3 loaded rounds
    python benchmarks/budget_under_load.py --budget 5 --rounds 1 --no-quiet --output /tmp/out
    python benchmarks/budget_under_load.py --burners 2 --budget 8 --rounds 1 --no-quiet --output /tmp/out
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from kepler.runtimes.benchmark import machine

REPO = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results"
GOAL = 1.2  # a search may end at most this many times its budget


def tables(scratch: Path) -> dict[str, dict[str, str]]:
    """The two tables built side by side, written as CSV files into ``scratch``."""
    from sklearn.datasets import load_diabetes

    diabetes = load_diabetes(as_frame=True).frame
    diabetes_path = scratch / "diabetes.csv"
    diabetes.to_csv(diabetes_path, index=False)
    return {
        "sensors": {"path": str(REPO / "examples" / "data" / "sensors.csv"), "label": "failure"},
        "diabetes": {"path": str(diabetes_path), "label": "target"},
    }


def start_build(table: dict[str, str], budget: float, workdir: Path) -> tuple[subprocess.Popen, float]:
    """Starts one `kepler build` (edge target, JSON report on stdout) in its own folder."""
    workdir.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if k != "KEPLER_DEBUG"}
    command = [
        sys.executable,
        "-m",
        "kepler.cli.main",
        "build",
        table["path"],
        "--label",
        table["label"],
        "--target",
        "edge",
        "--time-budget",
        f"{budget:g}s",
        "--output",
        str(workdir / "builds"),
        "--json",
    ]
    return (
        subprocess.Popen(
            command, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        ),
        time.perf_counter(),
    )


def finish_build(name: str, process: subprocess.Popen, started: float, budget: float) -> dict[str, Any]:
    """Waits for a build and reads its search and final seconds from the JSON report."""
    out, err = process.communicate(timeout=budget * 10 + 300)
    wall = time.perf_counter() - started
    if process.returncode != 0:
        raise SystemExit(
            f"the {name} build failed (exit {process.returncode}): {err.strip().splitlines()[-1:]}"
        )
    report = json.loads(out)
    search = float(report["search_seconds"])
    return {
        "table": name,
        "search_seconds": search,
        "ratio": search / budget,
        "final_seconds": report.get("final_seconds"),
        "total_seconds": report.get("total_seconds"),
        "process_seconds": wall,
        "trials": len(report.get("trials", [])),
        "failed_trials": sum(1 for t in report.get("trials", []) if t.get("error")),
        "stopped": report.get("search_stopped"),
        "isolation": report.get("search_isolation"),
        "best_algorithm": report.get("best_algorithm"),
        "deployment_ready": report.get("deployment_ready"),
    }


def run_round(
    names: list[str], all_tables: dict[str, dict[str, str]], budget: float, scratch: Path, label: str
) -> list[dict[str, Any]]:
    """Starts the named builds together and waits for all of them."""
    started = [(name, *start_build(all_tables[name], budget, scratch / f"{label}-{name}")) for name in names]
    return [finish_build(name, process, t0, budget) for name, process, t0 in started]


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    ratios = [r["ratio"] for r in runs]
    return {
        "median_ratio": statistics.median(ratios),
        "max_ratio": max(ratios),
        "median_search_seconds": statistics.median(r["search_seconds"] for r in runs),
        "median_final_seconds": statistics.median(r["final_seconds"] or 0.0 for r in runs),
        "median_trials": statistics.median(r["trials"] for r in runs),
        "builds": len(runs),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=20.0, help="seconds for each search")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of two builds side by side")
    parser.add_argument(
        "--no-quiet", action="store_true", help="skip the reference round of each build alone"
    )
    parser.add_argument(
        "--burners",
        type=int,
        default=0,
        help="CPU-bound processes that run beside the builds of the loaded rounds",
    )
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)

    load_before = os.getloadavg()
    loaded: list[dict[str, Any]] = []
    quiet: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="kepler-budget-bench-") as scratch_dir:
        scratch = Path(scratch_dir)
        all_tables = tables(scratch)
        names = list(all_tables)
        if not args.no_quiet:
            for name in names:
                quiet += run_round([name], all_tables, args.budget, scratch, f"quiet-{name}")
        burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.burners)]
        try:
            for number in range(args.rounds):
                loaded += run_round(names, all_tables, args.budget, scratch, f"loaded-{number}")
                print(
                    f"round {number + 1}: "
                    + ", ".join(f"{r['table']} {r['search_seconds']:.1f} s" for r in loaded[-2:]),
                    file=sys.stderr,
                )
        finally:
            for burner in burners:
                burner.kill()
                burner.wait()

    per_table = {name: summarize([r for r in loaded if r["table"] == name]) for name in names}
    quiet_table = (
        {name: summarize([r for r in quiet if r["table"] == name]) for name in names} if quiet else {}
    )
    worst = max(r["ratio"] for r in loaded)
    report = {
        "machine": machine(),
        "load_average_before": load_before,
        "budget_s": args.budget,
        "rounds": args.rounds,
        "burners": args.burners,
        "goal_ratio": GOAL,
        "max_ratio": worst,
        "goal_met": worst <= GOAL,
        "loaded": per_table,
        "quiet": quiet_table,
        "runs": {"loaded": loaded, "quiet": quiet},
    }

    lines = [
        "| table | builds | search s (median) | × budget (median / max) | final s (median) | trials (median) |"
        + (" trials alone (median) |" if quiet else ""),
        "|---|---|---|---|---|---|" + ("---|" if quiet else ""),
    ]
    for name in names:
        s = per_table[name]
        row = (
            f"| {name} | {s['builds']} side by side | {s['median_search_seconds']:.1f} | "
            f"{s['median_ratio']:.2f} / {s['max_ratio']:.2f} | {s['median_final_seconds']:.1f} | "
            f"{s['median_trials']:g} |"
        )
        if quiet:
            row += f" {quiet_table[name]['median_trials']:g} ({quiet_table[name]['median_search_seconds']:.1f} s) |"
        lines.append(row)
    markdown = "\n".join(lines)
    print(markdown)
    print(
        f"\nworst search {worst:.2f}× its {args.budget:g} s budget (goal ≤ {GOAL}): "
        f"{'met' if report['goal_met'] else 'NOT met'}",
        file=sys.stderr,
    )
    output = args.output or RESULTS
    output.mkdir(parents=True, exist_ok=True)
    (output / "budget_under_load.json").write_text(json.dumps(report, indent=2, default=str))
    m = report["machine"]
    (output / "budget_under_load.md").write_text(
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['platform']}, Python {m['python']}; load average before "
        f"{load_before[0]:.2f}\n\nTwo `kepler build --target edge --time-budget {args.budget:g}s` side by side, "
        f"{args.rounds} rounds"
        + (f", with {args.burners} CPU-bound processes beside them" if args.burners else "")
        + f"; goal: search ≤ {GOAL}× budget.\n\n{markdown}\n\n"
        f"Worst search: {worst:.2f}× its budget ({'goal met' if report['goal_met'] else 'goal NOT met'}).\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
