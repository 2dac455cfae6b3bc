"""The offline HTML build report: one self-contained page (inline CSS and SVG, no scripts, no URLs)."""

from __future__ import annotations

import numbers
import os
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any

from kepler import atomic_files
from kepler.build_report import BuildReport, ReportArtifact, TableSummary
from kepler.reporting import svg
from kepler.reporting.fmt import DASH, by_unit, esc, mb, ms, num, pct, seconds, sig, vector

TRIAL_ROWS = 200  # the trials table shows the best ones only, with a note

CSS = """
:root{--ok:#1e7d32;--ok-bg:#e6f4ea;--bad:#b3261e;--bad-bg:#fce8e6;--muted:#5f6368;--line:#dadce0}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
 color:#202124;background:#f8f9fa}
header,main,footer{max-width:1040px;margin:0 auto;padding:16px 24px}
header{background:#fff;border-bottom:1px solid var(--line)}
h1{font-size:22px;margin:4px 0}h2{font-size:18px;margin:0 0 10px}h3{font-size:15px;margin:14px 0 6px}
section{background:#fff;border:1px solid var(--line);border-radius:8px;padding:16px 20px;margin:16px 0}
code,pre{font:12.5px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
pre.command{background:#202124;color:#e8eaed;padding:8px 12px;border-radius:6px;overflow-x:auto;white-space:pre-wrap}
.title-row{display:flex;align-items:center;gap:12px;flex-wrap:wrap}
.meta,.note,figcaption{color:var(--muted)}
.badge{display:inline-block;padding:3px 10px;border-radius:12px;font-weight:600;font-size:13px}
.badge.ok{background:var(--ok-bg);color:var(--ok)}.badge.bad{background:var(--bad-bg);color:var(--bad)}
.badge.unknown{background:#eee;color:var(--muted)}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(210px,1fr));gap:8px;margin:12px 0}
.card{border:1px solid var(--line);border-radius:6px;padding:6px 10px}
.card .k{color:var(--muted);font-size:12px}.card .v{font-size:16px;font-weight:600;overflow-wrap:anywhere}
table{border-collapse:collapse;margin:6px 0 10px;font-variant-numeric:tabular-nums}
th,td{border-bottom:1px solid var(--line);padding:4px 10px;text-align:left;vertical-align:top}
th{background:#f1f3f4;font-weight:600}td.n,th.n{text-align:right;white-space:nowrap}
.ok{color:var(--ok);font-weight:600}.bad{color:var(--bad);font-weight:600}
tr.chosen td{background:#fff8e1}tr.failed td{color:var(--muted)}
td.error,span.error{display:inline-block;max-width:360px;overflow-wrap:anywhere;font-size:12.5px}
figure{margin:8px 0 16px}svg.chart{width:100%;max-width:920px;height:auto;background:#fff}
svg text{font:11px system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;fill:#3c4043}
svg .title{font-size:12px;fill:#202124}svg .note{fill:#b3261e}
svg .note,svg .chosen-label,svg .marker-label{paint-order:stroke;stroke:#fff;stroke-width:3px;stroke-linejoin:round}
svg .grid{stroke:#eceff1}svg .axis{stroke:#5f6368}
svg .pt{fill-opacity:.72;stroke:#fff;stroke-width:.8}svg .pt.front{stroke:#1d1d1f;stroke-width:2;fill-opacity:.9}
svg .pt.chosen{stroke:#e0a800;stroke-width:3.5;fill-opacity:1}svg .chosen-label{font-weight:600;fill:#8a6d00}
svg .front-line{fill:none;stroke:#1d1d1f;stroke-width:1.2;stroke-opacity:.7}
svg .budget{stroke:#b3261e;stroke-width:1.5;stroke-dasharray:6 4}
svg .bar{fill:#5b8fc7}svg .marker{stroke-width:1.5;stroke-dasharray:4 3}
svg .marker.p50{stroke:#1e7d32}svg .marker.p99{stroke:#b3261e}
ul.notes{margin:4px 0;padding-left:20px}
footer{color:var(--muted);font-size:12.5px}
"""


