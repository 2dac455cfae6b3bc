"""Inline SVG charts for the build report: nice ticks, linear/log scales, axes, a Pareto scatter and histograms."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from kepler.reporting.fmt import esc, ms, num, sig

COMPLIANT = "#2a7ab0"
BREAKING = "#d9481c"
FRONT = "#1d1d1f"
CHOSEN = "#e0a800"
BUDGET = "#b3261e"
BAR = "#5b8fc7"
CHAR_W = 6.6  # approximate width of one 11px character, for laying out legends


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values (steps of 1, 2 or 5 × 10ⁿ) that fall inside ``[lo, hi]``.

    Args:
        lo: Lower end of the range.
        hi: Upper end of the range.
        count: Roughly how many ticks to aim for.

    Returns:
        Ascending tick values; empty if the range is not finite.
    """
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return []
    lo, hi = min(lo, hi), max(lo, hi)
    if hi == lo:
        return [lo]
    step = _nice_step((hi - lo) / max(count, 1))
    decimals = max(0, -math.floor(math.log10(step)) + 1)
    first = math.ceil(lo / step - 1e-9)
    ticks = []
    index = first
    while index * step <= hi + step * 1e-9:
        ticks.append(round(index * step, decimals))
        index += 1
    return ticks


def _nice_step(raw: float) -> float:
    magnitude = 10 ** math.floor(math.log10(raw))
    fraction = raw / magnitude
    return (10 if fraction >= 7.07 else 5 if fraction >= 3.16 else 2 if fraction >= 1.41 else 1) * magnitude


def nice_domain(lo: float, hi: float, count: int = 5) -> tuple[float, float]:
    """The range widened outwards to whole tick steps (a flat range is padded).

    Args:
        lo: Smallest value.
        hi: Largest value.
        count: Roughly how many ticks the axis will show.

    Returns:
        ``(lo, hi)`` on tick steps.
    """
    if hi == lo:
        pad = abs(lo) * 0.1 or 1.0
        lo, hi = lo - pad, hi + pad
    step = _nice_step((hi - lo) / max(count, 1))
    return math.floor(lo / step + 1e-9) * step, math.ceil(hi / step - 1e-9) * step


def log_ticks(lo: float, hi: float) -> list[float]:
    """Powers of ten inside ``[lo, hi]``, plus 2× and 5× when the range spans few decades.

    Args:
        lo: Lower end (> 0).
        hi: Upper end.

    Returns:
        Ascending tick values.
    """
    if lo <= 0 or hi <= lo:
        return []
    first, last = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    steps = (1, 2, 5) if last - first <= 3 else (1,)
    ticks = [m * 10.0**e for e in range(first, last + 1) for m in steps]
    return [t for t in ticks if lo * (1 - 1e-9) <= t <= hi * (1 + 1e-9)]


class Scale:
    """Maps data values in ``[lo, hi]`` to pixels in ``[start, end]``, linearly or on a log scale."""

    def __init__(self, lo: float, hi: float, start: float, end: float, log: bool = False) -> None:
        """Makes a scale.

        Args:
            lo: Data value at ``start``.
            hi: Data value at ``end``.
            start: Pixel position of ``lo``.
            end: Pixel position of ``hi``.
            log: Whether to map ``log10`` of the values (``lo`` must be > 0).
        """
        self.lo, self.hi, self.start, self.end, self.log = lo, hi, start, end, log

    def __call__(self, value: float) -> float:
        """The pixel position of a data value (values outside the domain are clamped)."""
        value = min(max(value, self.lo), self.hi)
        if self.log:
            a, b, v = math.log10(self.lo), math.log10(self.hi), math.log10(value)
        else:
            a, b, v = self.lo, self.hi, value
        return self.start + (v - a) / ((b - a) or 1.0) * (self.end - self.start)

    def ticks(self, count: int = 5) -> list[float]:
        """Tick values for this scale's domain."""
        return log_ticks(self.lo, self.hi) if self.log else nice_ticks(self.lo, self.hi, count)


