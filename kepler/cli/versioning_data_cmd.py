"""`kepler versioning` commands for data versions and unified versions.

Usage:
    kepler versioning version-data data/sensors.csv --name sensors-v1.0 --metadata '{"source": "splunk"}'
    kepler versioning list-data --json
    kepler versioning create-unified "production-v1.0" --data-paths "data/sensors.csv" --experiment "predictive-maintenance"
    kepler versioning create-unified v2 --data-paths data/a.csv --data-paths data/b.csv --metadata '{"model_type": "xgboost"}'
    kepler versioning list-unified
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from kepler.cli.versioning_cmd import versioning_app


def _metadata(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise typer.BadParameter(f"not JSON ({exc})", param_hint="--metadata") from None
    if not isinstance(value, dict):
        raise typer.BadParameter(
            'must be a JSON object, e.g. \'{"source": "splunk"}\'', param_hint="--metadata"
        )
    return value


def _when(stamp: str) -> str:
    return stamp[:16].replace("T", " ")


@versioning_app.command("version-data")
def version_data_command(
    path: Path = typer.Argument(..., help="A data file inside the project."),
    name: str | None = typer.Option(None, "--name", help="Version name (default: <stem>-<md5[:8]>)."),
    metadata: str | None = typer.Option(None, "--metadata", help="JSON object kept with the version."),
    as_json: bool = typer.Option(False, "--json", help="Print the version as JSON."),
) -> None:
    """Version a data file with DVC: push it to the project's remote, commit and tag its .dvc file."""
    from kepler.cli import output as out
    from kepler.versioning.data_versions import version_data

    version = version_data(path, name, _metadata(metadata))
    if as_json:
        out.print_json(version.to_dict())
        return
    console = out.console()
    if version.duplicate_of == version.version_id:
        console.print(
            f"unchanged: {version.file_path} is already data version {version.version_id} (md5 {version.md5})"
        )
        return
    alias = f", same bytes as {version.duplicate_of}" if version.duplicate_of else ""
    console.print(f"data version {version.version_id}: {version.file_path} md5 {version.md5}{alias}")
    console.print(f"  git tag {version.tag} at {version.git_commit[:12] if version.git_commit else '-'}")


@versioning_app.command("list-data")
def list_data_command(
    as_json: bool = typer.Option(False, "--json", help="Print the versions as JSON."),
) -> None:
    """List the data versions of the project."""
    from rich.table import Table

    from kepler.cli import output as out
    from kepler.versioning.data_versions import list_versions

    versions = list_versions()
    if as_json:
        out.print_json([v.to_dict() for v in versions])
        return
    table = Table(title="Data versions")
    table.add_column("version", no_wrap=True)
    table.add_column("file", no_wrap=True)
    for column in ("rows", "cols", "md5", "created"):
        table.add_column(column, justify="right" if column in ("rows", "cols") else "left")
    for v in versions:
        table.add_row(
            v.version_id,
            v.file_path,
            "-" if v.rows is None else str(v.rows),
            "-" if v.columns is None else str(len(v.columns)),
            v.md5[:8],
            _when(v.created_at),
        )
    out.console().print(table)


@versioning_app.command("create-unified")
def create_unified_command(
    name: str = typer.Argument(..., help="Unified version name."),
    data_paths: list[Path] | None = typer.Option(
        None, "--data-paths", help="Data file (repeat for several)."
    ),
    experiment: str | None = typer.Option(
        None, "--experiment", help="MLflow experiment: its latest run is recorded."
    ),
    run_id: str | None = typer.Option(None, "--run-id", help="MLflow run to record instead of the latest."),
    artifact: Path | None = typer.Option(None, "--artifact", help="Compiled artifact folder."),
    feature_pipeline: str | None = typer.Option(
        None, "--feature-pipeline", help="name@version of a feature pipeline."
    ),
    metadata: str | None = typer.Option(None, "--metadata", help="JSON object kept with the version."),
    as_json: bool = typer.Option(False, "--json", help="Print the version as JSON."),
) -> None:
    """Tie the git commit, DVC data and MLflow run (and more) together under one name."""
    from kepler.cli import output as out
    from kepler.versioning.unified import create_unified_version

    version = create_unified_version(
        name,
        data_paths=[str(p) for p in data_paths or []],
        experiment_name=experiment,
        metadata=_metadata(metadata),
        mlflow_run_id=run_id,
        artifact=artifact,
        feature_pipeline=feature_pipeline,
    )
    if as_json:
        out.print_json(version.to_dict())
        return
    console = out.console()
    console.print(f"unified version {version.version_id}")
    console.print(
        f"  git commit: {version.git_commit}{' (uncommitted changes)' if version.git_dirty else ''}"
    )
    console.print(f"  DVC data:   {version.dvc_data_version or '-'}")
    for entry in version.data:
        console.print(f"    {entry['path']}: {entry['data_version']} (md5 {entry['md5']})")
    console.print(
        f"  MLflow run: {version.mlflow_run_id or '-'}"
        + (f" (experiment {version.experiment_name})" if version.experiment_name else "")
    )


@versioning_app.command("list-unified")
def list_unified_command(
    as_json: bool = typer.Option(False, "--json", help="Print the versions as JSON."),
) -> None:
    """List the unified versions of the project."""
    from rich.table import Table

    from kepler.cli import output as out
    from kepler.versioning.unified import list_unified_versions

    versions = list_unified_versions()
    if as_json:
        out.print_json([v.to_dict() for v in versions])
        return
    table = Table(title="Unified versions")
    table.add_column("version", no_wrap=True)
    for column in ("commit", "data", "MLflow run", "model", "created"):
        table.add_column(column)
    for v in versions:
        model = f"{v.model['name']} v{v.model['version']}" if v.model else "-"
        table.add_row(
            v.version_id,
            (v.git_commit or "-")[:8],
            ", ".join(d["data_version"] for d in v.data) or "-",
            (v.mlflow_run_id or "-")[:12],
            model,
            _when(v.created_at),
        )
    out.console().print(table)
