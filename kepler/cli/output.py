"""Printing results: Rich tables for people, JSON for scripts."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from typing import Any

from kepler.build_report import BuildReport, TableSummary

# Wide enough that no table row or line is ever wrapped or cut when output goes to a file or a pipe.
PLAIN_WIDTH = 1 << 20


def _is_terminal(stream: Any) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty()) if isatty is not None else False
    except ValueError:  # a closed stream
        return False


def console(stderr: bool = False) -> Any:
    """A Rich console on stdout (or stderr).

    On a terminal, Rich fits tables to its width. Anywhere else (a pipe, a file, a CI log) every table row
    and every line stays on one line, unwrapped and uncut, so scripts and grep see whole values; the stream
    itself is asked, since CI often sets FORCE_COLOR, which Rich would take for a terminal of 80 columns.
    """
    from rich.console import Console

    if _is_terminal(sys.stderr if stderr else sys.stdout):
        return Console(stderr=stderr, highlight=False)
    return Console(stderr=stderr, highlight=False, width=PLAIN_WIDTH, soft_wrap=True)


def print_json(data: Any) -> None:
    """Writes ``data`` as JSON on stdout."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def _ms(value: float) -> str:
    return f"{value * 1000:.1f} µs" if value < 1 else f"{value:.2f} ms"


def parity_table(report: dict[str, Any]) -> Any:
    """A table of a parity report and its worst rows."""
    from rich.table import Table

    table = Table(title="Parity against the native model", show_lines=False)
    table.add_column("check")
    table.add_column("value", justify="right")
    table.add_row("rows compared", str(report.get("rows")))
    table.add_row("max abs diff", f"{report.get('max_abs_diff', float('nan')):.3g}")
    table.add_row("max rel diff", f"{report.get('max_rel_diff', float('nan')):.3g}")
    if report.get("label_agreement") is not None:
        table.add_row("label agreement", f"{report['label_agreement']:.4%}")
    table.add_row("rows out of tolerance", str(report.get("rows_out_of_tolerance")))
    table.add_row("bit exact", "yes" if report.get("bit_exact") else "no")
    table.add_row("passed", "[green]yes[/]" if report.get("passed") else "[red]no[/]")
    for row in report.get("worst_rows", [])[:5]:
        label = (
            f" label {row.get('native_label')}→{row.get('compiled_label')}" if "native_label" in row else ""
        )
        table.add_row(f"worst row {row['row']}", f"Δ {row['abs_diff']:.3g}{label}")
    return table


def backends_table(backends: dict[str, Any]) -> Any:
    """A table of an artifact's backends: median latency per batch size, which one serves it, and why any
    backend the profile allows was left out (``Backends.to_dict()``)."""
    from rich.table import Table

    timings: dict[str, dict[str, float]] = backends.get("timings_ms") or {}
    choice = [(c["from_rows"], c["backend"]) for c in backends.get("choice", [])]
    sizes = sorted({int(b) for figures in timings.values() for b in figures})
    table = Table(title="Backends: median ms per call, and the one serving each batch size", show_lines=False)
    table.add_column("backend")
    for size in sizes:
        table.add_column(f"batch {size:,}", justify="right")
    for name, figures in timings.items():
        cells = []
        for size in sizes:
            serving = [b for rows, b in choice if rows <= size][-1:] == [name]
            value = f"{figures.get(str(size), float('nan')):.3f}"
            cells.append(f"[bold green]{value} ✓[/]" if serving else value)
        table.add_row(name, *cells)
    for name, reason in (backends.get("skipped") or {}).items():
        table.add_row(name, *(["—"] * len(sizes)), end_section=False)
        table.add_row(f"  [dim]not built: {reason}[/]", *([""] * len(sizes)))
    return table


