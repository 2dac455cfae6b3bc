"""The offline HTML drift report: one self-contained page, reference and current overlaid per drifted column."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kepler.reporting import svg
from kepler.reporting.fmt import esc, sig

if TYPE_CHECKING:
    from kepler.monitoring.drift import Distribution, DriftReport

REFERENCE = "#5b8fc7"
CURRENT = "#e8710a"

CSS = """
:root{--ok:#1e7d32;--ok-bg:#e6f4ea;--bad:#b3261e;--bad-bg:#fce8e6;--muted:#5f6368;--line:#dadce0}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
 color:#202124;background:#f8f9fa}
header,main{max-width:1040px;margin:0 auto;padding:16px 24px}
header{background:#fff;border-bottom:1px solid var(--line)}
h1{font-size:22px;margin:4px 0}h2{font-size:18px;margin:0 0 10px}h3{font-size:15px;margin:14px 0 6px}
section{background:#fff;border:1px solid var(--line);border-radius:8px;padding:16px 20px;margin:16px 0}
.meta,.note,figcaption{color:var(--muted)}
.badge{display:inline-block;padding:3px 10px;border-radius:12px;font-weight:600;font-size:13px}
.badge.ok{background:var(--ok-bg);color:var(--ok)}.badge.bad{background:var(--bad-bg);color:var(--bad)}
table{border-collapse:collapse;margin:6px 0 10px;font-variant-numeric:tabular-nums}
th,td{border-bottom:1px solid var(--line);padding:4px 10px;text-align:left;vertical-align:top}
th{background:#f1f3f4;font-weight:600}td.n,th.n{text-align:right;white-space:nowrap}
.ok{color:var(--ok);font-weight:600}.bad{color:var(--bad);font-weight:600}
figure{margin:8px 0 16px}svg.chart{width:100%;max-width:920px;height:auto;background:#fff}
svg text{font:11px system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;fill:#3c4043}
svg .title{font-size:12px;fill:#202124}svg .grid{stroke:#eceff1}svg .axis{stroke:#5f6368}
svg .reference{fill:#5b8fc7;fill-opacity:.55}svg .current{fill:#e8710a;fill-opacity:.45}
svg .current-line{fill:none;stroke:#e8710a;stroke-width:1.6}
"""


def render_drift_report(report: DriftReport) -> str:
    """The report as one HTML page: verdict, every test, and a chart per drifted column.

    Args:
        report: A drift report.

    Returns:
        The page (inline CSS and SVG; no scripts, no URLs).
    """
    verdict = (
        '<span class="badge bad">dataset drift</span>'
        if report.dataset_drift
        else '<span class="badge ok">no dataset drift</span>'
    )
    header = (
        f"<header><h1>Data drift {verdict}</h1>"
        f'<p class="meta">{esc(report.summary())}. Reference: {sig(report.reference_rows)} rows; '
        f"current: {sig(report.current_rows)} rows.</p></header>"
    )
    rows = "".join(
        "<tr>"
        f"<td>{esc(r.column)}</td><td>{esc(r.method)}</td>"
        f'<td class="n">{"∞" if r.statistic is None else sig(r.statistic, 4)}</td>'
        f'<td class="n">{"" if r.p_value is None else sig(r.p_value, 3)}</td>'
        f'<td class="n">{sig(r.threshold)}</td>'
        f'<td class="{"bad" if r.drifted else "ok"}">{"drift" if r.drifted else "no drift"}</td>'
        "</tr>"
        for r in report.columns
    )
    tests = (
        '<section id="tests"><h2>Tests</h2><table><thead><tr><th>column</th><th>method</th>'
        '<th class="n">statistic</th><th class="n">p-value</th><th class="n">threshold</th><th>verdict</th>'
        f"</tr></thead><tbody>{rows}</tbody></table>"
        '<p class="note">Each column is tested on its present values; a <code>missing_share</code> row '
        "compares how often the column is missing (Jensen–Shannon distance, drift at 0.1).</p>"
    )
    if report.skipped:
        tests += '<h3>Not tested</h3><ul class="note">' + "".join(
            f"<li>{esc(name)}: {esc(why)}</li>" for name, why in report.skipped
        )
        tests += "</ul>"
    tests += "</section>"
    figures = []
    for name in report.drifted_columns:
        distribution = report.distributions.get(name)
        if distribution is None:
            continue
        tested = [r for r in report.columns if r.column == name]
        caption = "; ".join(
            f"{esc(r.method)} {'∞' if r.statistic is None else sig(r.statistic, 4)}"
            + ("" if r.p_value is None else f" (p = {sig(r.p_value, 3)})")
            + (" drifted" if r.drifted else "")
            for r in tested
        )
        figures.append(
            f"<figure><h3>{esc(name)}</h3>{overlay(distribution, name)}<figcaption>{caption}</figcaption></figure>"
        )
    charts = (
        '<section id="drifted"><h2>Drifted columns</h2>'
        '<p class="note">Reference (blue) and current (orange) distributions of the present values.</p>'
        + "".join(figures)
        + "</section>"
        if figures
        else ""
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>Data drift</title><style>{CSS}</style></head><body>{header}<main>{tests}{charts}</main>"
        "</body></html>\n"
    )


def overlay(distribution: Distribution, name: str, width: int = 760, height: int = 260) -> str:
    """Reference and current distributions of one column overlaid in one inline SVG chart.

    Numeric columns are drawn as densities over their bins (bins are of unequal width); categorical
    ones as side-by-side bars of the share of each category.
    """
    if distribution.kind == "numeric":
        return _numeric_overlay(distribution, name, width, height)
    return _category_overlay(distribution, name, width, height)


def _numeric_overlay(distribution: Distribution, name: str, width: int, height: int) -> str:
    edges = [float(e) for e in distribution.labels]
    if len(edges) < 2:
        return ""
    lo, hi = edges[0], edges[-1]
    if hi <= lo:
        lo, hi = svg.nice_domain(lo, hi)
    spans = [max(b - a, (hi - lo) * 1e-3) for a, b in zip(edges, edges[1:], strict=False)]
    ref = [s / w for s, w in zip(distribution.reference, spans, strict=False)]
    cur = [s / w for s, w in zip(distribution.current, spans, strict=False)]
    left, right, top, bottom = 64, width - 20, 34, height - 48
    x = svg.Scale(lo, hi, left, right)
    y = svg.Scale(0.0, svg.nice_domain(0.0, max(ref + cur) or 1.0, 4)[1], bottom, top)
    body, over = svg.axes(x, y, sig, sig, esc(name), "density", 4)
    path = []
    for a, span, r, c in zip(edges, spans, ref, cur, strict=False):
        b = a + span
        body.append(
            svg.el(
                "rect", class_="reference", x=x(a), y=y(r), width=max(0.5, x(b) - x(a)), height=bottom - y(r)
            )
        )
        path.append(f"M{x(a):.1f} {bottom:.1f} V{y(c):.1f} H{x(b):.1f} V{bottom:.1f}")
        body.append(
            svg.el(
                "rect", class_="current", x=x(a), y=y(c), width=max(0.5, x(b) - x(a)), height=bottom - y(c)
            )
        )
    body.append(svg.el("path", class_="current-line", d=" ".join(path)))
    return _chart(width, height, f"{name}: reference and current", body + over + _legend(left + 8, 18))


def _category_overlay(distribution: Distribution, name: str, width: int, height: int) -> str:
    labels = [str(label) for label in distribution.labels]
    if not labels:
        return ""
    left, right, top, bottom = 64, width - 20, 34, height - 78
    y = svg.Scale(
        0.0,
        svg.nice_domain(0.0, max(distribution.reference + distribution.current) or 1.0, 4)[1],
        bottom,
        top,
    )
    body: list[str] = []
    for tick in y.ticks(4):
        py = y(tick)
        body.append(svg.el("line", class_="grid", x1=float(left), y1=py, x2=float(right), y2=py))
        body.append(svg.el("text", f"{tick:.0%}", class_="tick", x=left - 6.0, y=py + 4, text_anchor="end"))
    slot = (right - left) / len(labels)
    bar = slot * 0.38
    for index, (label, r, c) in enumerate(
        zip(labels, distribution.reference, distribution.current, strict=False)
    ):
        middle = left + slot * (index + 0.5)
        body.append(
            svg.el(
                "rect",
                svg.el("title", f"{esc(label)}: reference {r:.1%}"),
                class_="reference",
                x=middle - bar,
                y=y(r),
                width=bar,
                height=bottom - y(r),
            )
        )
        body.append(
            svg.el(
                "rect",
                svg.el("title", f"{esc(label)}: current {c:.1%}"),
                class_="current",
                x=middle,
                y=y(c),
                width=bar,
                height=bottom - y(c),
            )
        )
        shown = label if len(label) <= 18 else label[:17] + "…"
        body.append(
            svg.el(
                "text",
                esc(shown),
                class_="tick",
                x=middle,
                y=bottom + 14.0,
                text_anchor="end",
                transform=f"rotate(-35 {middle:.1f} {bottom + 14.0:.1f})",
            )
        )
    body += [
        svg.el("line", class_="axis", x1=float(left), y1=float(bottom), x2=float(right), y2=float(bottom)),
        svg.el("line", class_="axis", x1=float(left), y1=float(top), x2=float(left), y2=float(bottom)),
        svg.el(
            "text",
            "share",
            class_="title",
            x=14.0,
            y=(top + bottom) / 2,
            text_anchor="middle",
            transform=f"rotate(-90 14 {(top + bottom) / 2:.1f})",
        ),
    ]
    return _chart(width, height, f"{name}: reference and current", body + _legend(left + 8, 18))


def _legend(x: float, y: float) -> list[str]:
    parts = []
    for css, label in (("reference", "reference"), ("current", "current")):
        parts.append(
            f'<g transform="translate({x:.1f} {y:.1f})">'
            + svg.el("rect", class_=css, x=-5.0, y=-5.0, width=10.0, height=10.0)
            + svg.el("text", label, class_="legend", x=10.0, y=4.0)
            + "</g>"
        )
        x += 90
    return parts


def _chart(width: int, height: int, label: str, body: list[str]) -> str:
    return (
        f'<svg class="chart drift" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="{esc(label)}">' + "".join(body) + "</svg>"
    )
