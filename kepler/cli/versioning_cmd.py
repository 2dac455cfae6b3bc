"""`kepler versioning`: the command group; its commands live in versioning_data_cmd and versioning_release_cmd.

Usage:
    kepler versioning --help
"""

from __future__ import annotations

import typer

from kepler.cli.app import app

versioning_app = typer.Typer(
    help="Data versions, unified versions, releases and lineage.", no_args_is_help=True
)
app.add_typer(versioning_app, name="versioning")


def register() -> None:
    """Imports the modules whose commands join the group."""
    from kepler.cli import versioning_data_cmd, versioning_release_cmd  # noqa: F401


register()
