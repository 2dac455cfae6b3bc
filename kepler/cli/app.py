"""The Typer application object that every command module registers on."""

from __future__ import annotations

from typing import ClassVar

import typer

from kepler.errors import KeplerError


class UsageError(KeplerError):
    """A command line that lacks what the command needs; exits 2, as Typer's own usage errors do."""

    exit_code: ClassVar[int] = 2


app = typer.Typer(
    name="kepler",
    help="Compile classic ML models to verified ONNX artifacts for edge and cloud targets.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        from kepler import __version__

        typer.echo(f"kepler {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Compile classic ML models to verified ONNX artifacts for edge and cloud targets."""
