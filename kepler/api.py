"""File-level front doors the CLI calls: compile a saved model, benchmark an artifact, describe targets."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from kepler.errors import InputSchemaError


def _sample_without(frame: Any, drop: list[str] | None) -> Any:
    missing = [c for c in drop or [] if c not in frame.columns]
    if missing:
        raise InputSchemaError(f"column(s) {', '.join(missing)} to drop are not in the sample; check --drop")
    return frame.drop(columns=list(drop or []))


def compile_file(
    model_path: str | os.PathLike[str],
    target: str,
    sample_path: str | os.PathLike[str],
    *,
    output: str | os.PathLike[str] | None = None,
    drop: list[str] | None = None,
    benchmark: bool = True,
) -> Any:
    """Compiles a saved model file for a target, checking parity on a sample table.

    Args:
        model_path: A joblib/pickle file, an XGBoost JSON/UBJ model or a LightGBM text model.
        target: A profile name or TOML path.
        sample_path: A CSV or Parquet table of training rows.
        output: The artifact folder; by default ``artifacts/<model>-<target>``.
        drop: Columns of the sample that are not features (the label).
        benchmark: Time the artifact on the target and check its budgets (``kepler bench`` does it later).

    Returns:
        The compiled artifact.
    """
    from kepler.compilers import compile, load_model
    from kepler.data import read_table
    from kepler.targets import load_profile

    profile = load_profile(target)
    sample = _sample_without(read_table(sample_path), drop)
    model = load_model(model_path)
    destination = Path(output) if output else Path("artifacts") / f"{Path(model_path).stem}-{profile.name}"
    return compile(model, profile, sample, output=destination, benchmark=benchmark)


def _native_rows(native: Any, data: Any, columns: list[str]) -> Any:
    """The rows in the form the native model was fit on: a frame of its named columns, or a matrix of the
    artifact's columns in order when it was fit on an array (it has no ``feature_names_in_``)."""
    names = getattr(native, "feature_names_in_", None)
    wanted = [str(n) for n in names] if names is not None else columns
    missing = [c for c in wanted if c not in data.columns]
    if missing:
        raise InputSchemaError(
            f"the rows lack column(s) the native model reads: {', '.join(missing)}; "
            f"pass rows of its training data with --sample"
        )
    return data[wanted] if names is not None else data[wanted].to_numpy()


def bench(
    artifact: str | os.PathLike[str],
    target: str | None = None,
    *,
    compare_native: str | None = None,
    sample_path: str | None = None,
    drop: list[str] | None = None,
    batch_sizes: list[int] | None = None,
    min_time_s: float = 0.5,
) -> dict[str, Any]:
    """Benchmarks an artifact on a target, optionally against the native model in the same run.

    Args:
        artifact: The artifact folder.
        target: A profile name or TOML path; by default the artifact's own.
        compare_native: A saved native model to time on the same rows.
        sample_path: A table to time on; by default the artifact's probe rows.
        drop: Columns of the sample that are not features.
        batch_sizes: Overrides the profile's batch sizes.
        min_time_s: Least seconds to time each batch size, for each side; at most six times as long
            (at least 3 s) when calls are slow.

    Returns:
        The benchmark report (see :func:`kepler.runtimes.benchmark`).
    """
    from kepler.runtimes import benchmark, read_artifact

    opened = read_artifact(artifact)
    data = None
    if sample_path:
        from kepler.data import read_table

        data = _sample_without(read_table(sample_path), drop)
    native = native_data = None
    if compare_native:
        from kepler.compilers import load_model

        native = load_model(compare_native)
        if data is None:
            import pandas as pd

            probe = opened.probe()
            if not probe:
                raise InputSchemaError(
                    f"{artifact} holds no probe rows to time the native model on; pass rows with --sample"
                )
            data = pd.DataFrame(probe)
        native_data = _native_rows(native, data, list(opened.input_schema.names))
    return benchmark(
        opened,
        target,
        data=data,
        native=native,
        native_data=native_data,
        batch_sizes=tuple(batch_sizes) if batch_sizes else None,
        min_time_s=min_time_s,
        max_time_s=max(3.0, 6 * min_time_s),
    )


def targets() -> list[dict[str, Any]]:
    """Every registered target profile as a dict."""
    from kepler.targets import list_profiles, load_profile

    return [load_profile(name).to_dict() for name in list_profiles()]


def target(name: str) -> dict[str, Any]:
    """One target profile (by name or TOML path) as a dict."""
    from kepler.targets import load_profile

    return load_profile(name).to_dict()