def benchmark_table(report: dict[str, Any]) -> Any:
    """A table of a benchmark report, with the native model's figures and ratios when present."""
    from rich.table import Table

    native = {b["batch"]: b for b in report.get("native", {}).get("batches", [])}
    title = (
        f"Benchmark on '{report['target']}' ({report['threads']} thread(s), "
        f"{report['machine']['cpu']}, {report['machine']['cores']} cores)"
    )
    table = Table(title=title)
    for column in ("batch", "p50", "p95", "p99", "rows/s"):
        table.add_column(column, justify="right")
    if native:
        for column in ("native p50", "native rows/s", "speed-up"):
            table.add_column(column, justify="right")
    for entry in report["batches"]:
        cells = [
            str(entry["batch"]),
            _ms(entry["p50_ms"]),
            _ms(entry["p95_ms"]),
            _ms(entry["p99_ms"]),
            f"{entry['throughput_rows_s']:,.0f}",
        ]
        if native:
            base = native[entry["batch"]]
            cells += [
                _ms(base["p50_ms"]),
                f"{base['throughput_rows_s']:,.0f}",
                f"{base['p50_ms'] / entry['p50_ms']:.1f}×",
            ]
        table.add_row(*cells)
    return table


def budget_table(report: dict[str, Any]) -> Any:
    """A table of the profile's budgets against what was measured."""
    from rich.table import Table

    table = Table(title="Budgets")
    for column in ("budget", "limit", "measured", "ok"):
        table.add_column(column, justify="right")
    for name, check in report.get("budgets", {}).items():
        measured = "—" if check["measured"] is None else f"{check['measured']:.3g}"
        table.add_row(name, f"{check['limit']:g}", measured, "[green]yes[/]" if check["ok"] else "[red]no[/]")
    process = report.get("process_peak_rss_mb")
    table.caption = (
        f"size {report['size_mb']:.3f} MB · session load {report['load_ms']:.1f} ms · "
        + (
            f"memory_mb: peak RSS of a fresh runtime process at batch 1, {process:.0f} MB · "
            if process is not None
            else ""
        )
        + f"this process: session RSS +{report['session_rss_mb']:.1f} MB, peak {report['peak_rss_mb']:.0f} MB"
    )
    return table


class SearchProgress:
    """A Rich progress bar over the search's time budget: trials, best score, time left.

    The bar appears with the search's first report, so a build that fails before searching (a missing
    file, a bad label) prints its error alone, not after an empty bar.
    """

    def __init__(self, time_budget_s: float, metric: str = "score", enabled: bool = True) -> None:
        self.time_budget_s = time_budget_s
        self.metric = metric
        self.enabled = enabled
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> SearchProgress:
        return self

    def _start(self) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        self._progress = Progress(
            TextColumn("[bold]search[/]"),
            BarColumn(),
            TextColumn("{task.description}"),
            TimeRemainingColumn(),
            console=console(stderr=True),
            transient=False,
        )
        self._progress.__enter__()
        self._task = self._progress.add_task("starting", total=self.time_budget_s)

    def __call__(self, trial: Any, best: Any, elapsed: float) -> None:
        if not self.enabled:
            return
        if self._progress is None:
            self._start()
        best_text = (
            f"best {best.val_score:.4f} ({best.family})" if best is not None else "no compliant model yet"
        )
        self._progress.update(
            self._task,
            completed=min(elapsed, self.time_budget_s),
            description=f"{trial.number} trials · {best_text}",
        )

    def __exit__(self, *exc: Any) -> None:
        if self._progress is not None:
            if exc[0] is None:  # a finished search fills the bar; a failed one stays where it stopped
                self._progress.update(self._task, completed=self.time_budget_s)
            self._progress.__exit__(*exc)


