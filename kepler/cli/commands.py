"""Shared presentation for the build-like commands: progress bar in, tables or JSON out."""

from __future__ import annotations

from typing import Any


def run_build(*, as_json: bool, time_budget: str, model: Any, force: bool = False, **arguments: Any) -> None:
    """Calls :func:`kepler.builds.build` with a progress bar and prints its summary (or JSON)."""
    from kepler.automl.budgets import parse_duration
    from kepler.automl.plan import check_time_budget
    from kepler.builds import build
    from kepler.cli import output as out

    seconds = parse_duration(time_budget)
    if model is None:
        check_time_budget(seconds, force=force)
    with out.SearchProgress(seconds, enabled=model is None and not as_json) as progress:
        built = build(time_budget=time_budget, model=model, progress=progress, force=force, **arguments)
    if as_json:
        out.print_json({"build": str(built.path), **built.report.to_dict()})
        return
    console = out.console()
    report = built.report
    console.print(out.build_summary(report))
    console.print(
        f"[bold green]built[/] {report.chosen} for '{report.target_name}' → {built.path} "
        f"(report.html, report.json, artifact/)"
    )
