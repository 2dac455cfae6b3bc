"""kepler.build_report: report.json as typed classes; reports written before schema_version still read.

tests/previous_records/reports/ holds report.json files written by Kepler before reports carried
``schema_version`` (a search build, a ``--model`` build, and a search build tracked in a project).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kepler.build_report import BuildReport, BuildTracking, ReportArtifact, TableSummary, read_report
from kepler.errors import KeplerError
from kepler.reporting import render_build_report

PREVIOUS = Path(__file__).resolve().parent / "previous_records" / "reports"
SEARCH_ONLY = ("best_algorithm", "trials", "pareto_front", "plan", "metric", "seed", "class_labels")


def previous(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((PREVIOUS / f"{name}.json").read_text(encoding="utf-8"))
    assert "schema_version" not in data  # the fixture is of the previous form
    return data


@pytest.mark.parametrize("name", ["search", "model", "tracked"])
def test_a_report_of_the_previous_form_reads_and_keeps_its_keys(name: str) -> None:
    report = read_report(PREVIOUS / f"{name}.json")
    assert isinstance(report.artifact, ReportArtifact) and isinstance(report.data, TableSummary)
    assert report.artifact.sha256 and len(report.artifact.sha256) == 64
    assert report.artifact.parity is not None and report.artifact.parity["passed"] is True
    assert report.target_name == "edge" and report.data.label == "failure"
    assert report.to_dict() == {"schema_version": 1, **previous(name)}
    assert BuildReport.from_dict(report.to_dict()) == report


def test_a_search_report_has_the_search_keys() -> None:
    report = read_report(PREVIOUS / "search.json")
    assert report.kind == "search" and report.chosen == report.best_algorithm
    assert report.trials and report.trials[0]["family"] and report.pareto_front is not None
    assert report.data is not None and report.data.task == "classification" and report.data.columns
    assert report.tracking is None and "tracking" not in report.to_dict()


def test_a_model_report_has_only_the_keys_of_its_kind() -> None:
    report = read_report(PREVIOUS / "model.json")
    assert report.kind == "model" and report.model_file and report.chosen == "DecisionTreeClassifier"
    assert report.test_metrics is not None and report.test_metrics["accuracy"] > 0.5
    dumped = report.to_dict()
    assert all(report.get(key) is None and key not in dumped for key in SEARCH_ONLY)
    assert dumped["data"].keys() == {"rows", "label", "features", "path"}


def test_a_tracked_report_has_its_tracking_section() -> None:
    report = read_report(PREVIOUS / "tracked.json")
    assert isinstance(report.tracking, BuildTracking)
    assert report.tracking.unified_version == f"build-{report.build_id}"
    assert report.tracking.mlflow_run_id and report.tracking.lineage[-1] == report.tracking.unified_version
    assert report["tracking"]["unified_version"] == report.tracking.unified_version  # reads as the dict did


def test_a_report_of_a_newer_schema_is_refused_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "report.json"
    path.write_text(json.dumps({**previous("model"), "schema_version": 2}), encoding="utf-8")
    with pytest.raises(KeplerError) as caught:
        read_report(tmp_path)  # a build folder reads its report.json
    assert str(path) in str(caught.value) and "upgrade Kepler" in str(caught.value)


def test_a_missing_or_broken_report_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(KeplerError, match="no such report"):
        read_report(tmp_path / "nothing")
    (tmp_path / "report.json").write_text("{", encoding="utf-8")
    with pytest.raises(KeplerError, match="unreadable report"):
        read_report(tmp_path / "report.json")


def test_a_search_result_becomes_a_report_with_its_keys() -> None:
    result = {
        "best_algorithm": "lightgbm",
        "best_estimator": "LGBMClassifier",
        "positive_class": None,
        "class_labels": None,
        "artifact": "/elsewhere/artifact",
        "target": "edge",
        "data": {"rows": 10, "label": "failure", "features": ["a"], "source": None},
        "a_newer_key": {"kept": True},
    }
    report = BuildReport.of_search(
        result, build_id="b1", command=None, created_at="2026-11-30T00:00:00+00:00", target={"name": "edge"}
    )
    dumped = report.to_dict()
    assert dumped["kind"] == "search" and dumped["target"] == {"name": "edge"} and dumped["artifact"] is None
    assert dumped["positive_class"] is None and "positive_class" in dumped and "class_labels" in dumped
    assert dumped["data"]["source"] is None and dumped["a_newer_key"] == {"kept": True}
    assert report.extra == {"a_newer_key": {"kept": True}}
    assert "trials" not in dumped  # a key the search did not give stays out


def test_the_page_is_the_same_from_the_report_and_from_its_json() -> None:
    report = read_report(PREVIOUS / "search.json")
    page = render_build_report(report)
    assert page == render_build_report(report.to_dict()) == render_build_report(previous("search"))
    assert report.build_id is not None and report.build_id in page