def budget_rows_table(rows: list[dict[str, Any]], title: str = "Budgets") -> Any:
    """A table of budget checks (limit, source, measured, ok)."""
    from rich.table import Table

    table = Table(title=title)
    for column in ("budget", "limit", "source", "measured", "ok"):
        table.add_column(column, justify="right" if column in ("limit", "measured") else "left")
    for row in rows:
        measured = "—" if row.get("measured") is None else f"{row['measured']:.3g}"
        verdict = (
            "[green]yes[/]"
            if row["ok"]
            else f"[red]no, {row['over_by']:.3g}× over[/]"
            if row.get("over_by")
            else "[red]no[/]"
        )
        table.add_row(row["budget"], f"{row['limit']:g}", row.get("source", ""), measured, verdict)
    return table


def closest_table(report: dict[str, Any]) -> Any:
    """A table of the candidates that came nearest to the budgets."""
    from rich.table import Table

    table = Table(title="No candidate fits: the closest ones")
    for column in ("trial", "family", "score", "p99 ms", "size MB", "broken budgets"):
        table.add_column(column)
    for c in report.get("closest", []):
        broken = ", ".join(f"{k} {v['over_by']:.3g}× over" for k, v in c["broken"].items()) or "—"
        table.add_row(
            str(c["trial"]),
            c["family"],
            f"{c['val_score']:.4f}",
            f"{c['p99_ms']:.4g}",
            f"{c['size_mb']:.4g}",
            broken,
        )
    for r in report.get("rejected_at_final_check", []):
        table.add_row(str(r["trial"]), r["family"], "", "", "", r["reason"][:80])
    return table


def data_table(report: BuildReport | Mapping[str, Any]) -> Any:
    """A table of what reading the table changed: every dropped column with the reason, every column changed
    (values read as missing, text read as numbers), and the other notes of the data and of the time plan;
    None when there is nothing to say."""
    from rich.markup import escape
    from rich.table import Table

    report = BuildReport.coerce(report)
    data = report.data if isinstance(report.data, TableSummary) else TableSummary()
    columns = [
        c
        for c in data.columns or []
        if c.get("role") == "dropped" or (c.get("note") and c.get("role") != "label")
    ]
    noted = {f"column {c['name']!r}: {c['note']}" for c in columns}
    notes = [n for n in data.notes or [] if n not in noted]
    notes += list((report.plan or {}).get("notes") or [])
    if not columns and not notes:
        return None
    dropped = sum(1 for c in columns if c.get("role") == "dropped")
    table = Table(
        title=f"Data: {_or_unknown(data.rows)} rows, {len(data.features or [])} feature columns"
        + (f", {dropped} column{'s' if dropped != 1 else ''} dropped" if dropped else "")
    )
    table.add_column("column")
    table.add_column("what was done", overflow="fold")
    for column in columns:  # headers and notes may hold brackets: text, not Rich markup
        name = escape(str(column["name"]))
        table.add_row(
            name if column.get("role") != "dropped" else f"[yellow]{name}[/] (dropped)",
            escape(column.get("note") or "dropped"),
        )
    for note in notes:
        table.add_row("", escape(note))
    return table


def _or_unknown(value: Any) -> str:
    return "?" if value is None else str(value)


def build_summary(report: BuildReport | Mapping[str, Any]) -> Any:
    """Tables summarizing a build: what reading the table changed (dropped columns first), budgets, test metrics."""
    from rich.console import Group
    from rich.table import Table

    report = BuildReport.coerce(report)
    parts = [part for part in (data_table(report),) if part is not None]
    parts.append(budget_rows_table(report.constraint_report or []))
    metrics = report.test_metrics or {}
    if metrics:
        table = Table(
            title=f"Test metrics of the compiled model ({_or_unknown(report.test_rows)} held-out rows)"
            if report.kind == "search"
            else "Metrics of the compiled model"
        )
        table.add_column("metric")
        table.add_column("value", justify="right")
        for name, value in metrics.items():
            table.add_row(name, f"{value:.4f}")
        parts.append(table)
    if isinstance(report.spark, dict) and report.spark.get("note"):  # trials on Spark: what decided
        from rich.text import Text

        parts.append(Text(str(report.spark["note"])))
    return Group(*parts)
