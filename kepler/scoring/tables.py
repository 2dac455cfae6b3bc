"""The input table (Parquet or CSV: a file or a folder of them) read in batches, and the output written whole
or not at all (a temporary file renamed at the end)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from kepler.errors import DataError, InputSchemaError, KeplerError
from kepler.runtimes.inputs import PANDAS_MISSING_WORDS

CSV = "csv"
PARQUET = "parquet"
SUFFIXES = {".csv": CSV, ".parquet": PARQUET, ".pq": PARQUET}
DEFAULT_BATCH_ROWS = 65_536
_PARQUET_MAGIC = b"PAR1"


@dataclass(frozen=True)
class InputTable:
    """The files of an input table, all of one format.

    Attributes:
        path: The path given (a file or a folder).
        files: The table's files, in the order they are read.
        format: ``csv`` or ``parquet``.
    """

    path: Path
    files: tuple[Path, ...]
    format: str

    @property
    def size_bytes(self) -> int:
        """The files' total size."""
        return sum(f.stat().st_size for f in self.files)


def table_format(path: str | os.PathLike[str]) -> str | None:
    """``csv`` or ``parquet`` by a path's suffix (None: neither)."""
    return SUFFIXES.get(Path(path).suffix.lower())


def _table_files(folder: Path) -> list[Path]:
    # Spark and Hive write folders of part files beside markers (_SUCCESS, .crc files): those are skipped.
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file()
        and table_format(p) is not None
        and not any(part.startswith(("_", ".")) for part in p.relative_to(folder).parts)
    )


def open_input(path: str | os.PathLike[str]) -> InputTable:
    """The input table's files and format.

    Raises:
        DataError: a missing path, a file that is not .csv or .parquet, a folder with no table file or with both
            formats.
    """
    given = Path(path)
    if given.is_file():
        kind = table_format(given)
        if kind is None:
            raise DataError(
                f"{given}: not a table ({given.suffix or 'no'} suffix); pass a .csv or .parquet file"
            )
        return InputTable(given, (given,), kind)
    if not given.exists():
        raise DataError(f"{given}: no such file or folder; pass a CSV or Parquet file, or a folder of them")
    files = _table_files(given)
    kinds = sorted({table_format(f) or "" for f in files})
    if not files:
        raise DataError(f"{given}: the folder holds no .csv or .parquet file; pass a folder of table files")
    if len(kinds) > 1:
        raise DataError(f"{given}: the folder mixes CSV and Parquet files; pass a folder of one format")
    return InputTable(given, tuple(files), kinds[0])


def check_columns(where: str, columns: Sequence[str], needed: Sequence[str], keep: Sequence[str]) -> None:
    """Refuses a table that lacks a column the model reads or a column to keep.

    Raises:
        InputSchemaError: a missing column.
    """
    present = set(columns)
    missing = [n for n in needed if n not in present]
    if missing:
        shown = ", ".join(repr(n) for n in missing[:8]) + (
            f" and {len(missing) - 8} more" if len(missing) > 8 else ""
        )
        raise InputSchemaError(
            f"{where}: missing columns {shown}, which the model reads; score a table that has them"
        )
    absent = [k for k in keep if k not in present]
    if absent:
        raise InputSchemaError(
            f"{where}: no column {absent[0]!r} to keep; --keep names columns of the input "
            f"({', '.join(repr(c) for c in list(columns)[:12])}{' ...' if len(columns) > 12 else ''})"
        )


@dataclass
class Batch:
    """One batch of rows of one file.

    Attributes:
        frame: The rows (only the model's columns and the kept ones).
        where: The file it comes from.
        first_row: Its first row's number in that file (from 0).
        done: How far the whole table is read after it, in the unit of :meth:`BatchReader.total`.
    """

    frame: pd.DataFrame
    where: str
    first_row: int
    done: int


