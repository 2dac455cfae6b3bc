"""The offline HTML build report: structure, charts, escaping and robustness to missing data."""

from __future__ import annotations

import copy
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kepler.reporting import render_build_report, write_build_report
from kepler.reporting.fmt import mb, ms, pct, sig
from kepler.reporting.svg import log_ticks, nice_domain, nice_ticks

ESTIMATORS = {
    "lightgbm": "LGBMClassifier",
    "xgboost": "XGBClassifier",
    "extra_trees": "ExtraTreesClassifier",
    "random_forest": "RandomForestClassifier",
    "logistic_regression": "LogisticRegression",
}
FAMILIES = list(ESTIMATORS)
LATENCY_BUDGET_MS = 2.0
SIZE_BUDGET_MB = 1.0
HOSTILE_NOTE = "dropped <script>alert(1)</script> & 'quotes'"
HOSTILE_FEATURE = "temp<b>&deg;"
VOID = {"meta", "br", "hr", "img", "input", "link", "wbr", "col", "source", "area", "base", "embed", "track"}


def _front(trials: list[dict[str, Any]]) -> list[int]:
    """Same rule as kepler.automl.search.pareto_front: no other trial is at least as good on all three."""
    done = [t for t in trials if t["error"] is None]

    def beats(o: dict[str, Any], t: dict[str, Any]) -> bool:
        at_least = (
            o["val_score"] >= t["val_score"] and o["p99_ms"] <= t["p99_ms"] and o["size_mb"] <= t["size_mb"]
        )
        better = o["val_score"] > t["val_score"] or o["p99_ms"] < t["p99_ms"] or o["size_mb"] < t["size_mb"]
        return o is not t and at_least and better

    front = [t for t in done if not any(beats(o, t) for o in done)]
    return [t["number"] for t in sorted(front, key=lambda t: -t["val_score"])]


def _trials(rng: np.random.Generator, count: int) -> list[dict[str, Any]]:
    trials = []
    for number in range(1, count + 1):
        family = FAMILIES[int(rng.integers(len(FAMILIES)))]
        config = {"n_estimators": int(rng.integers(4, 300)), "max_depth": int(rng.integers(2, 16))}
        if rng.random() < 0.1:
            trials.append(
                {
                    "number": number,
                    "family": family,
                    "config": config,
                    "val_score": None,
                    "p99_ms": None,
                    "p50_ms": None,
                    "size_mb": None,
                    "elapsed_s": float(rng.random()),
                    "error": "ValueError: Input X contains NaN & <inf>",
                    "violations": {},
                    "compliant": False,
                }
            )
            continue
        p99 = float(np.exp(rng.uniform(np.log(0.01), np.log(8.0))))
        size = float(np.exp(rng.uniform(np.log(0.01), np.log(4.0))))
        violations = {}
        if p99 > LATENCY_BUDGET_MS:
            violations["latency_p99_ms"] = p99 / LATENCY_BUDGET_MS
        if size > SIZE_BUDGET_MB:
            violations["size_mb"] = size / SIZE_BUDGET_MB
        trials.append(
            {
                "number": number,
                "family": family,
                "config": config,
                "val_score": float(rng.uniform(0.3, 0.65)),
                "p99_ms": p99,
                "p50_ms": p99 * 0.6,
                "size_mb": size,
                "elapsed_s": float(rng.uniform(0.1, 2.0)),
                "error": None,
                "violations": violations,
                "compliant": not violations,
            }
        )
    return trials


def _batch(rng: np.random.Generator, batch: int, scale_ms: float) -> dict[str, Any]:
    samples = rng.lognormal(np.log(scale_ms), 0.25, 5000)
    counts, edges = np.histogram(samples, bins=30, range=(samples.min(), np.percentile(samples, 99.9)))
    return {
        "batch": batch,
        "p50_ms": float(np.percentile(samples, 50)),
        "p95_ms": float(np.percentile(samples, 95)),
        "p99_ms": float(np.percentile(samples, 99)),
        "mean_ms": float(samples.mean()),
        "iterations": 5000,
        "throughput_rows_s": batch / float(samples.mean()) * 1000,
        "histogram": {"edges_ms": [float(e) for e in edges], "counts": [int(c) for c in counts]},
    }