def render_build_report(report: BuildReport | Mapping[str, Any] | None) -> str:
    """Renders a build's ``report.json`` content as one self-contained HTML page.

    Every section shows what the report holds and is left out when its data is missing
    (a ``--model`` build has no trials and no Pareto front). Every string from the report is
    escaped; a section that still fails to render says so in place instead of failing the build.

    Args:
        report: The build report, or its JSON form (any key may be missing or ``None``).

    Returns:
        The HTML document.
    """
    r = BuildReport.coerce(report)
    sections = [_budgets, _pareto, _latency, _test_metrics, _parity, _data, _trials, _failed_trials]
    main = "".join(_guarded(section, r) for section in sections)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>Kepler build {esc(r.build_id or '')}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        f"{_guarded(_header, r)}\n<main>\n{main}\n</main>\n{_guarded(_footer, r)}\n</body>\n</html>\n"
    )


def write_build_report(report: BuildReport | Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Renders the report and writes it atomically (see :mod:`kepler.atomic_files`).

    Args:
        report: The build report, or its JSON form.
        path: Where the HTML goes (its folder is created if needed).

    Returns:
        The path written.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    return atomic_files.write_text(target, render_build_report(report))


# ---------------------------------------------------------------- small helpers


def _d(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, (list, dict)) and not value)


