"""`kepler init`: make the current (or given) folder a Kepler project: git, DVC with a remote, .kepler/, and where
MLflow records go.

Usage:
    kepler init
    kepler init my-project --name predictive-maintenance
    kepler init . --json
    kepler init --tracking-uri http://mlflow.internal:5000
    kepler init --remote s3://ml-data/kepler/pm --remote-endpoint http://minio.internal:9000
"""

from __future__ import annotations

from pathlib import Path

import typer

from kepler.cli.app import app


@app.command("init")
def init_command(
    directory: Path = typer.Argument(Path("."), help="Project folder (created if missing)."),
    name: str | None = typer.Option(None, "--name", help="Project name (default: the folder's name)."),
    tracking_uri: str | None = typer.Option(
        None,
        "--tracking-uri",
        help="MLflow tracking store for every record ([tracking] uri): a server such as http://mlflow:5000 "
        "(default: the embedded SQLite file .kepler/mlflow.db).",
    ),
    remote: str | None = typer.Option(
        None,
        "--remote",
        help="s3://bucket/prefix: DVC data under prefix/dvc and, without a tracking server, MLflow artifacts "
        "under prefix/mlflow; any other DVC remote URL is the DVC remote as it is.",
    ),
    remote_endpoint: str | None = typer.Option(
        None, "--remote-endpoint", help="S3-compatible endpoint URL (MinIO, Ceph...) for the s3:// remote."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the project as JSON."),
) -> None:
    """Create a Kepler project (running it again changes nothing; with settings, changes those)."""
    from kepler.cli import output as out
    from kepler.versioning.endpoints import redact
    from kepler.versioning.project import init

    project = init(
        directory, name=name, tracking_uri=tracking_uri, remote=remote, remote_endpoint=remote_endpoint
    )
    info = {
        "project": str(project.root),
        "name": project.name,
        "tracking_uri": redact(project.tracking_uri),
        "artifact_root": project.artifact_root or "the tracking server's artifact store",
        "dvc_remote": project.dvc_remote_url,
        "s3_endpoint": project.s3_endpoint,
    }
    if as_json:
        out.print_json(info)
        return
    console = out.console()
    console.print(f"Kepler project '{info['name']}' at {info['project']}")
    console.print(f"  MLflow tracking URI: {info['tracking_uri']}")
    console.print(f"  MLflow artifacts:    {info['artifact_root']}")
    console.print(f"  DVC remote:          {info['dvc_remote']}")
    if info["s3_endpoint"]:
        console.print(f"  S3 endpoint:         {info['s3_endpoint']}")