def make_report(seed: int = 0, trial_count: int = 50) -> dict[str, Any]:
    """A realistic search-build report with ~10% failed and some budget-breaking trials."""
    rng = np.random.default_rng(seed)
    trials = _trials(rng, trial_count)
    compliant = [t for t in trials if t["compliant"]]
    chosen = max(compliant, key=lambda t: t["val_score"])
    batches = [_batch(rng, 1, 0.03), _batch(rng, 100, 0.4), _batch(rng, 10000, 22.0)]
    return {
        "build_id": "20261126-061500-3fa2c1",
        "created_at": "2026-11-26T06:15:00+00:00",
        "kind": "search",
        "command": "kepler build data.csv --target edge --label failure",
        "data": {
            "path": "examples/data/sensors.csv",
            "rows": 5000,
            "label": "failure",
            "task": "classification",
            "features": ["machine_type", "air_temperature_k", HOSTILE_FEATURE],
            "class_balance": {"counts": {"0": 4780, "1": 220}, "minority_share": 0.044, "imbalanced": True},
            "notes": ["dropped 'timestamp': datetime column", HOSTILE_NOTE],
        },
        "target": {"name": "edge", "threads": 1, "latency_p99_ms": 50.0, "size_mb": 10.0, "memory_mb": 256.0},
        "use_case": "predictive_maintenance",
        "metric": "f1",
        "best_algorithm": chosen["family"],
        "best_estimator": ESTIMATORS[chosen["family"]],
        "best_config": chosen["config"],
        "deployment_ready": True,
        "validation_score": chosen["val_score"],
        "test_metrics": {
            "score": 0.58,
            "accuracy": 0.96,
            "f1": 0.58,
            "roc_auc": 0.93,
            "pr_auc": 0.61,
            "precision": 0.7,
            "recall": 0.5,
        },
        "constraint_report": [
            {
                "budget": "latency_p99_ms",
                "limit": LATENCY_BUDGET_MS,
                "source": "use case predictive_maintenance",
                "measured": 0.065,
                "ok": True,
                "over_by": None,
            },
            {
                "budget": "size_mb",
                "limit": SIZE_BUDGET_MB,
                "source": "use case predictive_maintenance",
                "measured": 0.129,
                "ok": True,
                "over_by": None,
            },
            {
                "budget": "memory_mb",
                "limit": 256.0,
                "source": "target edge",
                "measured": 300.0,
                "ok": False,
                "over_by": 300.0 / 256.0,
            },
        ],
        "trials": trials,
        "pareto_front": _front(trials),
        "search_seconds": 30.0,
        "time_budget_s": 30.0,
        "total_seconds": 41.2,
        "artifact": {
            "path": "builds/20261126-061500-3fa2c1/artifact",
            "sha256": "ab" * 32,
            "size_mb": 0.129,
            "parity": {
                "rows": 4000,
                "max_abs_diff": 4e-7,
                "max_rel_diff": 6e-4,
                "label_agreement": 1.0,
                "rows_out_of_tolerance": 0,
                "bit_exact": False,
                "passed": True,
                "worst_rows": [
                    {
                        "row": 3,
                        "abs_diff": 4e-7,
                        "native": [0.9, 0.1],
                        "compiled": [0.9, 0.1],
                        "native_label": 0,
                        "compiled_label": 0,
                    }
                ],
            },
            "benchmark": {
                "target": "edge",
                "threads": 1,
                "size_mb": 0.129,
                "load_ms": 2.1,
                "session_rss_mb": 3.7,
                "peak_rss_mb": 300,
                "machine": {
                    "cpu": "AMD EPYC",
                    "cores": 2,
                    "platform": "Linux-6.1-x86_64",
                    "python": "3.11.7",
                },
                "batches": batches,
                "throughput_rows_s": 440000,
                "throughput_batch": 10000,
                "budgets": {"latency_p99_ms": {"limit": 50, "measured": 0.065, "ok": True}},
            },
        },
    }


MINIMAL = {
    "kind": "model",
    "build_id": "20261126-070000-abcdef",
    "model_file": "model.joblib",
    "best_estimator": "RandomForestClassifier",
    "deployment_ready": False,
    "constraint_report": [
        {
            "budget": "latency_p99_ms",
            "limit": 50.0,
            "source": "target edge",
            "measured": None,
            "ok": False,
            "over_by": None,
        }
    ],
    "data": {"rows": 10, "label": None, "features": ["a", "b"]},
    "artifact": {"benchmark": {"batches": [{"batch": 1, "p50_ms": 0.1, "p99_ms": 0.2}]}},
}