def _l(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _guarded(render: Callable[[BuildReport], str], r: BuildReport) -> str:
    try:
        return render(r)
    except Exception as exc:  # a report is evidence; one odd field must not cost the whole page
        name = render.__name__.strip("_").replace("_", " ")
        return (
            f'<section class="render-error"><p class="bad">The {esc(name)} section could not be rendered: '
            f"{esc(type(exc).__name__)}: {esc(exc)}</p></section>"
        )


def _section(anchor: str, title: str, inner: str) -> str:
    return f'<section id="{anchor}">\n<h2>{title}</h2>\n{inner}\n</section>\n'


def _table(
    head: list[str],
    rows: list[list[str]],
    numeric: Collection[int] = (),
    row_classes: list[str] | None = None,
) -> str:
    """A table from safe cell markup; columns in ``numeric`` are right-aligned."""

    def cls(i: int) -> str:
        return ' class="n"' if i in numeric else ""

    out = [
        "<table>\n<thead><tr>",
        *(f"<th{cls(i)}>{h}</th>" for i, h in enumerate(head)),
        "</tr></thead>\n<tbody>\n",
    ]
    for index, row in enumerate(rows):
        row_class = row_classes[index] if row_classes else ""
        out.append(f'<tr class="{row_class}">' if row_class else "<tr>")
        out.extend(f"<td{cls(i)}>{cell}</td>" for i, cell in enumerate(row))
        out.append("</tr>\n")
    out.append("</tbody>\n</table>\n")
    return "".join(out)


def _pairs(pairs: list[tuple[str, Any]]) -> str:
    """A two-column table of safe label and value markup; pairs whose value is ``None`` are left out."""
    rows = [[label, value] for label, value in pairs if value is not None]
    return (
        "".join(
            [
                "<table>\n<tbody>\n",
                *(f"<tr><th>{k}</th><td>{v}</td></tr>\n" for k, v in rows),
                "</tbody>\n</table>\n",
            ]
        )
        if rows
        else ""
    )


def _flag(value: Any) -> bool | None:
    """A bool (numpy's included) as itself; anything else, missing included, as unknown."""
    numpy_bool = (
        getattr(getattr(value, "dtype", None), "kind", None) == "b" and getattr(value, "ndim", 1) == 0
    )
    return bool(value) if isinstance(value, bool) or numpy_bool else None


def _badge(ok: Any, yes: str, no: str, unknown: str) -> str:
    flag = _flag(ok)
    kind, text = ("unknown", unknown) if flag is None else ("ok", yes) if flag else ("bad", no)
    return f'<span class="badge {kind}">{text}</span>'


def _yes_no(ok: Any) -> str:
    flag = _flag(ok)
    return DASH if flag is None else '<span class="ok">yes</span>' if flag else '<span class="bad">no</span>'


def _maybe(value: Any, formatter: Callable[[Any], str] = sig) -> str | None:
    return None if value is None else formatter(value)


def _artifact(r: BuildReport) -> ReportArtifact:
    """The artifact section (empty where the report has none, or an odd value)."""
    return r.artifact if isinstance(r.artifact, ReportArtifact) else ReportArtifact()


def _target_name(r: BuildReport) -> str | None:
    return r.target_name


def _trial_dicts(r: BuildReport) -> list[dict[str, Any]]:
    return [t for t in _l(r.trials) if isinstance(t, dict)]


def _finished(trial: dict[str, Any]) -> bool:
    """Whether a trial has a score and a latency to plot (and no error)."""
    return (
        not trial.get("error")
        and num(trial.get("val_score")) is not None
        and num(trial.get("p99_ms")) is not None
    )


def _front(r: BuildReport) -> list[int]:
    return [int(n) for n in _l(r.pareto_front) if isinstance(n, numbers.Integral) and not isinstance(n, bool)]


def _chosen(r: BuildReport, trials: list[dict[str, Any]]) -> int | None:
    """The chosen trial's number: ``best_trial`` when recorded, else the trial of the best family whose
    config (or, failing that, validation score) equals the chosen one's; ``None`` when nothing matches."""
    best = r.best_trial
    if isinstance(best, numbers.Integral) and any(t.get("number") == best for t in trials):
        return int(best)
    family = r.best_algorithm
    same_family = [t for t in trials if family is not None and t.get("family") == family and _finished(t)]
    for key, wanted in (("config", r.best_config), ("val_score", r.validation_score)):
        matches = [t for t in same_family if wanted is not None and t.get(key) == wanted]
        if matches:
            return max(matches, key=lambda t: (bool(t.get("compliant")), float(t["val_score"])))["number"]
    return None


def _latency_budget(r: BuildReport) -> float | None:
    for row in _l(r.constraint_report):
        if (
            isinstance(row, dict)
            and row.get("budget") == "latency_p99_ms"
            and num(row.get("limit")) is not None
        ):
            return float(row["limit"])
    budget = num(_d(_d(r.budgets).get("latency_p99_ms")).get("limit"))
    return budget if budget is not None else num(_d(r.target).get("latency_p99_ms"))


# ---------------------------------------------------------------- sections


def _header(r: BuildReport) -> str:
    tests = _d(r.test_metrics)
    trials = _trial_dicts(r)
    target = r.target
    target_text = esc(_target_name(r)) if _target_name(r) else None
    if isinstance(target, dict) and target_text and num(target.get("threads")) is not None:
        threads = target["threads"]
        target_text += f" · {sig(threads)} thread{'' if threads == 1 else 's'}"
    model = r.best_algorithm or r.best_estimator
    if r.best_algorithm and r.best_estimator:
        model = f"{esc(r.best_algorithm)} <small>({esc(r.best_estimator)})</small>"
    elif model:
        model = esc(model)
    metric = r.metric
    score = tests.get("score")
    if score is None and metric is not None:
        score = tests.get(metric)
    failed = sum(1 for t in trials if not _finished(t))
    search = None
    if r.search_seconds is not None:
        search = seconds(r.search_seconds) + (
            f" of {seconds(r.time_budget_s)}" if r.time_budget_s is not None else ""
        )
        if r.search_stopped is True:
            search += " <small>(the trial running at the deadline was stopped)</small>"
    spark = r.spark if isinstance(r.spark, dict) else {}
    size = _artifact(r).size_mb
    cards = [
        ("best model", model),
        (f"test {esc(metric)}" if metric else "test score", _maybe(score)),
        ("validation score", _maybe(r.validation_score)),
        ("target", target_text),
        ("use case", _maybe(r.use_case, esc)),
        (
            "trials",
            f"{len(trials)}" + (f" <small>({failed} failed)</small>" if failed else "") if trials else None,
        ),
        ("search", search),
        ("Spark", _maybe(spark.get("note"), esc)),
        ("final refit, compile and measurement", _maybe(r.final_seconds, seconds)),
        ("total time", _maybe(r.total_seconds, seconds)),
        ("artifact size", _maybe(size, mb)),
        ("model file", _maybe(r.model_file, lambda v: f"<code>{esc(v)}</code>")),
    ]
    card_html = "".join(
        f'<div class="card"><div class="k">{k}</div><div class="v">{v}</div></div>'
        for k, v in cards
        if v is not None
    )
    meta = " · ".join(
        part
        for part in (
            esc(r.created_at) if r.created_at else "",
            f"{esc(r.kind)} build" if r.kind else "",
        )
        if part
    )
    config = _d(r.best_config)
    config_html = ""
    if config:
        config_html = (
            "<details><summary>chosen configuration</summary>\n"
            + _pairs([(esc(k), _config_value(v)) for k, v in config.items()])
            + "</details>\n"
        )
    command = f'<pre class="command">$ {esc(r.command)}</pre>\n' if r.command else ""
    ready = _badge(r.deployment_ready, "deployment ready", "not deployment ready", "readiness unknown")
    return (
        f'<header>\n<div class="title-row"><h1>Kepler build <code>{esc(r.build_id or DASH)}</code></h1>'
        f"{ready}</div>\n"
        + (f'<p class="meta">{meta}</p>\n' if meta else "")
        + command
        + (f'<div class="cards">{card_html}</div>\n' if card_html else "")
        + config_html
        + "</header>"
    )


def _config_value(value: Any) -> str:
    return sig(value) if num(value) is not None or isinstance(value, bool) else esc(value)


def _budgets(r: BuildReport) -> str:
    rows = [row for row in _l(r.constraint_report) if isinstance(row, dict)]
    if not rows:  # fall back on the benchmark's own budget check
        budgets = _d(_d(_artifact(r).benchmark).get("budgets"))
        rows = [{"budget": k, **_d(v)} for k, v in budgets.items()]
    if not rows:
        return ""
    table_rows = []
    for row in rows:
        key, ok = str(row.get("budget") or ""), _flag(row.get("ok"))
        limit, measured = num(row.get("limit")), num(row.get("measured"))
        if ok is True:
            share = f" · {pct(measured / limit)} of budget" if measured is not None and limit else ""
            status = f'<span class="ok">ok</span>{share}'
        elif ok is False:
            over = num(row.get("over_by"))
            if over is None and measured is not None and limit:
                over = measured / limit
            status = (
                '<span class="bad">over budget</span>' + (f" · {sig(over)}× the limit" if over else "")
                if measured is not None or over
                else '<span class="bad">not measured</span>'
            )
        else:
            status = DASH
        table_rows.append(
            [
                esc(key),
                by_unit(key, row.get("limit")),
                esc(row.get("source") or DASH),
                by_unit(key, row.get("measured")),
                status,
            ]
        )
    measures = [
        f"<code>{esc(row.get('budget'))}</code>: {esc(row['measure'])}"
        for row in rows
        if isinstance(row.get("measure"), str)
    ]
    note = f'<p class="note">Measured: {"; ".join(measures)}.</p>\n' if measures else ""
    return _section(
        "budgets",
        "Budgets",
        _table(["budget", "limit", "source", "measured", "status"], table_rows, {1, 3}) + note,
    )


def _pareto(r: BuildReport) -> str:
    trials = _trial_dicts(r)
    front = _front(r)
    if not trials and not front:
        return ""
    finished = [t for t in trials if _finished(t)]
    if not finished:
        return _section(
            "pareto", "Pareto front", '<p class="note">No trial finished with a score and a latency.</p>'
        )
    chosen = _chosen(r, trials)
    metric = r.metric
    chart = svg.pareto_scatter(
        finished, front, chosen, _latency_budget(r), f"validation {metric}" if metric else "validation score"
    )
    compliant = sum(1 for t in finished if t.get("compliant"))
    on_front = sum(1 for t in finished if t.get("number") in set(front))
    summary = (
        f'<p class="note">{len(finished)} finished trials ({compliant} within every budget, '
        f"{len(finished) - compliant} breaking one), {len(trials) - len(finished)} failed; "
        f"{on_front} on the Pareto front (validation score, p99 latency, size)"
        + (f"; the chosen one is trial #{esc(chosen)}" if chosen is not None else "")
        + ".</p>\n"
    )
    return _section("pareto", "Pareto front", summary + f"<figure>{chart}</figure>")


def _latency(r: BuildReport) -> str:
    bench = _d(_artifact(r).benchmark)
    batches = [b for b in _l(bench.get("batches")) if isinstance(b, dict)]
    if not bench:
        return ""
    throughput = None
    if bench.get("throughput_rows_s") is not None:
        throughput = f"{sig(bench['throughput_rows_s'])} rows/s" + (
            f" at batch {sig(bench['throughput_batch'])}" if bench.get("throughput_batch") is not None else ""
        )
    summary = _pairs(
        [
            ("target", _maybe(bench.get("target"), esc)),
            ("threads", _maybe(bench.get("threads"))),
            ("artifact size", _maybe(bench.get("size_mb"), mb)),
            ("load time", _maybe(bench.get("load_ms"), ms)),
            ("runtime process memory (fresh process, batch 1)", _maybe(bench.get("process_peak_rss_mb"), mb)),
            ("session memory (build process)", _maybe(bench.get("session_rss_mb"), mb)),
            ("peak build process memory", _maybe(bench.get("peak_rss_mb"), mb)),
            ("throughput", throughput),
        ]
    )
    table = (
        _table(
            ["batch", "p50", "p95", "p99", "mean", "iterations", "rows/s"],
            [
                [
                    sig(b.get("batch")),
                    ms(b.get("p50_ms")),
                    ms(b.get("p95_ms")),
                    ms(b.get("p99_ms")),
                    ms(b.get("mean_ms")),
                    sig(b.get("iterations")),
                    sig(b.get("throughput_rows_s")),
                ]
                for b in batches
            ],
            set(range(7)),
        )
        if batches
        else ""
    )
    figures = []
    for b in batches:
        hist = _d(b.get("histogram"))
        chart = svg.histogram(
            _l(hist.get("edges_ms")), _l(hist.get("counts")), {"p50": b.get("p50_ms"), "p99": b.get("p99_ms")}
        )
        if chart:
            caption = (
                f"batch {sig(b.get('batch'))}: p50 {ms(b.get('p50_ms'))}, p99 {ms(b.get('p99_ms'))}, "
                f"{sig(b.get('iterations'))} timed calls (the slowest 0.1% lie beyond the last bin)"
            )
            figures.append(f'<figure class="hist"><figcaption>{caption}</figcaption>{chart}</figure>\n')
    return _section("latency", "Latency", summary + table + "".join(figures))


def _test_metrics(r: BuildReport) -> str:
    tests = _d(r.test_metrics)
    if not tests:
        return ""
    metric = r.metric
    rows = [
        [f"score ({esc(metric)})" if key == "score" and metric else esc(key), sig(value)]
        for key, value in tests.items()
    ]
    notes = []
    if r.test_rows is not None:
        notes.append(f"on {sig(r.test_rows)} held-out rows")
    if r.test_metrics_note:
        notes.append(esc(r.test_metrics_note))
    note = f'<p class="note">{"; ".join(notes)}</p>\n' if notes else ""
    return _section("test-metrics", "Test metrics", note + _table(["metric", "value"], rows, {1}))


def _parity(r: BuildReport) -> str:
    parity = _d(_artifact(r).parity)
    if not parity:
        return ""
    summary = _pairs(
        [
            (
                "passed",
                _badge(parity.get("passed"), "passed", "failed", "unknown") if "passed" in parity else None,
            ),
            ("rows compared", _maybe(parity.get("rows"))),
            ("max absolute difference", _maybe(parity.get("max_abs_diff"))),
            ("max relative difference", _maybe(parity.get("max_rel_diff"))),
            ("label agreement", _maybe(parity.get("label_agreement"), pct)),
            ("rows out of tolerance", _maybe(parity.get("rows_out_of_tolerance"))),
            ("bit exact", sig(parity["bit_exact"]) if "bit_exact" in parity else None),  # not needed to pass
        ]
    )
    worst = [w for w in _l(parity.get("worst_rows")) if isinstance(w, dict)]
    worst_html = ""
    if worst:
        worst_html = "<h3>Worst rows</h3>\n" + _table(
            ["row", "abs diff", "native", "compiled", "native label", "compiled label"],
            [
                [
                    sig(w.get("row")),
                    sig(w.get("abs_diff")),
                    vector(w.get("native")),
                    vector(w.get("compiled")),
                    esc(w.get("native_label")) if w.get("native_label") is not None else DASH,
                    esc(w.get("compiled_label")) if w.get("compiled_label") is not None else DASH,
                ]
                for w in worst
            ],
            {0, 1},
        )
    return _section("parity", "Parity (native model vs compiled ONNX)", summary + worst_html)


def _data(r: BuildReport) -> str:
    data = r.data
    if not isinstance(data, TableSummary) or all(_empty(v) for v in data.to_dict().values()):
        return ""
    features = [str(f) for f in _l(data.features)]
    feature_html = None
    if features:
        feature_html = (
            f"<details><summary>{len(features)} columns</summary>"
            + ", ".join(f"<code>{esc(f)}</code>" for f in features)
            + "</details>"
        )
    parts = [
        _pairs(
            [
                ("table", _maybe(data.path, lambda v: f"<code>{esc(v)}</code>")),
                ("rows", _maybe(data.rows)),
                ("label", _maybe(data.label, esc)),
                ("task", _maybe(data.task, esc)),
                ("features", feature_html),
            ]
        )
    ]
    balance = _d(data.class_balance)
    counts = _d(balance.get("counts"))
    if counts:
        total = sum(num(c) or 0 for c in counts.values())
        parts.append(
            "<h3>Class balance</h3>\n"
            + _table(
                ["class", "rows", "share"],
                [[esc(k), sig(c), pct((num(c) or 0) / total) if total else DASH] for k, c in counts.items()],
                {1, 2},
            )
        )
        if balance.get("imbalanced"):
            parts.append(
                f'<p class="note">Imbalanced: the minority class is {pct(balance.get("minority_share"))} '
                "of the rows.</p>\n"
            )
    notes = [n for n in _l(data.notes) if n is not None]
    if notes:
        parts.append(
            '<h3>Notes</h3>\n<ul class="notes">' + "".join(f"<li>{esc(n)}</li>" for n in notes) + "</ul>\n"
        )
    return _section("data", "Data", "".join(parts))


def _trials(r: BuildReport) -> str:
    trials = _trial_dicts(r)
    if not trials:
        return ""
    front, chosen = set(_front(r)), _chosen(r, trials)
    ordered = sorted(
        trials,
        key=lambda t: (
            num(t.get("val_score")) is None,
            -(num(t.get("val_score")) or 0.0),
            num(t.get("number")) or 0.0,
        ),
    )
    shown = ordered[:TRIAL_ROWS]
    rows, classes = [], []
    for t in shown:
        marker = ' <span title="Pareto front">◆</span>' if t.get("number") in front else ""
        error = t.get("error")
        if error:
            text = str(error)
            cell = f'<span title="{esc(text)}">{esc(text[:200] + ("…" if len(text) > 200 else ""))}</span>'
            compliant = DASH
        else:
            cell = ""
            broken = _d(t.get("violations"))
            compliant = _yes_no(t.get("compliant"))
            if broken:
                compliant += ": " + ", ".join(f"{esc(k)} {sig(v)}×" for k, v in broken.items())
        rows.append(
            [
                f"{sig(t.get('number'))}{marker}",
                esc(t.get("family") or DASH),
                sig(t.get("val_score")),
                ms(t.get("p99_ms")),
                mb(t.get("size_mb")),
                compliant,
                cell,
            ]
        )
        classes.append(
            "chosen" if chosen is not None and t.get("number") == chosen else "failed" if error else ""
        )
    note = (
        '<p class="note">Sorted by validation score; ◆ marks the Pareto front'
        + (", the highlighted row is the chosen trial" if chosen is not None else "")
        + ". "
        + (f"Showing the best {TRIAL_ROWS} of {len(trials)} trials." if len(trials) > TRIAL_ROWS else "")
        + "</p>\n"
    )
    return _section(
        "trials",
        "Trials",
        note
        + _table(
            ["#", "family", "val score", "p99", "size", "within budgets", "error"],
            rows,
            {0, 2, 3, 4},
            classes,
        ),
    )


def _failed_trials(r: BuildReport) -> str:
    """Every distinct reason trials failed (the trials table shows only the best ones), with its count."""
    trials = _trial_dicts(r)
    summary = [f for f in _l(r.failed_trials) if isinstance(f, dict)]
    if not summary:  # an older report: count the reasons from the trials themselves
        counts: dict[str, list[dict[str, Any]]] = {}
        for t in trials:
            if t.get("error"):
                counts.setdefault(str(t["error"]), []).append(t)
        summary = [
            {"reason": k, "count": len(v), "families": sorted({str(t.get("family")) for t in v})}
            for k, v in sorted(counts.items(), key=lambda kv: -len(kv[1]))
        ]
    if not summary:
        return ""
    rows = [
        [
            sig(f.get("count")),
            esc(", ".join(str(x) for x in _l(f.get("families"))) or DASH),
            f'<span class="error">{esc(f.get("reason"))}</span>',
        ]
        for f in summary
    ]
    total = sum(num(f.get("count")) or 0 for f in summary)
    note = (
        f'<p class="note">{sig(total)} of {len(trials)} trials failed before they could be measured, '
        f"for {len(summary)} distinct reason{'' if len(summary) == 1 else 's'}.</p>\n"
    )
    return _section(
        "failed-trials", "Failed trials", note + _table(["trials", "families", "reason"], rows, {0})
    )


def _footer(r: BuildReport) -> str:
    artifact = _artifact(r)
    machine = _d(_d(artifact.benchmark).get("machine"))
    parts = []
    if machine:
        described = [
            esc(machine.get("cpu")) if machine.get("cpu") else "",
            f"{sig(machine['cores'])} cores" if machine.get("cores") is not None else "",
            esc(machine.get("platform")) if machine.get("platform") else "",
            f"Python {esc(machine['python'])}" if machine.get("python") else "",
        ]
        parts.append("Benchmarked on " + " · ".join(d for d in described if d))
    if artifact.path:
        parts.append(
            f"Artifact <code>{esc(artifact.path)}</code>"
            + (f" · sha256 <code>{esc(artifact.sha256)}</code>" if artifact.sha256 else "")
        )
    elif isinstance(r.artifact, str):
        parts.append(f"Artifact <code>{esc(r.artifact)}</code>")
    parts.append(
        "Kepler build report"
        + (f" {esc(r.build_id)}" if r.build_id else "")
        + ", rendered offline from report.json."
    )
    return "<footer>\n" + "".join(f"<p>{p}</p>\n" for p in parts) + "</footer>"
