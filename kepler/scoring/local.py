"""Scoring in this process: the input streamed in batches, each scored and appended to the output, with a
progress bar; memory holds one batch at a time, whatever the table's size."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from kepler.errors import DataError, InputSchemaError
from kepler.runtimes.inputs import IGNORE
from kepler.runtimes.manifest import profile_from_manifest
from kepler.runtimes.predictor import Predictor
from kepler.scoring.frames import located, score_frame
from kepler.scoring.model import ScoringModel
from kepler.scoring.tables import (
    BatchReader,
    InputTable,
    TableWriter,
    partial_path,
    put_in_place,
    remove_partial,
    table_format,
)


def score_locally(
    model: ScoringModel,
    table: InputTable,
    output: Path,
    *,
    keep: Sequence[str],
    batch_rows: int,
    progress: bool,
) -> tuple[int, int]:
    """Scores ``table`` into ``output`` (written under a temporary name, renamed when complete).

    Returns:
        ``(rows, batches)``.

    Raises:
        InputSchemaError: a missing column, or rows that break the model's input contract (file and row named).
        DataError: an unreadable file, or a table with no rows.
    """
    artifact = model.artifact
    predictor = Predictor(artifact, profile_from_manifest(artifact.manifest), unknown_columns=IGNORE)
    reader = BatchReader(table, artifact.input_schema.names, keep, batch_rows)
    reader.check()
    partial = partial_path(output)
    writer = TableWriter(partial, table_format(output) or "parquet")
    try:
        with _Progress(progress, reader.total(), reader.unit, output.name) as bar:
            for batch in reader:
                try:
                    scored = score_frame(
                        predictor, batch.frame, keep, model.model_id, model.sha256, dictionary=True
                    )
                except InputSchemaError as exc:
                    raise located(exc, batch.where, batch.first_row) from None
                writer.write(scored)
                bar.update(batch.done)
        writer.close()
        if writer.rows == 0:
            raise DataError(f"{table.path}: the table has no data rows; score a table with rows")
        put_in_place(partial, output)
    except BaseException:  # an error or Ctrl-C: nothing half-written stays behind
        writer.close()
        remove_partial(partial)
        raise
    return writer.rows, reader.batches


class _Progress:
    """A Rich progress bar over the input (bytes of CSV or rows of Parquet), or nothing when not wanted."""

    def __init__(self, wanted: bool, total: int, unit: str, name: str) -> None:
        self.wanted = wanted
        self.total = total
        self.unit = unit
        self.name = name
        self._bar: object = None
        self._task: object = None

    def __enter__(self) -> _Progress:
        if self.wanted:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            amount = DownloadColumn() if self.unit == "bytes" else MofNCompleteColumn()
            bar = Progress(
                TextColumn(f"scoring → {self.name}"),
                BarColumn(),
                amount,
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            bar.start()
            self._task = bar.add_task("score", total=self.total)
            self._bar = bar
        return self

    def update(self, done: int) -> None:
        if self._bar is not None:
            self._bar.update(self._task, completed=done)  # type: ignore[attr-defined]

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()  # type: ignore[attr-defined]
