"""``kp.score``: a table scored with a release's or an artifact's model, in this process or on Spark."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from kepler.errors import KeplerError
from kepler.scoring.frames import check_keep, output_names
from kepler.scoring.model import resolve_model
from kepler.scoring.tables import DEFAULT_BATCH_ROWS, check_output, open_input


@dataclass(frozen=True)
class ScoreResult:
    """What a scoring run wrote.

    Attributes:
        output: The output file (or folder, on Spark).
        rows: Rows scored.
        batches: Batches read (in this process) or input partitions (on Spark).
        seconds: Wall time of the scoring, model loading included.
        model_id: The release name, or the artifact folder's name.
        model_kind: ``release`` or ``artifact``.
        sha256: The model file's sha256, also written into every row.
        engine: ``local``, or ``spark:<master>``.
        columns: The output's columns, in order.
    """

    output: str
    rows: int
    batches: int
    seconds: float
    model_id: str
    model_kind: str
    sha256: str
    engine: str
    columns: list[str] = field(default_factory=list)

    @property
    def rows_per_second(self) -> float:
        """Rows scored per second of wall time."""
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON values."""
        return {**asdict(self), "rows_per_second": round(self.rows_per_second, 1)}


def score(
    release_or_artifact: str | os.PathLike[str],
    input: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    spark: Any = None,
    batch_size: int | None = None,
    keep: Sequence[str] | None = None,
    overwrite: bool = False,
    progress: bool = False,
    project: Any = None,
) -> ScoreResult:
    """Scores a table with a release's (or an artifact folder's) model and writes the predictions.

    The output holds, per input row: the ``keep`` columns, ``prediction``, one ``proba_<class>`` column per
    class (classifiers) or ``score`` (outlier detectors), ``model_id`` (the release or artifact folder name)
    and ``model_sha256``. They equal the artifact's own Predictor's on the same rows.

    Without Spark the input is streamed in batches of ``batch_size`` rows (one batch in memory at a time) and
    the output is one file whose suffix (``.parquet``/``.pq`` or ``.csv``) sets its format. With Spark it is
    scored by ``mapInPandas`` with one onnxruntime session per Python worker, and the output is a folder of part
    files (CSV when its name ends in ``.csv``, else Parquet). Either way the output appears whole or not at all.

    Args:
        release_or_artifact: A release of the current project, or an artifact folder.
        input: A Parquet or CSV file, or a folder of them (with Spark, also a URI Spark reads).
        output: Where to write (see above).
        spark: None (this process), a master URL (``local[2]``, ``spark://host:7077``) or a SparkSession.
        batch_size: Rows per batch (default 65,536); on Spark, rows per Arrow batch.
        keep: Input columns to copy to the output (keys such as an id and a timestamp).
        overwrite: Replace an existing output (default: refuse).
        progress: Show a progress bar on stderr (local scoring).
        project: The project (or its folder) to look the release up in (default: the one around the working
            directory).

    Raises:
        VersioningError: neither an artifact folder nor a release.
        ArtifactError: a missing or tampered artifact (checked on the driver and again on each executor).
        InputSchemaError: a missing column, or rows that break the model's input contract.
        DataError: an unreadable or empty input.
        KeplerError: the output exists, a bad batch size, or a wrong or unreachable Spark master.
    """
    rows_per_batch = DEFAULT_BATCH_ROWS if batch_size is None else int(batch_size)
    if rows_per_batch < 1:
        raise KeplerError(f"batch size {batch_size} must be at least 1 row")
    on_spark = spark is not None
    if on_spark and isinstance(spark, str):
        from kepler.spark_sessions import check_master

        check_master(spark.strip())  # first: a wrong master fails at once, before anything is read
    given_output = os.fspath(output)
    remote_output = on_spark and "://" in given_output
    out = None if remote_output else check_output(given_output, overwrite=overwrite, folder=on_spark)
    remote_input = on_spark and "://" in os.fspath(input)
    table = os.fspath(input) if remote_input else open_input(input)
    if out is not None and not isinstance(table, str) and out.resolve() in {f.resolve() for f in table.files}:
        raise KeplerError(f"{out} is the input; choose another output")
    model = resolve_model(release_or_artifact, project=project)
    kept = check_keep(keep or [], model.artifact.output_schema)
    started = time.perf_counter()
    if on_spark:
        from kepler.scoring.spark import score_on_spark

        rows, batches, master = score_on_spark(
            model, table, given_output, spark=spark, keep=kept, batch_rows=rows_per_batch, overwrite=overwrite
        )
        engine = f"spark:{master}"
    else:
        from kepler.scoring.local import score_locally

        assert out is not None and not isinstance(table, str)
        rows, batches = score_locally(
            model, table, out, keep=kept, batch_rows=rows_per_batch, progress=progress
        )
        engine = "local"
    return ScoreResult(
        output=given_output if out is None else str(out),
        rows=rows,
        batches=batches,
        seconds=time.perf_counter() - started,
        model_id=model.model_id,
        model_kind=model.kind,
        sha256=model.sha256,
        engine=engine,
        columns=[*kept, *output_names(model.artifact.output_schema)],
    )