def el(tag: str, text: str = "", **attrs: Any) -> str:
    """One SVG element; ``text`` must already be HTML-safe, attribute values are escaped here.

    Args:
        tag: Element name.
        text: Safe inner markup; without it the element is self-closed.
        **attrs: Attributes; ``_`` becomes ``-`` and a trailing ``_`` is dropped (``class_``).
            Floats are written with one decimal; ``None`` values are left out.

    Returns:
        The element's markup.
    """
    parts = [tag]
    for key, value in attrs.items():
        if value is None:
            continue
        name = key.rstrip("_").replace("_", "-")
        parts.append(f'{name}="{value:.1f}"' if isinstance(value, float) else f'{name}="{esc(value)}"')
    head = " ".join(parts)
    return f"<{head}>{text}</{tag}>" if text else f"<{head}/>"


def _svg(width: int, height: int, label: str, body: list[str], class_: str) -> str:
    return (
        f'<svg class="{class_}" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="{esc(label)}">' + "".join(body) + "</svg>"
    )


def axes(
    x: Scale,
    y: Scale,
    x_format: Callable[[float], str],
    y_format: Callable[[float], str],
    x_label: str,
    y_label: str,
    y_count: int = 5,
) -> tuple[list[str], list[str]]:
    """Grid lines, both axis lines, tick labels and axis titles for a plot box.

    Args:
        x: Horizontal scale (its pixel range is the plot's left and right edge).
        y: Vertical scale (``start`` is the bottom edge, ``end`` the top).
        x_format: Safe label text for an x tick value.
        y_format: Safe label text for a y tick value.
        x_label: Safe x axis title.
        y_label: Safe y axis title.
        y_count: Roughly how many y ticks.

    Returns:
        SVG elements to draw under the data (grid, tick labels) and over it (axis lines, titles).
    """
    left, right, bottom, top = x.start, x.end, y.start, y.end
    parts: list[str] = []
    for tick in x.ticks(6):
        px = x(tick)
        parts.append(el("line", class_="grid", x1=px, y1=top, x2=px, y2=bottom))
        parts.append(el("text", x_format(tick), class_="tick", x=px, y=bottom + 15, text_anchor="middle"))
    for tick in y.ticks(y_count):
        py = y(tick)
        parts.append(el("line", class_="grid", x1=left, y1=py, x2=right, y2=py))
        parts.append(el("text", y_format(tick), class_="tick", x=left - 6, y=py + 4, text_anchor="end"))
    over = [
        el("line", class_="axis", x1=left, y1=bottom, x2=right, y2=bottom),
        el("line", class_="axis", x1=left, y1=top, x2=left, y2=bottom),
        el("text", x_label, class_="title", x=(left + right) / 2, y=bottom + 34, text_anchor="middle"),
        el(
            "text",
            y_label,
            class_="title",
            x=14.0,
            y=(top + bottom) / 2,
            text_anchor="middle",
            transform=f"rotate(-90 14 {(top + bottom) / 2:.1f})",
        ),
    ]
    return parts, over


def _legend(items: list[tuple[str, str]], x: float, y: float) -> list[str]:
    """Lays legend entries (swatch markup drawn at the origin, safe label) out in one row from ``(x, y)``."""
    parts = []
    for swatch, label in items:
        parts.append(
            f'<g transform="translate({x:.1f} {y:.1f})">{swatch}'
            + el("text", label, class_="legend", x=14.0, y=4.0)
            + "</g>"
        )
        x += 32 + CHAR_W * len(label)
    return parts


