"""`kepler build`: search the best model that fits a target (or compile a given one) and write builds/<id>/.

Usage:
    kepler build --target edge                  # the table and label from [build] in kepler.toml
    kepler build examples/data/sensors.csv --label failure --target edge --time-budget 60s
    kepler build data.csv --label failure --target cloud --use-case predictive_maintenance --time-budget 5m
    kepler build data.csv --label failure --target my-profile.toml --constraints-file budgets.json --json
    kepler build data.csv --label failure --target edge --model model.joblib
    kepler build data.csv --label failure --time-budget 36h --force   # above the 24 h maximum
    kepler build data.csv --label failure --time-budget 5m --spark local[2]   # trials on Spark
    kepler build data.csv --label failure --spark spark://master:7077 --concurrent-trials 8
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from kepler.cli.app import UsageError, app


def _require_label(data: Path | None, label: str | None, model: Path | None) -> None:
    """A usage error for a search without a label, given neither here nor in kepler.toml's [build].

    Without a table, kepler.toml is read first, so a missing or bad [build] data is reported as such.
    """
    if label is not None or model is not None:
        return
    if data is None:
        from kepler.builds import project_build_settings

        if project_build_settings(None, None)[1] is not None:
            return
    raise UsageError(
        "a search needs the label column: add --label <column> (or [build] label in kepler.toml), "
        "or pass --model to compile a saved model (see kepler build --help)"
    )


@app.command("build")
def build_command(
    data: Path | None = typer.Argument(
        None, help="CSV or Parquet table (default: [build] data in kepler.toml)."
    ),
    target: str = typer.Option("edge", "--target", "-t", help="edge, cloud, or a profile .toml."),
    label: str | None = typer.Option(None, "--label", "-l", help="Label column."),
    use_case: str | None = typer.Option(
        None, "--use-case", help="predictive_maintenance, quality_control, anomaly_detection."
    ),
    time_budget: str = typer.Option(
        "5m", "--time-budget", help="Time budget of the build: 90s, 5m, 1h (at most 24h)."
    ),
    force: bool = typer.Option(False, "--force", help="Accept a time budget above 24 h."),
    model: Path | None = typer.Option(
        None, "--model", help="Compile and benchmark this saved model instead of searching."
    ),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Parent folder of builds (default builds/)."
    ),
    constraints_file: Path | None = typer.Option(
        None, "--constraints-file", help="JSON with latency_p99_ms, size_mb, memory_mb."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the split, search and models."),
    interpretable: bool = typer.Option(
        False, "--interpretable", help="Only linear models, shallow trees, small boosting."
    ),
    track: bool | None = typer.Option(
        None, "--track/--no-track", help="Record in the Kepler project (default: when inside one)."
    ),
    spark: str | None = typer.Option(
        None,
        "--spark",
        help="Run the trials on this Spark master: local[2], spark://HOST:7077 (default: [scale] spark_master).",
    ),
    concurrent_trials: int | None = typer.Option(
        None,
        "--concurrent-trials",
        min=1,
        help="Trials at once on Spark (default: [scale] concurrent_trials, else the session's cores).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Build a deployable artifact: constraint-aware search (or --model), compile, benchmark, report."""
    from kepler.cli.commands import run_build

    _require_label(data, label, model)
    run_build(
        data=data,
        label=label,
        target=target,
        use_case=use_case,
        time_budget=time_budget,
        model=model,
        output=output,
        constraints=constraints_file,
        seed=seed,
        interpretable=interpretable,
        as_json=as_json,
        track=track,
        force=force,
        spark=spark,
        concurrent_trials=concurrent_trials,
        command=" ".join(["kepler", *sys.argv[1:]]),
    )
