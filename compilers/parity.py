"""Parity between a compiled artifact and its native model on the same rows."""

from __future__ import annotations

from typing import Any

import numpy as np

from kepler.compilers.converters import CLASSIFIER, OUTLIER
from kepler.targets import ParityTolerance

WORST_ROWS = 5


def native_outputs(model: Any, role: str, rows: Any) -> dict[str, np.ndarray]:
    """The native model's label and values on ``rows``, keyed like the compiled outputs."""
    if role == CLASSIFIER:
        return {
            "label": np.asarray(model.predict(rows)),
            "values": np.asarray(model.predict_proba(rows), dtype=np.float64),
        }
    if role == OUTLIER:
        return {
            "label": np.asarray(model.predict(rows)),
            "values": np.asarray(model.decision_function(rows), dtype=np.float64).reshape(-1, 1),
        }
    return {"values": np.asarray(model.predict(rows), dtype=np.float64).reshape(len(rows), -1)}


def compiled_outputs(predictor: Any, role: str, rows: Any) -> dict[str, np.ndarray]:
    """The compiled artifact's label and values on ``rows``."""
    if role == CLASSIFIER:
        return {"label": predictor.predict(rows), "values": predictor.predict_proba(rows).astype(np.float64)}
    if role == OUTLIER:
        return {
            "label": predictor.predict(rows),
            "values": predictor.decision_function(rows).astype(np.float64).reshape(-1, 1),
        }
    return {"values": predictor.predict(rows).astype(np.float64).reshape(len(rows), -1)}


def compare(
    native: dict[str, np.ndarray], compiled: dict[str, np.ndarray], tolerance: ParityTolerance
) -> dict[str, Any]:
    """Builds the parity report: max absolute and relative difference, label agreement, worst rows.

    A row is out of tolerance when any of its values differs by more than
    ``atol + rtol * |native|``. The report passes when no row is out of
    tolerance and label agreement reaches ``min_label_agreement``.
    """
    expected, actual = native["values"], compiled["values"]
    if expected.shape != actual.shape:
        return {
            "rows": int(len(expected)),
            "passed": False,
            "bit_exact": False,
            "error": f"output shape {actual.shape} differs from native {expected.shape}",
        }
    diff = np.abs(actual - expected)
    both_nan = np.isnan(actual) & np.isnan(expected)
    diff = np.where(both_nan, 0.0, diff)
    diff = np.where(np.isnan(diff), np.inf, diff)
    rel = diff / np.maximum(np.abs(expected), np.finfo(np.float64).tiny)
    allowed = tolerance.atol + tolerance.rtol * np.abs(expected)
    row_bad = (diff > allowed).any(axis=1)
    row_diff = diff.max(axis=1)
    report: dict[str, Any] = {
        "rows": int(len(expected)),
        "max_abs_diff": float(diff.max()) if diff.size else 0.0,
        "max_rel_diff": float(np.where(diff == 0, 0.0, rel).max()) if diff.size else 0.0,
        "rows_out_of_tolerance": int(row_bad.sum()),
        "label_agreement": None,
        "tolerance": {
            "atol": tolerance.atol,
            "rtol": tolerance.rtol,
            "min_label_agreement": tolerance.min_label_agreement,
        },
    }
    label_ok = True
    labels_differ = np.zeros(len(expected), dtype=bool)
    if "label" in native:
        labels_differ = np.asarray(native["label"]).astype(str) != np.asarray(compiled["label"]).astype(str)
        agreement = 1.0 - float(labels_differ.mean())
        report["label_agreement"] = agreement
        label_ok = agreement >= tolerance.min_label_agreement
    order = np.argsort(-np.where(labels_differ, np.inf, row_diff), kind="stable")[:WORST_ROWS]
    report["worst_rows"] = [
        {
            "row": int(i),
            "abs_diff": float(row_diff[i]),
            "native": expected[i].tolist(),
            "compiled": actual[i].tolist(),
            **(
                {"native_label": _plain(native["label"][i]), "compiled_label": _plain(compiled["label"][i])}
                if "label" in native
                else {}
            ),
        }
        for i in order
        if row_diff[i] > 0 or labels_differ[i]
    ]
    report["bit_exact"] = bool(report["max_abs_diff"] == 0.0 and not labels_differ.any())
    report["passed"] = bool(not row_bad.any() and label_ok)
    return report


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def summarize(report: dict[str, Any]) -> str:
    """One line describing a parity report, for error messages and tables."""
    if "error" in report:
        error: str = report["error"]
        return error
    labels = (
        f", label agreement {report['label_agreement']:.4%}"
        if report.get("label_agreement") is not None
        else ""
    )
    return (
        f"max abs diff {report['max_abs_diff']:.3g}, max rel diff {report['max_rel_diff']:.3g}, "
        f"{report['rows_out_of_tolerance']}/{report['rows']} rows out of tolerance{labels}"
    )
