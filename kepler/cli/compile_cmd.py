"""`kepler compile`: turn a saved model into a verified artifact for a target.

Usage:
    kepler compile model.joblib --target edge --sample data/sensors.csv --drop failure
    kepler compile model.json --target cloud --sample sample.parquet --output artifacts/xgb-cloud
    kepler compile model.txt --target my-profile.toml --sample sample.csv --json
    kepler compile model.joblib --sample data/sensors.csv --drop failure --no-benchmark   # time it later
"""

from __future__ import annotations

from pathlib import Path

import typer

from kepler.cli.app import app


@app.command("compile")
def compile_command(
    model: Path = typer.Argument(
        ..., help="Fitted model: .joblib/.pkl, XGBoost .json/.ubj, or LightGBM .txt."
    ),
    target: str = typer.Option(
        "edge", "--target", "-t", help="Target profile name or path to a .toml profile."
    ),
    sample: Path = typer.Option(..., "--sample", "-s", help="CSV or Parquet rows of the training data."),
    drop: list[str] | None = typer.Option(
        None, "--drop", help="Column(s) of the sample that are not features (repeatable)."
    ),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Artifact folder (default artifacts/<model>-<target>)."
    ),
    benchmark: bool = typer.Option(
        True,
        "--benchmark/--no-benchmark",
        help="Time the artifact and check the profile's budgets (`kepler bench` can do it later).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the manifest as JSON."),
) -> None:
    """Compile a fitted model to one ONNX graph, verify parity and write the artifact."""
    from kepler.api import compile_file
    from kepler.cli import output as out

    artifact = compile_file(model, target, sample, output=output, drop=drop, benchmark=benchmark)
    if as_json:
        out.print_json({"artifact": str(artifact.path), **artifact.manifest.to_dict()})
        return
    console = out.console()
    console.print(out.parity_table(artifact.parity.to_dict()))
    if artifact.manifest.backends is not None:
        console.print(out.backends_table(artifact.manifest.backends.to_dict()))
    if artifact.benchmark:
        measured = artifact.benchmark.to_dict()
        console.print(out.benchmark_table(measured))
        console.print(out.budget_table(measured))
    console.print(
        f"[bold green]compiled[/] {artifact.manifest.source.estimator} for "
        f"'{artifact.manifest.target.name}' → {artifact.path}"
    )
