"""`kepler targets`: list and show target profiles.

Usage:
    kepler targets list
    kepler targets show edge
    kepler targets show ./my-profile.toml --json
"""

from __future__ import annotations

import typer

from kepler.cli.app import app

targets_app = typer.Typer(help="List and show target profiles.", no_args_is_help=True)
app.add_typer(targets_app, name="targets")


@targets_app.command("list")
def list_command(as_json: bool = typer.Option(False, "--json", help="Print the profiles as JSON.")) -> None:
    """List the registered target profiles and their budgets."""
    from rich.table import Table

    from kepler.api import targets
    from kepler.cli import output as out

    profiles = targets()
    if as_json:
        out.print_json(profiles)
        return
    table = Table(title="Target profiles")
    for column in ("name", "threads", "p99 ≤ ms", "size ≤ MB", "memory ≤ MB", "format", "description"):
        table.add_column(column)
    for p in profiles:
        table.add_row(
            p["name"],
            str(p["threads"] or "all"),
            f"{p['latency_p99_ms']:g}",
            f"{p['size_mb']:g}",
            f"{p['memory_mb']:g}",
            p["artifact_format"],
            p["description"],
        )
    out.console().print(table)


@targets_app.command("show")
def show_command(
    name: str = typer.Argument(..., help="Profile name or path to a .toml profile."),
    as_json: bool = typer.Option(False, "--json", help="Print the profile as JSON."),
) -> None:
    """Show every field of one target profile."""
    from rich.table import Table

    from kepler.api import target
    from kepler.cli import output as out

    profile = target(name)
    if as_json:
        out.print_json(profile)
        return
    table = Table(title=f"Target '{profile['name']}'", show_header=False)
    table.add_column("field")
    table.add_column("value")
    for key, value in profile.items():
        table.add_row(key, str(value))
    out.console().print(table)