class TagChecker(HTMLParser):
    """Walks a document and records tags that are closed out of order or never closed."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.seen: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.seen.append(tag)
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.seen.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> with open {self.stack[-3:]}")
        else:
            self.stack.pop()


def svgs(page: str) -> list[ET.Element]:
    return [ET.fromstring(fragment) for fragment in re.findall(r"<svg\b.*?</svg>", page, flags=re.S)]


def svg_by_class(page: str, name: str) -> list[ET.Element]:
    return [s for s in svgs(page) if name in s.get("class", "").split()]


def section(page: str, anchor: str) -> str:
    match = re.search(rf'<section id="{anchor}">(.*?)</section>', page, flags=re.S)
    assert match, f"no section {anchor}"
    return match.group(1)


@pytest.fixture
def report() -> dict[str, Any]:
    return make_report()


@pytest.fixture
def page(report: dict[str, Any]) -> str:
    return render_build_report(report)


def test_page_is_well_formed(page: str) -> None:
    checker = TagChecker()
    checker.feed(page)
    checker.close()
    assert checker.errors == []
    assert checker.stack == []
    assert page.startswith("<!DOCTYPE html>")
    for tag in ("svg", "table", "section", "header", "footer", "style"):
        assert tag in checker.seen
    assert "could not be rendered" not in page


def test_page_is_self_contained(page: str) -> None:
    assert "http://" not in page and "https://" not in page
    assert "<script" not in page.lower()
    assert not re.search(r"\b(src|href)=", page)
    assert "@import" not in page and "url(" not in page
    assert page.count("<style>") == 1


def test_sections_come_in_order(page: str) -> None:
    marks = [
        "<header>",
        'id="budgets"',
        'id="pareto"',
        'id="latency"',
        'id="test-metrics"',
        'id="parity"',
        'id="data"',
        'id="trials"',
        "<footer>",
    ]
    positions = [page.index(m) for m in marks]
    assert positions == sorted(positions)


def test_header(page: str, report: dict[str, Any]) -> None:
    header = page[page.index("<header>") : page.index("</header>")]
    assert report["build_id"] in header and report["created_at"] in header
    assert "kepler build data.csv --target edge --label failure" in header
    assert 'class="badge ok">deployment ready' in header
    assert report["best_algorithm"] in header and "test f1" in header and "0.58" in header


def test_not_ready_badge_is_red(report: dict[str, Any]) -> None:
    report["deployment_ready"] = False
    assert 'class="badge bad">not deployment ready' in render_build_report(report)


def test_pareto_plot_has_one_circle_per_finished_trial(page: str, report: dict[str, Any]) -> None:
    (plot,) = svg_by_class(page, "pareto")
    finished = [t for t in report["trials"] if t["error"] is None]
    assert len(finished) < len(report["trials"])  # the fixture has failed trials
    circles = plot.findall(".//circle")
    assert len(circles) == len(finished)
    assert {int(c.get("data-trial")) for c in circles} == {t["number"] for t in finished}
    front = {int(c.get("data-trial")) for c in circles if "front" in c.get("class").split()}
    assert front == set(report["pareto_front"])
    chosen = [c for c in circles if "chosen" in c.get("class").split()]
    assert len(chosen) == 1
    best = next(t for t in report["trials"] if t["config"] == report["best_config"])
    assert int(chosen[0].get("data-trial")) == best["number"]
    assert {c.get("fill") for c in circles} == {"#2a7ab0", "#d9481c"}  # compliant and breaking colours
    radii = [float(c.get("r")) for c in circles]
    assert max(radii) > 3 * min(radii)  # area follows size
    assert plot.find(".//path[@class='front-line']") is not None
    assert plot.find(".//line[@class='budget']") is not None
    texts = " ".join(t.text or "" for t in plot.iter("text"))
    assert "(log scale)" in texts and "budget 2 ms" in texts and "breaks a budget" in texts


def test_pareto_linear_when_latencies_are_close(report: dict[str, Any]) -> None:
    for t in report["trials"]:
        if t["p99_ms"] is not None:
            t["p99_ms"] = 0.5 + t["p99_ms"] / 100
    (plot,) = svg_by_class(render_build_report(report), "pareto")
    assert "(log scale)" not in " ".join(t.text or "" for t in plot.iter("text"))


def test_far_budget_is_an_arrow_not_a_line(report: dict[str, Any]) -> None:
    report["constraint_report"][0]["limit"] = 5000.0
    (plot,) = svg_by_class(render_build_report(report), "pareto")
    assert plot.find(".//line[@class='budget']") is None
    assert any("latency budget 5 s →" in (t.text or "") for t in plot.iter("text"))


def test_one_histogram_per_batch(page: str, report: dict[str, Any]) -> None:
    batches = report["artifact"]["benchmark"]["batches"]
    plots = svg_by_class(page, "histogram")
    assert len(plots) == len(batches)
    for plot, batch in zip(plots, batches, strict=False):
        assert len(plot.findall(".//rect")) == len(batch["histogram"]["counts"])
        markers = {m.get("class") for m in plot.findall(".//line") if "marker" in m.get("class", "")}
        assert markers == {"marker p50", "marker p99"}
    title = lambda p: [t.text for t in p.iter("text") if t.get("class") == "title"]  # noqa: E731
    assert "latency (µs)" in title(plots[0]) and "latency (ms)" in title(plots[2])


def test_budget_table(page: str, report: dict[str, Any]) -> None:
    budgets = section(page, "budgets")
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", budgets.split("<tbody>")[1], flags=re.S)
    assert len(rows) == len(report["constraint_report"])
    assert (
        "latency_p99_ms" in rows[0] and "2 ms" in rows[0] and "65 µs" in rows[0] and 'class="ok"' in rows[0]
    )
    assert "memory_mb" in rows[2] and 'class="bad"' in rows[2] and "1.17× the limit" in rows[2]
    assert "use case predictive_maintenance" in rows[0]


def test_report_strings_are_escaped(page: str) -> None:
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<b>" not in page and "temp&lt;b&gt;&amp;deg;" in page
    assert "NaN &amp; &lt;inf&gt;" in page


def test_tables(page: str, report: dict[str, Any]) -> None:
    metrics = section(page, "test-metrics")
    assert "score (f1)" in metrics and "roc_auc" in metrics and "0.93" in metrics
    parity = section(page, "parity")
    assert "4000" not in parity and "4,000" in parity and "4×10⁻⁷" in parity and "[0.9, 0.1]" in parity
    data = section(page, "data")
    assert "4,780" in data and "4.4%" in data and data.count("<li>") == 2
    trials = section(page, "trials")
    body = trials.split("<tbody>")[1]
    assert body.count("<tr") == len(report["trials"])
    scores = [float(s) for s in re.findall(r'<td>[^<]*</td><td class="n">([0-9.]+)</td>', body)]
    assert scores == sorted(scores, reverse=True) and len(scores) > 40
    assert body.count('<tr class="chosen">') == 1


def test_trials_table_is_capped() -> None:
    report = make_report(seed=3, trial_count=250)
    trials = section(render_build_report(report), "trials")
    assert trials.split("<tbody>")[1].count("<tr") == 200
    assert "Showing the best 200 of 250 trials" in trials


def test_footer_has_machine(page: str) -> None:
    footer = page[page.index("<footer>") :]
    assert "AMD EPYC" in footer and "2 cores" in footer and "Python 3.11.7" in footer


def test_minimal_model_build_renders() -> None:
    page = render_build_report(MINIMAL)
    checker = TagChecker()
    checker.feed(page)
    assert checker.errors == [] and checker.stack == []
    assert "could not be rendered" not in page
    assert 'id="pareto"' not in page and 'id="trials"' not in page and "<svg" not in page
    assert "not measured" in section(page, "budgets")
    assert "RandomForestClassifier" in page and "model.joblib" in page


@pytest.mark.parametrize(
    "broken",
    [
        {},
        None,
        {"trials": None, "pareto_front": None, "artifact": None, "data": None, "target": None},
        {
            "trials": [{"number": 1}, {"number": 2, "val_score": 0.5, "p99_ms": 0.1}, "junk"],
            "pareto_front": [2, "x"],
        },
        {"trials": [{"number": 1, "val_score": 0.5, "p99_ms": 0.0, "size_mb": 0, "violations": [1]}]},
        {
            "artifact": "builds/x/artifact",
            "target": "edge",
            "test_metrics": {"score": "n/a", "f1": float("nan")},
        },
        {
            "artifact": {
                "benchmark": {
                    "batches": [
                        {"batch": 1, "histogram": {"edges_ms": [1, 2], "counts": [1, 2]}},
                        {"batch": 2, "histogram": {"edges_ms": [1, 1], "counts": [0]}},
                    ]
                }
            }
        },
    ],
)
def test_odd_reports_render(broken: Any) -> None:
    page = render_build_report(broken)
    assert "</html>" in page and "could not be rendered" not in page


def test_numpy_scalars_count_as_numbers(report: dict[str, Any]) -> None:
    """build.py renders the in-memory report, which may still hold numpy scalars."""
    report["data"]["rows"] = np.int64(5000)
    for t in report["trials"]:
        t["number"] = np.int64(t["number"])
        if t["val_score"] is not None:
            t["val_score"], t["p99_ms"] = np.float32(t["val_score"]), np.float64(t["p99_ms"])
    report["pareto_front"] = [np.int64(n) for n in report["pareto_front"]]
    report["deployment_ready"] = np.bool_(True)
    report["constraint_report"][2]["ok"] = np.bool_(False)
    page = render_build_report(report)
    assert 'class="badge ok">deployment ready' in page and "over budget" in section(page, "budgets")
    (plot,) = svg_by_class(page, "pareto")
    assert len(plot.findall(".//circle")) == sum(1 for t in report["trials"] if t["error"] is None)
    assert len([c for c in plot.findall(".//circle") if "front" in c.get("class")]) == len(
        report["pareto_front"]
    )
    assert "5,000" in section(page, "data")


def test_a_failing_section_does_not_cost_the_page(
    page: str, report: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from kepler.reporting import svg

    def boom(*args: Any, **kwargs: Any) -> str:
        raise RuntimeError("bad <data>")

    monkeypatch.setattr(svg, "pareto_scatter", boom)
    broken = render_build_report(report)
    assert "The pareto section could not be rendered: RuntimeError: bad &lt;data&gt;" in broken
    assert section(broken, "trials") == section(page, "trials")


def test_single_trial_plot() -> None:
    report = {
        "trials": [{"number": 7, "val_score": 0.5, "p99_ms": 0.1, "size_mb": 1.0, "compliant": True}],
        "pareto_front": [7],
    }
    (plot,) = svg_by_class(render_build_report(report), "pareto")
    assert len(plot.findall(".//circle")) == 1


def test_write_is_atomic_and_overwrites(tmp_path: Path, report: dict[str, Any]) -> None:
    target = tmp_path / "build" / "report.html"
    assert write_build_report(copy.deepcopy(MINIMAL), target) == target
    written = write_build_report(report, target)
    assert written.read_text(encoding="utf-8") == render_build_report(report)
    assert [p.name for p in target.parent.iterdir()] == ["report.html"]


def test_formatting() -> None:
    assert sig(0.58) == "0.58" and sig(0.123456) == "0.123" and sig(440000.0) == "440,000"
    assert sig(5000) == "5,000" and sig(None) == "—" and sig(True) == "yes" and sig("<x>") == "&lt;x&gt;"
    assert sig(4e-7) == "4×10⁻⁷" and sig(6.02e-4) == "6.02×10⁻⁴"
    assert ms(0.065) == "65 µs" and ms(12.345) == "12.3 ms" and ms(2500) == "2.5 s" and ms(None) == "—"
    assert mb(0.129) == "0.129 MB" and pct(0.044) == "4.4%"


def test_ticks() -> None:
    assert nice_ticks(0, 1, 5) == [0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert nice_ticks(0.31, 0.64, 5) == [0.35, 0.4, 0.45, 0.5, 0.55, 0.6]
    assert nice_domain(0.31, 0.64, 5) == pytest.approx((0.3, 0.65))
    assert log_ticks(0.01, 1.0) == pytest.approx([0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0])
    assert log_ticks(0.001, 100.0) == pytest.approx([0.001, 0.01, 0.1, 1.0, 10.0, 100.0])
