"""`kepler monitor`: drift between a reference and a current table.

With ``--fail-on-drift`` the command exits 14 when the dataset drifts (at least half its columns
drift), after printing the report, so a cron job or a CI step can gate on it. Bad input exits 13
(an unknown method, a bad threshold, no column in common) or 6 (a table that cannot be read or is empty).

Usage:
    kepler monitor drift train.csv today.parquet
    kepler monitor drift reference-profile.json today.csv --json
    kepler monitor drift train.csv today.csv --method psi --threshold 0.2 --html drift.html
    kepler monitor drift data-v1 data-v2 --fail-on-drift        # two data versions of this project
"""

from __future__ import annotations

from pathlib import Path

import typer

from kepler.cli.app import app

monitor_app = typer.Typer(help="Monitoring: drift between tables.", no_args_is_help=True)
app.add_typer(monitor_app, name="monitor")


@monitor_app.command("drift")
def drift_command(
    reference: str = typer.Argument(
        ..., help="Reference: a CSV or Parquet file, a reference profile (.json) or a data version id."
    ),
    current: str = typer.Argument(..., help="Current data: a CSV or Parquet file or a data version id."),
    method: str = typer.Option(
        "auto",
        "--method",
        help="auto (Evidently's pick per column), ks, chi2, z, wasserstein, jensenshannon or psi.",
    ),
    threshold: float | None = typer.Option(
        None, "--threshold", help="Threshold of every column test (default: each method's own)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    html: Path | None = typer.Option(None, "--html", help="Also write an offline HTML report to this file."),
    fail_on_drift: bool = typer.Option(
        False, "--fail-on-drift", help="Exit 14 when the dataset drifts (after printing the report)."
    ),
) -> None:
    """Test each column of CURRENT for drift from REFERENCE (Evidently's tests and thresholds)."""
    from kepler.cli import output as out
    from kepler.monitoring import data_drift

    report = data_drift(reference, current, method=method, threshold=threshold)
    if html is not None:
        report.to_html(html)
    if as_json:
        out.print_json(report.to_dict())
    else:
        out.console().print(report.table())
        if html is not None:
            out.console().print(f"HTML report → {html}")
    if fail_on_drift:
        report.raise_if_drifted()
