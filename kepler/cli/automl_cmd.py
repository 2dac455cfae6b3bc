"""`kepler automl`: the guide's AutoML commands (`--target` names the label column here, as in the guide).

Usage:
    kepler automl run data.csv --target failure --optimization-time 1h --constraints-file industrial.json
    kepler automl industrial data.csv --target failure --use-case predictive_maintenance --environment edge
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from kepler.cli.app import app

automl_app = typer.Typer(help="Constraint-aware AutoML (the guide's commands).", no_args_is_help=True)
app.add_typer(automl_app, name="automl")


@automl_app.command("run")
def run_command(
    data: Path = typer.Argument(..., help="CSV or Parquet table."),
    target: str = typer.Option(..., "--target", help="Label column."),
    optimization_time: str = typer.Option(
        "1h", "--optimization-time", help="Search time budget: 90s, 5m, 1h."
    ),
    constraints_file: Path | None = typer.Option(
        None, "--constraints-file", help="JSON budgets, metric, families."
    ),
    environment: str = typer.Option("edge", "--environment", help="edge, cloud, or a profile .toml."),
    interpretable: bool = typer.Option(False, "--interpretable", help="Only interpretable model families."),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Parent folder of builds (default builds/)."
    ),
    seed: int = typer.Option(0, "--seed"),
    force: bool = typer.Option(False, "--force", help="Accept an optimization time above 24 h."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Search the best model for a label under the environment's budgets."""
    from kepler.cli.commands import run_build

    run_build(
        data=data,
        label=target,
        target=environment,
        use_case=None,
        time_budget=optimization_time,
        model=None,
        output=output,
        constraints=constraints_file,
        seed=seed,
        interpretable=interpretable,
        as_json=as_json,
        force=force,
        command=" ".join(["kepler", *sys.argv[1:]]),
    )


@automl_app.command("industrial")
def industrial_command(
    data: Path = typer.Argument(..., help="CSV or Parquet table."),
    target: str = typer.Option(..., "--target", help="Label column."),
    use_case: str = typer.Option("predictive_maintenance", "--use-case", help="Use-case preset."),
    environment: str = typer.Option("edge", "--environment", help="edge, cloud, or a profile .toml."),
    optimization_time: str = typer.Option("5m", "--optimization-time", help="Search time budget."),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Parent folder of builds (default builds/)."
    ),
    seed: int = typer.Option(0, "--seed"),
    force: bool = typer.Option(False, "--force", help="Accept an optimization time above 24 h."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Search with an industrial use-case preset on an edge or cloud environment."""
    from kepler.cli.commands import run_build

    run_build(
        data=data,
        label=target,
        target=environment,
        use_case=use_case,
        time_budget=optimization_time,
        model=None,
        output=output,
        constraints=None,
        seed=seed,
        interpretable=False,
        as_json=as_json,
        force=force,
        command=" ".join(["kepler", *sys.argv[1:]]),
    )