class BatchReader:
    """Reads an input table in batches of at most ``batch_rows`` rows; only one batch is in memory at a time.

    CSV files are read by pandas (as kepler.data reads a training table: pandas' missing words, text columns
    kept as text), Parquet files by pyarrow's dataset scanner. Only the needed columns are read.
    """

    def __init__(
        self, table: InputTable, needed: Sequence[str], keep: Sequence[str], batch_rows: int
    ) -> None:
        self.table = table
        self.needed = list(needed)
        self.keep = list(keep)
        self.columns = list(dict.fromkeys([*self.keep, *self.needed]))
        self.batch_rows = batch_rows
        self.batches = 0

    @property
    def unit(self) -> str:
        """What :attr:`Batch.done` counts: ``bytes`` (CSV) or ``rows`` (Parquet)."""
        return "bytes" if self.table.format == CSV else "rows"

    def total(self) -> int:
        """The table's size in :attr:`unit`."""
        if self.table.format == CSV:
            return self.table.size_bytes
        return sum(self._parquet_file(f).metadata.num_rows for f in self.table.files)

    def check(self) -> None:
        """Checks every file's columns before any row is scored.

        Raises:
            InputSchemaError: a file lacks a needed or kept column.
            DataError: a file cannot be read.
        """
        for path in self.table.files:
            check_columns(str(path), self._header(path), self.needed, self.keep)

    def __iter__(self) -> Iterator[Batch]:
        done = 0
        for path in self.table.files:
            if self.table.format == CSV:
                for batch in self._csv(path, done):
                    self.batches += 1
                    yield batch
                done += path.stat().st_size
            else:
                for batch in self._parquet(path, done):
                    self.batches += 1
                    done = batch.done
                    yield batch

    # ----------------------------------------------------------------- CSV

    def _encoding(self, path: Path) -> str:
        with path.open("rb") as handle:
            head = handle.read(1 << 16)
        if head.startswith(_PARQUET_MAGIC):
            raise DataError(f"{path}: this is a Parquet file with a .csv name; rename it to .parquet")
        if b"\x00" in head:
            raise DataError(f"{path}: a binary file, not CSV text; pass a CSV or Parquet table")
        try:
            head.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            if exc.start < len(head) - 3:  # not a cut through a character at the end of the sniffed bytes
                return "latin-1"  # industrial exports often are Latin-1 ("°C"); kepler.data reads them so
        return "utf-8-sig"

    def _header(self, path: Path) -> list[str]:
        if self.table.format == PARQUET:
            return [str(n) for n in self._parquet_file(path).schema_arrow.names]
        try:
            frame = pd.read_csv(path, nrows=0, encoding=self._encoding(path))
        except pd.errors.EmptyDataError:
            raise DataError(f"{path}: the file holds no table; pass a table with a header row") from None
        except (pd.errors.ParserError, UnicodeDecodeError, ValueError, OSError) as exc:
            raise DataError(
                f"{path}: not a readable CSV table ({_first_line(exc)}); check the file"
            ) from None
        return [str(c) for c in frame.columns]

    def _csv(self, path: Path, done: int) -> Iterator[Batch]:
        # Kept columns stay text: a CSV carries no types, and an id such as "007" must come back as it went in.
        keep_only = [k for k in self.keep if k not in set(self.needed)]
        first = 0
        try:
            reader = pd.read_csv(
                path,
                usecols=self.columns,
                chunksize=self.batch_rows,
                encoding=self._encoding(path),
                keep_default_na=False,
                na_values=sorted(PANDAS_MISSING_WORDS),
                dtype=dict.fromkeys(keep_only, str),
                low_memory=True,
            )
            with reader:
                size = max(path.stat().st_size, 1)
                for frame in reader:
                    handle = getattr(reader, "handles", None)
                    at = _position(handle, size)
                    yield Batch(frame, str(path), first, done + at)
                    first += len(frame)
        except (pd.errors.ParserError, UnicodeDecodeError, OSError) as exc:
            raise DataError(
                f"{path}: not a readable CSV table ({_first_line(exc)}); check the file"
            ) from None
        except ValueError as exc:
            if isinstance(exc, KeplerError):
                raise
            raise DataError(
                f"{path}: not a readable CSV table ({_first_line(exc)}); check the file"
            ) from None

    # ----------------------------------------------------------------- Parquet

    def _parquet_file(self, path: Path) -> Any:
        import pyarrow.parquet as pq

        try:
            # pre_buffer off: with it on, pyarrow reads ahead and holds row groups far beyond the batch.
            return pq.ParquetFile(path, pre_buffer=False)
        except Exception as exc:  # pyarrow raises its own error types
            raise DataError(
                f"{path}: not a readable Parquet file ({_first_line(exc)}); check the file"
            ) from None

    def _parquet(self, path: Path, done: int) -> Iterator[Batch]:
        source = self._parquet_file(path)
        first = 0
        try:
            for record_batch in source.iter_batches(batch_size=self.batch_rows, columns=self.columns):
                frame = record_batch.to_pandas()
                first_row = first
                first += len(frame)
                yield Batch(frame, str(path), first_row, done + first)
        except KeplerError:
            raise
        except Exception as exc:  # pyarrow raises its own error types
            raise DataError(
                f"{path}: not a readable Parquet file ({_first_line(exc)}); check the file"
            ) from None


