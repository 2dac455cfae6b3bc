"""Offline build reports: ``report.json`` rendered as one self-contained HTML page."""

from kepler.reporting.html import render_build_report, write_build_report

__all__ = ["render_build_report", "write_build_report"]
