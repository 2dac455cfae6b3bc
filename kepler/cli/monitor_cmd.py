"""`kepler monitor`: drift between tables, feature pipeline stability, deployment success.

With ``--fail-on-drift`` the command exits 14 when the dataset drifts (at least half its columns
drift), after printing the report, so a cron job or a CI step can gate on it. Bad input exits 13
(an unknown method, a bad threshold, no column in common) or 6 (a table that cannot be read or is empty).

Usage:
    kepler monitor drift train.csv today.parquet
    kepler monitor drift reference-profile.json today.csv --json
    kepler monitor drift train.csv today.csv --method psi --threshold 0.2 --html drift.html
    kepler monitor drift data-v1 data-v2 --fail-on-drift        # two data versions of this project
    kepler monitor drift pm-1.1 today.csv                       # a release: its artifact's reference profile
    kepler monitor pipeline sensor-prep --versions v1 v2 --on sensors-3f2a   # two versions, the same data
    kepler monitor pipeline sensor-prep --data sensors-3f2a sensors-9c1d     # one version, two data versions
    kepler monitor deployments --release pm-1.1 --json
    kepler monitor traffic pm-1.1 --since 1h --fail-on-drift   # served requests against the release's profile
    kepler monitor performance pm-1.1 --labels labels.csv --window 1h   # labels joined by X-Request-Id
    kepler monitor performance pm-1.1 --labels outcomes.parquet --key serial --json
    kepler monitor performance pm-1.1 --since 1d          # no labels: estimated from the calibration table (CBPE)

A check of a release (a drift side, the release a pipeline was built into, each deployments row) is
recorded in the project: an MLflow run under the release's model line and a lineage node on the release.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from kepler.cli.app import app

monitor_app = typer.Typer(
    help="Monitoring: drift, pipeline stability, deployment success.", no_args_is_help=True
)
app.add_typer(monitor_app, name="monitor")


@monitor_app.command("drift")
def drift_command(
    reference: str = typer.Argument(
        ...,
        help="Reference: a CSV or Parquet file, a reference profile (.json), a data version id or a release.",
    ),
    current: str = typer.Argument(..., help="Current data: a CSV or Parquet file or a data version id."),
    method: str = typer.Option(
        "auto",
        "--method",
        help="auto (Evidently's pick per column), ks, chi2, z, wasserstein, jensenshannon or psi.",
    ),
    threshold: float | None = typer.Option(
        None,
        "--threshold",
        help="Threshold of every column test (default: kepler.toml's [monitoring.thresholds], else each "
        "method's own).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    html: Path | None = typer.Option(None, "--html", help="Also write an offline HTML report to this file."),
    fail_on_drift: bool = typer.Option(
        False, "--fail-on-drift", help="Exit 14 when the dataset drifts (after printing the report)."
    ),
) -> None:
    """Test each column of CURRENT for drift from REFERENCE (Evidently's tests and thresholds)."""
    from kepler.monitoring import data_drift

    report = data_drift(reference, current, method=method, threshold=threshold)
    _show(report, as_json, html)
    from kepler.monitoring.records import drift_metrics, find_release

    _record("drift", find_release([reference, current]), drift_metrics(report), report.to_dict(), html)
    if fail_on_drift:
        report.raise_if_drifted()


@monitor_app.command("traffic")
def traffic_command(
    release: str = typer.Argument(..., help="The release whose recorded traffic to check."),
    since: str | None = typer.Option(
        None, "--since", help="Only the traffic of this last period: 30m, 1h, 7d... (default: all kept)."
    ),
    method: str = typer.Option(
        "auto", "--method", help="auto, ks, chi2, z, wasserstein, jensenshannon or psi."
    ),
    threshold: float | None = typer.Option(None, "--threshold", help="Threshold of every column test."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    html: Path | None = typer.Option(None, "--html", help="Also write an offline HTML report to this file."),
    fail_on_drift: bool = typer.Option(
        False, "--fail-on-drift", help="Exit 14 when the served traffic drifts (after printing the report)."
    ),
) -> None:
    """Test the inputs and predictions a release's service recorded for drift from the release's reference
    profile (recording: [monitoring] sample_rate in kepler.toml)."""
    from kepler.monitoring.records import drift_metrics
    from kepler.monitoring.traffic import traffic_drift

    report = traffic_drift(release, since=since, method=method, threshold=threshold)
    _show(report, as_json, html)
    _record("traffic", release, drift_metrics(report), report.to_dict(), html)
    if fail_on_drift:
        report.raise_if_drifted()


def _show(report: Any, as_json: bool, html: Path | None) -> None:
    """Writes the HTML report when asked, then prints the report as JSON or as a table."""
    from kepler.cli import output as out

    if html is not None:
        report.to_html(html)
    if as_json:
        out.print_json(report.to_dict())
    else:
        out.console().print(report.table())
        if html is not None:
            out.console().print(f"HTML report → {html}")


def _record(
    kind: str, subject: str | None, metrics: dict[str, float], report: dict[str, Any], html: Path | None
) -> None:
    """Records a check of a release (MLflow run + lineage node) and says so on stderr; silent when it
    checked no release of a project (nothing is recorded then)."""
    from kepler.cli import output as out
    from kepler.monitoring.records import node_id, record_monitoring_run

    run_id = record_monitoring_run(kind, subject, metrics, report, html)
    if run_id is not None:
        out.console(stderr=True).print(
            f"recorded: MLflow run {run_id}, lineage node {node_id(kind, run_id)} (on {subject})"
        )


@monitor_app.command("pipeline")
def pipeline_command(
    name: str = typer.Argument(..., help="The feature pipeline."),
    versions: tuple[str, str] | None = typer.Option(
        None, "--versions", help="Two pipeline versions to compare on the same data (--on)."
    ),
    data: tuple[str, str] | None = typer.Option(
        None, "--data", help="Two data versions (or CSV/Parquet files) to run one pipeline version on."
    ),
    on: str | None = typer.Option(
        None, "--on", help="With --versions: the data to transform (default: the newest data version)."
    ),
    version: str | None = typer.Option(
        None, "--version", help="With --data: the pipeline version (default: its newest fitted one)."
    ),
    release: str | None = typer.Option(
        None,
        "--release",
        help="Record the check on this release (default: the release whose build used the pipeline).",
    ),
    method: str = typer.Option(
        "auto", "--method", help="auto, ks, chi2, z, wasserstein, jensenshannon or psi."
    ),
    threshold: float | None = typer.Option(None, "--threshold", help="Threshold of every feature's test."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    html: Path | None = typer.Option(None, "--html", help="Also write an offline HTML report to this file."),
    fail_on_drift: bool = typer.Option(
        False, "--fail-on-drift", help="Exit 14 when the transformed features drift (after the report)."
    ),
) -> None:
    """Drift of each feature a versioned pipeline outputs: two versions on one data, or one version on two."""
    from kepler.monitoring.pipeline import pipeline_release, pipeline_stability
    from kepler.monitoring.records import drift_metrics

    report = pipeline_stability(
        name,
        versions=versions if versions else version,
        data_versions=data if data else on,
        method=method,
        threshold=threshold,
    )
    _show(report, as_json, html)
    _record(
        "pipeline", release or pipeline_release(report), drift_metrics(report.drift), report.to_dict(), html
    )
    if fail_on_drift:
        report.raise_if_drifted()


@monitor_app.command("deployments")
def deployments_command(
    release: str | None = typer.Option(None, "--release", help="Only this release (default: every release)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Per release: deploys attempted, succeeded, failed, rolled back, time to ready, and the 2xx/4xx/5xx
    rates of its running server."""
    from kepler.cli import output as out
    from kepler.monitoring.deployments import deployment_success

    report = deployment_success(release)
    if as_json:
        out.print_json(report.to_dict())
    else:
        out.console().print(report.table())
    for row in report.releases:
        _record("deployments", row.release, row.metrics(), row.to_dict(), None)


@monitor_app.command("performance")
def performance_command(
    release: str = typer.Argument(..., help="The release whose recorded requests to score."),
    labels: Path | None = typer.Option(
        None,
        "--labels",
        help="CSV or Parquet labels: request_id (the X-Request-Id answered; plus row for requests of several "
        "rows) or the --key column, and the label. Without it the metric is estimated (CBPE).",
    ),
    key: str | None = typer.Option(
        None, "--key", help="Join labels on this input column instead of request_id."
    ),
    label_column: str | None = typer.Option(
        None,
        "--label-column",
        help="The labels' label column (default: 'label', else the build's label, else the only other one).",
    ),
    since: str | None = typer.Option(
        None, "--since", help="Only the requests of this last period: 30m, 1h, 7d... (default: all kept)."
    ),
    window: str | None = typer.Option(
        None, "--window", help="Window length: 15m, 1h, 1d... (default: [monitoring] window, 1h)."
    ),
    metric: str | None = typer.Option(
        None, "--metric", help="The metric (default: the build's, the use case's metric)."
    ),
    threshold: float | None = typer.Option(
        None,
        "--threshold",
        help="Flag a window this far below the build's test metric (default: [monitoring] performance_drop).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """The release's metric per time window of its recorded requests, next to its build's test metric;
    windows that dropped beyond the threshold are flagged."""
    from kepler.cli import output as out
    from kepler.monitoring.performance import performance

    report = performance(
        release,
        labels,
        key=key,
        since=since,
        window=window,
        metric=metric,
        threshold=threshold,
        label_column=label_column,
    )
    if as_json:
        out.print_json(report.to_dict())
    else:
        out.console().print(report.table())
        for note in report.notes:
            out.console().print(f"note: {note}")
    _record("performance", release, report.figures(), report.to_dict(), None)
