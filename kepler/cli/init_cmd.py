"""`kepler init`: make the current (or given) folder a Kepler project: git, DVC with a local remote, .kepler/.

Usage:
    kepler init
    kepler init my-project --name predictive-maintenance
    kepler init . --json
"""

from __future__ import annotations

from pathlib import Path

import typer

from kepler.cli.app import app


@app.command("init")
def init_command(
    directory: Path = typer.Argument(Path("."), help="Project folder (created if missing)."),
    name: str | None = typer.Option(None, "--name", help="Project name (default: the folder's name)."),
    as_json: bool = typer.Option(False, "--json", help="Print the project as JSON."),
) -> None:
    """Create a Kepler project (running it again changes nothing)."""
    from kepler.cli import output as out
    from kepler.versioning.project import init

    project = init(directory, name=name)
    info = {
        "project": str(project.root),
        "name": project.name,
        "tracking_uri": project.tracking_uri,
        "dvc_remote": project.dvc_remote_url,
    }
    if as_json:
        out.print_json(info)
        return
    console = out.console()
    console.print(f"Kepler project '{info['name']}' at {info['project']}")
    console.print(f"  MLflow tracking URI: {info['tracking_uri']}")
    console.print(f"  DVC remote:          {info['dvc_remote']}")
