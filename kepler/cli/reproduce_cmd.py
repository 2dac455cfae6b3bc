"""`kepler reproduce`: rebuild a recorded version and prove it is the same.

Usage:
    kepler reproduce from-version production-v1.0
    kepler reproduce from-version sensors@v1.0 --type data
    kepler reproduce from-version build-20261126-061500-3fa2c1 --json
"""

from __future__ import annotations

import typer

from kepler.cli.app import app

reproduce_app = typer.Typer(help="Rebuild recorded versions and compare them.", no_args_is_help=True)
app.add_typer(reproduce_app, name="reproduce")


@reproduce_app.command("from-version")
def from_version_command(
    name: str = typer.Argument(..., help="Unified version, data version (name@version), pipeline or run."),
    reproduction_type: str = typer.Option("full", "--type", help="full, data, pipeline or experiment."),
    output: str | None = typer.Option(
        None, "--output", "-o", help="Folder that keeps what it writes (default: a temporary one, removed)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Reproduce a version: restore data by hash, retrain its config with its seed, recompile, compare."""
    from kepler.cli import output as out
    from kepler.reproduce import from_version

    result = from_version(name, reproduction_type, output=output)
    if as_json:
        out.print_json(result.to_dict())
    else:
        console = out.console()
        for step in result.steps_completed:
            console.print(f"[green]✓[/] {step}")
        for path in result.artifacts_created:
            console.print(f"  wrote {path}")
        if result.success:
            console.print(f"[bold green]reproduced[/] {name}")
    if not result.success:
        import sys

        print(f"error: reproduction of {name} failed: {result.error_message}", file=sys.stderr)
        raise typer.Exit(1)