def _position(handles: Any, size: int) -> int:
    """How many bytes of the file pandas has read (for the progress bar; the file's size when unknown)."""
    handle = getattr(handles, "handle", None)
    for source in (getattr(handle, "buffer", None), handle):
        try:
            return min(int(source.tell()), size)  # type: ignore[union-attr]
        except (AttributeError, OSError, ValueError):
            continue
    return 0


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


# --------------------------------------------------------------------------- output


def check_output(path: str | os.PathLike[str], *, overwrite: bool, folder: bool = False) -> Path:
    """The output path, checked before any work: a known suffix (unless Spark writes a folder) and, unless
    ``overwrite``, nothing there yet.

    Raises:
        KeplerError: an unknown suffix, or the output exists.
    """
    out = Path(path)
    if not folder and table_format(out) is None:
        raise KeplerError(f"{out}: give the output a .parquet or .csv name; the suffix sets its format")
    if out.exists() and not overwrite:
        raise KeplerError(f"{out} exists; remove it, choose another output, or pass --overwrite")
    if out.exists() and out.is_dir() and not folder:
        raise KeplerError(f"{out} is a folder; choose a file name ending in .parquet or .csv")
    if not out.parent.is_dir():
        raise KeplerError(f"{out.parent}: no such folder for the output; create it or choose another output")
    return out


def partial_path(out: Path) -> Path:
    """Where an output is written before it is renamed into place (beside it, so the rename is atomic)."""
    return out.parent / f".{out.name}.partial-{os.getpid()}"


def put_in_place(partial: Path, out: Path) -> None:
    """Renames a finished output into place, replacing what ``--overwrite`` allowed to replace."""
    if out.is_dir() and not partial.is_dir():
        raise KeplerError(f"{out} is a folder; choose a file name ending in .parquet or .csv")
    if out.is_dir():
        import shutil

        old = out.parent / f".{out.name}.old-{os.getpid()}"
        os.replace(out, old)
        os.replace(partial, out)
        shutil.rmtree(old, ignore_errors=True)
        return
    os.replace(partial, out)


def remove_partial(partial: Path) -> None:
    """Removes what an interrupted or failed run wrote."""
    import shutil

    if partial.is_dir():
        shutil.rmtree(partial, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()


class TableWriter:
    """Appends batches of output rows to one Parquet or CSV file (the schema is the first batch's)."""

    def __init__(self, path: Path, kind: str) -> None:
        self.path = path
        self.kind = kind
        self._writer: Any = None
        self._schema: Any = None
        self.rows = 0

    def write(self, frame: pd.DataFrame) -> None:
        """Appends ``frame``'s rows."""
        import pyarrow as pa

        table = pa.Table.from_pandas(frame, preserve_index=False)
        if self._writer is None:
            self._schema = table.schema.remove_metadata()
            self._writer = self._open(self._schema)
        elif table.schema.remove_metadata() != self._schema:
            table = table.cast(self._schema)  # a kept column all null in one batch and typed in another
        self._writer.write_table(table.replace_schema_metadata(None))
        self.rows += len(frame)

    def _open(self, schema: Any) -> Any:
        if self.kind == CSV:
            import pyarrow.csv as pacsv

            return pacsv.CSVWriter(str(self.path), schema)
        import pyarrow.parquet as pq

        return pq.ParquetWriter(str(self.path), schema)

    def close(self) -> None:
        """Finishes the file."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