def pareto_scatter(
    trials: Sequence[dict[str, Any]],
    front: Sequence[int],
    chosen: int | None,
    latency_budget: float | None,
    y_label: str = "validation score",
    width: int = 760,
    height: int = 420,
) -> str:
    """Validation score against p99 latency for every finished trial.

    One ``<circle>`` per trial (area ∝ size, colour by compliance, outlined when on the Pareto front,
    a gold ring on the chosen one); a step line joins the front points that raise the best score so far;
    the latency budget is a dashed line (or an arrow at the right edge when it lies far beyond every trial).

    Args:
        trials: Trial dicts with numeric ``p99_ms`` and ``val_score`` (others are skipped).
        front: Numbers of the trials on the Pareto front.
        chosen: Number of the chosen trial, if known.
        latency_budget: The p99 budget in ms, if any.
        y_label: Plain-text y axis title (escaped here).
        width: Width in pixels.
        height: Height in pixels.

    Returns:
        The ``<svg>`` markup.
    """
    points = [t for t in trials if num(t.get("p99_ms")) is not None and num(t.get("val_score")) is not None]
    if not points:
        return ""
    front_set = set(front)
    xs = [float(t["p99_ms"]) for t in points]
    ys = [float(t["val_score"]) for t in points]
    lo, hi = min(xs), max(xs)
    budget_shown = False
    if latency_budget is not None and latency_budget > 0:
        new_lo, new_hi = min(lo, latency_budget), max(hi, latency_budget)
        if lo > 0:
            budget_shown = math.log10(new_hi / new_lo) - math.log10(hi / lo) <= 1.5
        else:
            budget_shown = latency_budget <= 3 * max(hi, 1e-12)
        if budget_shown:
            lo, hi = new_lo, new_hi
    log = lo > 0 and hi / lo > 10
    if log:
        lo, hi = lo / 1.25, hi * 1.25
    else:
        lo, hi = nice_domain(max(0.0, lo - (hi - lo) * 0.05) if lo >= 0 else lo, hi + (hi - lo) * 0.05, 6)
    box_left, box_right, box_top, box_bottom = 64, width - 20, 40, height - 48
    x = Scale(lo, hi, box_left, box_right, log=log)
    pad = (max(ys) - min(ys)) * 0.03
    y_lo, y_hi = nice_domain(min(ys) - pad, max(ys) + pad, 5)
    y = Scale(y_lo, y_hi, box_bottom, box_top)

    body, over = axes(x, y, ms, sig, "p99 latency" + (" (log scale)" if log else ""), esc(y_label))
    if latency_budget is not None and latency_budget > 0:
        if budget_shown:
            px = x(latency_budget)
            body.append(el("line", class_="budget", x1=px, y1=box_top, x2=px, y2=box_bottom))
            body.append(
                el(
                    "text",
                    f"budget {ms(latency_budget)}",
                    class_="note",
                    x=px - 4,
                    y=box_top + 12,
                    text_anchor="end",
                )
            )
        elif latency_budget > hi:
            body.append(
                el(
                    "text",
                    f"latency budget {ms(latency_budget)} →",
                    class_="note",
                    x=box_right - 4,
                    y=box_top + 12,
                    text_anchor="end",
                )
            )

    # The front also weighs size, so some of its points sit below others; the step line joins the ones
    # that raise the best score reached so far, left to right (the best score each latency can buy).
    steps: list[tuple[float, float]] = []
    for t in sorted(
        (t for t in points if t.get("number") in front_set),
        key=lambda t: (float(t["p99_ms"]), -float(t["val_score"])),
    ):
        if not steps or float(t["val_score"]) > steps[-1][1]:
            steps.append((float(t["p99_ms"]), float(t["val_score"])))
    if len(steps) > 1:
        path = f"M{x(steps[0][0]):.1f} {y(steps[0][1]):.1f}" + "".join(
            f" H{x(px):.1f} V{y(py):.1f}" for px, py in steps[1:]
        )
        body.append(el("path", class_="front-line", d=path))

    sizes = [num(t.get("size_mb")) for t in points]
    biggest = max((s for s in sizes if s is not None and s > 0), default=None)

    def radius(size: float | None) -> float:
        if size is None or biggest is None or size <= 0:
            return 4.0
        return max(2.5, 14.0 * math.sqrt(size / biggest))

    def order(t: dict[str, Any]) -> tuple[int, float]:
        rank = 2 if t.get("number") == chosen else 1 if t.get("number") in front_set else 0
        return rank, -(num(t.get("size_mb")) or 0.0)

    for t in sorted(points, key=order):
        on_front, is_chosen = t.get("number") in front_set, t.get("number") == chosen and chosen is not None
        colour = COMPLIANT if t.get("compliant") else BREAKING
        broken = (
            ", ".join(f"{esc(k)} {sig(v)}×" for k, v in (t.get("violations") or {}).items())
            if isinstance(t.get("violations"), dict)
            else ""
        )
        tip = (
            f"#{esc(t.get('number'))} {esc(t.get('family'))}: score {sig(t['val_score'])}, "
            f"p99 {ms(t['p99_ms'])}, size {sig(t.get('size_mb'))} MB"
            + (", Pareto front" if on_front else "")
            + (", chosen" if is_chosen else "")
            + (f", over budget: {broken}" if broken else "")
        )
        classes = "pt" + (" front" if on_front else "") + (" chosen" if is_chosen else "")
        cx, cy = x(float(t["p99_ms"])), y(float(t["val_score"]))
        body.append(
            el(
                "circle",
                el("title", tip),
                class_=classes,
                cx=cx,
                cy=cy,
                r=max(radius(num(t.get("size_mb"))), 5.0 if is_chosen else 0.0),
                fill=colour,
                data_trial=t.get("number"),
            )
        )
        if is_chosen:
            anchor = "end" if cx > box_right - 90 else "start"
            body.append(
                el(
                    "text",
                    f"chosen #{esc(t.get('number'))}",
                    class_="chosen-label",
                    x=cx + (-12.0 if anchor == "end" else 12.0),
                    y=cy - 10,
                    text_anchor=anchor,
                )
            )

    def dot(fill: str, stroke: str = "none", width_: float = 0.0) -> str:
        return el(
            "rect",
            x=-5.0,
            y=-5.0,
            width=10.0,
            height=10.0,
            rx=5.0,
            fill=fill,
            stroke=stroke,
            stroke_width=width_,
        )

    items = [
        (dot(COMPLIANT), "meets budgets"),
        (dot(BREAKING), "breaks a budget"),
        (dot("#ffffff", FRONT, 2.0), "Pareto front"),
    ]
    if chosen is not None:
        items.append((dot("#ffffff", CHOSEN, 3.0), "chosen"))
    if budget_shown:
        items.append((el("line", class_="budget", x1=0.0, y1=-6.0, x2=0.0, y2=6.0), "latency budget"))
    items.append(
        (
            el("rect", x=-7.0, y=-1.0, width=5.0, height=5.0, rx=2.5, fill="#9aa0a6")
            + el("rect", x=-1.0, y=-5.0, width=9.0, height=9.0, rx=4.5, fill="#9aa0a6"),
            "area ∝ size",
        )
    )
    body += over + _legend(items, box_left + 8, 18)
    return _svg(width, height, "Pareto front: validation score against p99 latency", body, "chart pareto")


