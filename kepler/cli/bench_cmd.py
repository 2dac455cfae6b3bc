"""`kepler bench`: time an artifact on a target, optionally against the native model.

Usage:
    kepler bench artifacts/model-edge --target edge
    kepler bench artifacts/model-edge --target edge --compare-native model.joblib
    kepler bench artifacts/model-edge --sample data/sensors.csv --drop failure --batch 1 --batch 1000 --json
    kepler bench artifacts/model-edge --min-time 2   # steadier percentiles
"""

from __future__ import annotations

from pathlib import Path

import typer

from kepler.cli.app import app


@app.command("bench")
def bench_command(
    artifact: Path = typer.Argument(..., help="Artifact folder written by `kepler compile`."),
    target: str | None = typer.Option(
        None, "--target", "-t", help="Profile name or .toml (default: the artifact's)."
    ),
    compare_native: Path | None = typer.Option(
        None, "--compare-native", help="Native model file to time in the same run."
    ),
    sample: Path | None = typer.Option(
        None, "--sample", "-s", help="Rows to time on (default: the artifact's probe rows)."
    ),
    drop: list[str] | None = typer.Option(
        None, "--drop", help="Column(s) of the sample that are not features (repeatable)."
    ),
    batch: list[int] | None = typer.Option(
        None, "--batch", help="Batch size to time (repeatable; default: the profile's)."
    ),
    min_time: float = typer.Option(
        0.5,
        "--min-time",
        min=0.001,
        max=600.0,
        help="Least seconds to time each batch size (each side): longer for a steadier p99, shorter for a glance.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Measure p50/p95/p99 latency, throughput, size, load time and memory of an artifact."""
    from kepler.api import bench
    from kepler.cli import output as out

    report = bench(
        artifact,
        target,
        compare_native=str(compare_native) if compare_native else None,
        sample_path=str(sample) if sample else None,
        drop=drop,
        batch_sizes=batch,
        min_time_s=min_time,
    )
    if as_json:
        out.print_json(report)
        return
    console = out.console()
    console.print(out.benchmark_table(report))
    console.print(out.budget_table(report))
    if "ratios" in report:
        ratios = report["ratios"]
        console.print(
            f"native vs compiled: p50 speed-up at batch {report['batches'][0]['batch']} "
            f"{ratios['p50_speedup_batch1']:.1f}×, throughput ratio at batch "
            f"{report['throughput_batch']} {ratios['throughput_ratio']:.2f}×"
        )
