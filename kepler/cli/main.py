"""Entry point of the `kepler` command: registers the command groups and maps errors to exit codes.

Usage:
    kepler --help
    kepler --version
    KEPLER_DEBUG=1 kepler compile model.joblib --sample data.csv   # tracebacks on errors
"""

from __future__ import annotations

import os
import sys
import traceback

from kepler.cli import (  # noqa: F401  (importing a module registers its commands)
    automl_cmd,
    bench_cmd,
    build_cmd,
    compile_cmd,
    deploy_cmd,
    init_cmd,
    monitor_cmd,
    reproduce_cmd,
    score_cmd,
    targets_cmd,
    versioning_cmd,
)
from kepler.cli.app import app

# Kepler's own errors carry their exit code (``KeplerError.exit_code``); anything else is a bug.
EXIT_INTERNAL = 70
EXIT_INTERRUPTED = (
    130  # Ctrl-C (SIGINT); SIGTERM during a build exits 143 (128 + 15), as shells report signals
)


def exit_code_for(error: BaseException) -> int:
    """The exit code of an error: a Kepler error's own ``exit_code``, else :data:`EXIT_INTERNAL`."""
    from kepler.errors import KeplerError

    return error.exit_code if isinstance(error, KeplerError) else EXIT_INTERNAL


def _debug() -> bool:
    return os.environ.get("KEPLER_DEBUG", "") not in ("", "0", "false")


def _show_report(error: BaseException) -> None:
    report = getattr(error, "report", None)
    if report:
        from kepler.cli.output import closest_table, console, parity_table

        table = closest_table(report) if "closest" in report else parity_table(report)
        console(stderr=True).print(table)


def main(argv: list[str] | None = None) -> int:
    """Runs the CLI and returns its exit code; errors become one line on stderr.

    Typer handles --help, --version and usage errors (exit 2) itself; Kepler's
    errors and unexpected ones pass through it and are mapped here.
    """
    from kepler.builds import Terminated
    from kepler.errors import KeplerError

    try:
        app(args=argv, prog_name="kepler")
    except SystemExit as done:
        code = done.code
        if code == EXIT_INTERRUPTED:  # Typer turns Ctrl-C (KeyboardInterrupt) into a silent exit 130
            print("interrupted", file=sys.stderr)
        return code if isinstance(code, int) else (0 if code is None else 1)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Terminated as stopped:  # SIGTERM during a build, which cleaned up on its way here
        print("terminated", file=sys.stderr)
        return 128 + stopped.signal
    except KeplerError as error:
        if _debug():
            traceback.print_exc()
        _show_report(error)
        print(f"error: {error}", file=sys.stderr)
        return exit_code_for(error)
    except Exception as error:  # anything else is a bug: one line, traceback on request
        from kepler.versioning.endpoints import endpoint_error

        unreachable = endpoint_error(error)  # MLflow or S3 raised it deep inside: a service, not a bug
        if unreachable is not None:
            print(f"error: {unreachable}", file=sys.stderr)
            return exit_code_for(unreachable)
        if _debug():
            traceback.print_exc()
        print(
            f"internal error: {type(error).__name__}: {error} "
            f"(rerun with KEPLER_DEBUG=1 for the traceback, and please report it)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL
    return 0


def run() -> None:
    """Console-script entry: exits with :func:`main`'s code."""
    sys.exit(main())


if __name__ == "__main__":
    run()