def histogram(
    edges_ms: Sequence[float],
    counts: Sequence[int],
    markers: dict[str, float | None],
    width: int = 760,
    height: int = 230,
) -> str:
    """A latency histogram: one ``<rect>`` per bin, x in µs when every edge is under 1 ms, else ms.

    Args:
        edges_ms: Bin edges in ms (one more than ``counts``).
        counts: Samples per bin.
        markers: Vertical marker lines by label (``{"p50": 0.03, "p99": 0.065}``), in ms.
        width: Width in pixels.
        height: Height in pixels.

    Returns:
        The ``<svg>`` markup, or an empty string when edges and counts do not fit together.
    """
    parsed = [num(e) for e in edges_ms]
    values = [max(0.0, num(c) or 0.0) for c in counts]
    if not values or len(parsed) != len(values) + 1 or any(e is None for e in parsed):
        return ""
    edges = [e for e in parsed if e is not None]
    if edges[-1] <= edges[0]:
        return ""
    micro = edges[-1] < 1
    factor, unit = (1000.0, "µs") if micro else (1.0, "ms")
    shown = [e * factor for e in edges]
    box_left, box_right, box_top, box_bottom = 64, width - 20, 34, height - 48
    x = Scale(shown[0], shown[-1], box_left, box_right)
    y = Scale(0.0, nice_domain(0.0, max(values) or 1.0, 4)[1], box_bottom, box_top)
    body, over = axes(
        x, y, sig, lambda v: sig(int(v)) if float(v).is_integer() else sig(v), f"latency ({unit})", "runs", 4
    )
    for left, right, count in zip(shown, shown[1:], values, strict=False):
        top = y(count)
        body.append(
            el(
                "rect",
                el("title", f"{sig(left)}–{sig(right)} {unit}: {sig(int(count))}"),
                class_="bar",
                x=x(left) + 0.5,
                y=top,
                width=max(0.5, x(right) - x(left) - 1.0),
                height=box_bottom - top,
            )
        )
    body += over
    row = 0
    for label, value in markers.items():
        value = num(value)
        if value is None:
            continue
        px = x(value * factor)
        beyond = value * factor > shown[-1]
        body.append(el("line", class_=f"marker {label}", x1=px, y1=box_top - 4, x2=px, y2=box_bottom))
        anchor = "end" if px > box_right - 120 else "start"
        body.append(
            el(
                "text",
                f"{esc(label)} {ms(value)}{' →' if beyond else ''}",
                class_="marker-label",
                x=px + (-4.0 if anchor == "end" else 4.0),
                y=box_top + 8 + 13 * row,
                text_anchor=anchor,
            )
        )
        row += 1
    return _svg(width, height, "latency histogram", body, "chart histogram")
