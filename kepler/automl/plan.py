"""The time plan of a build: what share of the budget the search gets, how it validates, what the final step measures.

The budget covers the work on the table: reading and typing it, the search, and the final refit, compile
and measurement. Only the one-off imports of the libraries (FLAML, the converters: about 3 s in a fresh
process) are left out, and reported. What a table costs besides the search grows with its columns: the
converter maps every column name with a scan of all inputs (quadratic), and each of 5 folds refits every
configuration. The plan reserves time for the final step from the table's shape, gives the search what
is left (never less than a quarter of the budget), validates wide tables on a holdout, and caps the
benchmark's batches so that their rows times columns stay bounded.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from kepler.automl.splits import CV_FOLDS, cv_folds
from kepler.errors import ProfileError
from kepler.targets import TargetProfile

MAX_TIME_BUDGET_S = (
    24 * 3600.0
)  # above it a build needs force=True (--force): a typo such as 99999h, not a plan
CV_MAX_ROWS = 20_000  # up to this many rows, 5-fold cross-validation: a small validation split picks noise
CV_MAX_COLUMNS = (
    500  # beyond this many feature columns a holdout: 5 fits per configuration leave too few of them
)
STOP_AT = 1.1  # share of its budget after which a search still running is stopped (goal: within 1.2x)
MIN_SEARCH_SHARE = (
    0.25  # the search keeps at least this share of the budget, whatever the table costs besides
)
# The final step (refit on every non-test row, convert, parity check, benchmark, a fresh process's memory),
# measured on a 2-core Intel Xeon (benchmarks/wide_table.py checks the goal on the wide table):
FINAL_BASE_S = 2.0  # a narrow table: 0.9-1.4 s alone, up to 2 s beside another build
FINAL_COLUMN_PAIR_S = 4e-7  # per column squared: 1,000 columns +0.4 s, 2,000 +1.3-2 s, 4,000 +4.7 s
FINAL_CELL_S = 5e-7  # per cell of the refit (rows × columns): a tree on 2,000 × 4,000 cells, 2.7 s
# The benchmark's largest batch, in cells: 10,000 rows × 2,000 columns made the build's process peak at 1.6 GB.
BENCH_MAX_CELLS = 1_000_000


@dataclass
class TimePlan:
    """How a build spends its time budget.

    Attributes:
        budget_s: The build's time budget.
        spent_s: Seconds spent before the search on the table (reading, typing, splitting), imports left out.
        imports_s: Seconds of the one-off library imports (outside the budget).
        final_s: Seconds reserved for the final step, estimated from the table's shape.
        search_s: The search's own budget (it is stopped at 1.1 times this).
        evaluation: ``{"eval_method": "cv", "n_splits": k}`` or ``{"eval_method": "holdout", "split_ratio": 0.2}``.
        batch_sizes: The benchmark's batch sizes: the target's, capped at :data:`BENCH_MAX_CELLS` cells.
        notes: What the plan changed and why, one sentence each.
    """

    budget_s: float
    spent_s: float
    imports_s: float
    final_s: float
    search_s: float
    evaluation: dict[str, Any]
    batch_sizes: tuple[int, ...]
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        data = asdict(self)
        data["batch_sizes"] = list(self.batch_sizes)
        return data


def check_time_budget(seconds: float, *, force: bool = False) -> float:
    """Refuses a budget above :data:`MAX_TIME_BUDGET_S` unless ``force``.

    Raises:
        ProfileError: too long, naming the maximum.
    """
    if seconds > MAX_TIME_BUDGET_S and not force:
        raise ProfileError(
            f"time budget {_duration(seconds)} is above the maximum of {_duration(MAX_TIME_BUDGET_S)}; "
            f"give a shorter one, or pass --force (force=True) to search that long"
        )
    return seconds


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:g} h"
    return f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"


def final_estimate(rows: int, columns: int) -> float:
    """Seconds the final step of a table of ``rows`` (all non-test rows) and ``columns`` feature columns takes."""
    return FINAL_BASE_S + FINAL_COLUMN_PAIR_S * columns**2 + FINAL_CELL_S * rows * columns


def benchmark_batches(profile: TargetProfile, columns: int) -> tuple[int, ...]:
    """The target's batch sizes whose cells (rows × columns) stay within :data:`BENCH_MAX_CELLS` (at least the
    smallest one)."""
    sizes = tuple(sorted(profile.batch_sizes))
    kept = tuple(b for b in sizes if b * max(columns, 1) <= BENCH_MAX_CELLS)
    return kept or sizes[:1]


def plan(
    budget_s: float,
    spent_s: float,
    imports_s: float,
    y_rest: Any,
    columns: int,
    task: str,
    profile: TargetProfile,
) -> TimePlan:
    """The plan for a search over ``len(y_rest)`` rows (the test split left out) of ``columns`` feature columns.

    Args:
        budget_s: The build's time budget.
        spent_s: Seconds already spent on the table (imports left out).
        imports_s: Seconds of the one-off imports, reported only.
        y_rest: The label of the search's rows (for the folds of a classification).
        columns: Feature columns.
        task: ``classification`` or ``regression``.
        profile: The target (its benchmark batch sizes).
    """
    rows = len(y_rest)
    notes: list[str] = []
    final_s = final_estimate(rows, columns)
    # The search may run to STOP_AT times its own budget (a trial is stopped, not waited for): plan for that.
    left = (budget_s - spent_s - final_s) / STOP_AT
    floor = budget_s * MIN_SEARCH_SHARE
    search_s = max(left, floor)
    if left < floor:
        needed = spent_s + final_s + floor * STOP_AT
        notes.append(
            f"the table needs about {spent_s + final_s:.0f} s besides the search ({spent_s:.1f} s to read and "
            f"split it, about {final_s:.0f} s for the final refit, compile and measurement); the search keeps "
            f"{MIN_SEARCH_SHARE:.0%} of the budget, so the build takes about {needed:.0f} s: give it more time"
        )
    if rows > CV_MAX_ROWS:
        evaluation: dict[str, Any] = {"eval_method": "holdout", "split_ratio": 0.2}
    elif columns > CV_MAX_COLUMNS:
        evaluation = {"eval_method": "holdout", "split_ratio": 0.2}
        notes.append(
            f"validated on a 20% holdout instead of {CV_FOLDS}-fold cross-validation: {columns} columns "
            f"(over {CV_MAX_COLUMNS}) make {CV_FOLDS} fits per configuration too slow for the budget"
        )
    else:
        folds = cv_folds(y_rest, task)
        evaluation = {"eval_method": "cv", "n_splits": folds}
        if folds < CV_FOLDS:
            notes.append(
                f"{folds}-fold cross-validation instead of {CV_FOLDS}-fold: the smallest class has only "
                f"{folds} rows among the search's rows, and every fold must hold every class"
            )
    batch_sizes = benchmark_batches(profile, columns)
    if batch_sizes != tuple(sorted(profile.batch_sizes)):
        dropped = ", ".join(str(b) for b in sorted(profile.batch_sizes) if b not in batch_sizes)
        notes.append(
            f"benchmark batches of {dropped} rows left out: with {columns} columns they exceed "
            f"{BENCH_MAX_CELLS:,} cells (memory and time)"
        )
    return TimePlan(
        budget_s=budget_s,
        spent_s=spent_s,
        imports_s=imports_s,
        final_s=final_s,
        search_s=search_s if math.isfinite(search_s) else budget_s,
        evaluation=evaluation,
        batch_sizes=batch_sizes,
        notes=notes,
    )
