"""`kepler versioning` commands for releases and lineage.

Usage:
    kepler versioning create-release "stable-v1.0" --version "1.0.0" --status "production"
    kepler versioning create-release "pm-v1.1" --version 1.1.0 --model-line pm \\
        --components '{"model_version": "xgboost-v1.4", "mlflow_model": {"name": "pm", "version": "2"}}'
    kepler versioning promote "pm-v1.1" --to staging
    kepler versioning promote "pm-v1.1" --to production --json
    kepler versioning list-releases
    kepler versioning list-releases --model-line pm --status production --json
    kepler versioning show-release "stable-v1.0"
    kepler versioning lineage "xgboost-v1.3"
    kepler versioning lineage "xgboost-v1.3" --json
"""

from __future__ import annotations

import json
from typing import Any

import typer

from kepler.cli.versioning_cmd import versioning_app


def _json_object(text: str | None, option: str) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise typer.BadParameter(f"not valid JSON ({exc})", param_hint=option) from None
    if not isinstance(value, dict):
        raise typer.BadParameter(
            'must be a JSON object, such as \'{"model_version": "xgboost-v1.3"}\'', param_hint=option
        )
    return value


def _release_table(release: Any, title: str) -> Any:
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=title, show_header=False)
    table.add_column("field")
    table.add_column("value")
    fields = (
        "release_id",
        "version",
        "status",
        "model_line",
        "unified_version",
        "created_at",
        "git_commit",
        "notes",
    )
    for key in fields:
        value = getattr(release, key)
        if value is not None:
            table.add_row(key, escape(str(value)))
    for key, value in release.components.items():
        table.add_row(
            f"component {escape(key)}", escape(json.dumps(value) if not isinstance(value, str) else value)
        )
    for entry in release.history:
        move = entry.to if entry.from_status in (None, entry.to) else f"{entry.from_status} -> {entry.to}"
        extra = " ".join(
            f"{k}={v}" for k, v in entry.to_dict().items() if k not in ("at", "from", "to", "by", "action")
        )
        table.add_row(entry.at, escape(f"{entry.action} {move} by {entry.by} {extra}".strip()))
    return table


@versioning_app.command("create-release")
def create_release_command(
    name: str = typer.Argument(..., help="Release name, e.g. stable-v1.0."),
    version: str = typer.Option("1.0.0", "--version", help="Semantic version (MAJOR.MINOR.PATCH)."),
    status: str = typer.Option(
        "draft", "--status", help="draft, staging (or ready_for_deployment), production or archived."
    ),
    components: str | None = typer.Option(
        None, "--components", help="JSON object of the release's components."
    ),
    model_line: str | None = typer.Option(
        None, "--model-line", help="Model line (one production release each)."
    ),
    unified_version: str | None = typer.Option(
        None, "--unified-version", help="The unified version released."
    ),
    notes: str | None = typer.Option(None, "--notes", help="Release notes."),
    as_json: bool = typer.Option(False, "--json", help="Print the release as JSON."),
) -> None:
    """Create a release (a production release archives its line's previous one)."""
    from kepler.cli import output as out
    from kepler.versioning.releases import create_release

    release = create_release(
        name,
        version=version,
        components=_json_object(components, "--components"),
        status=status,
        model_line=model_line,
        unified_version=unified_version,
        notes=notes,
    )
    if as_json:
        out.print_json(release.to_dict())
        return
    out.console().print(_release_table(release, f"Release {release.release_id} created"))


@versioning_app.command("promote")
def promote_command(
    name: str = typer.Argument(..., help="Release name."),
    to: str = typer.Option("staging", "--to", help="staging, production or archived (one step at a time)."),
    as_json: bool = typer.Option(False, "--json", help="Print the release as JSON."),
) -> None:
    """Promote a release: draft -> staging -> production -> archived."""
    from kepler.cli import output as out
    from kepler.versioning.releases import promote_release

    release = promote_release(name, target_environment=to)
    if as_json:
        out.print_json(release.to_dict())
        return
    out.console().print(_release_table(release, f"Release {release.release_id} is {release.status}"))


@versioning_app.command("list-releases")
def list_releases_command(
    model_line: str | None = typer.Option(None, "--model-line", help="Only this model line."),
    status: str | None = typer.Option(None, "--status", help="Only this status."),
    as_json: bool = typer.Option(False, "--json", help="Print the releases as JSON."),
) -> None:
    """List releases by model line and version."""
    from rich.markup import escape
    from rich.table import Table

    from kepler.cli import output as out
    from kepler.versioning.releases import list_releases

    releases = list_releases(model_line=model_line, status=status)
    if as_json:
        out.print_json([r.to_dict() for r in releases])
        return
    table = Table(title="Releases")
    for column in ("release", "version", "status", "model line", "created", "components"):
        table.add_column(column)
    for r in releases:
        parts = ", ".join(
            f"{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in r.components.items()
        )
        table.add_row(
            escape(r.release_id), r.version, r.status, escape(r.model_line), r.created_at, escape(parts)
        )
    out.console().print(table)


@versioning_app.command("show-release")
def show_release_command(
    name: str = typer.Argument(..., help="Release name."),
    as_json: bool = typer.Option(False, "--json", help="Print the release as JSON."),
) -> None:
    """Show one release with its components and history."""
    from kepler.cli import output as out
    from kepler.versioning.releases import get_release

    release = get_release(name)
    if as_json:
        out.print_json(release.to_dict())
        return
    out.console().print(_release_table(release, f"Release {release.release_id}"))


def _tree_label(node: dict[str, Any]) -> str:
    from rich.markup import escape

    label = (
        f"[bold]{escape(node['node_id'])}[/] [dim]{escape(str(node['kind']))}: {escape(str(node['name']))}[/]"
    )
    return label + (" [dim](see above)[/]" if node.get("repeated") else "")


def _grow(branch: Any, nodes: list[dict[str, Any]], direction: str) -> None:
    for node in nodes:
        _grow(branch.add(_tree_label(node)), node.get(direction, []), direction)


@versioning_app.command("lineage")
def lineage_command(
    node_id: str = typer.Argument(..., help="Lineage node id."),
    as_json: bool = typer.Option(False, "--json", help="Print the lineage tree as JSON."),
) -> None:
    """Show a lineage node with everything upstream (its inputs) and downstream (its outputs)."""
    from rich.tree import Tree

    from kepler.cli import output as out
    from kepler.versioning.lineage import lineage_tree

    tree = lineage_tree(node_id)
    if as_json:
        out.print_json(tree)
        return
    root = Tree(_tree_label(tree))
    _grow(
        root.add("[cyan]upstream (inputs)[/]" if tree["upstream"] else "[dim]upstream: none (a source)[/]"),
        tree["upstream"],
        "upstream",
    )
    _grow(
        root.add("[cyan]downstream (outputs)[/]" if tree["downstream"] else "[dim]downstream: none[/]"),
        tree["downstream"],
        "downstream",
    )
    out.console().print(root)
