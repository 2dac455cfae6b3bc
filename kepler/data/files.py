"""Reading a source (a CSV or Parquet file, or a DataFrame) into a DataFrame, with one clear error per bad input."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from kepler.data.tables import TABLE_SUFFIXES
from kepler.errors import DataError
from kepler.runtimes.inputs import PANDAS_MISSING_WORDS

# Text a CSV cell holds for a missing value: pandas' defaults and blank text, the words the runtime reads as
# missing too, so that compiled models read the same words as missing at serving time (Dataset.input_typing).
CSV_MISSING_WORDS = ("", *sorted(PANDAS_MISSING_WORDS))

# Text that exported tables hold for a missing reading beyond pandas' words: dashes, "n.a.", "?", spreadsheet
# errors. In a column whose other values are all numbers (from any source), each is read as a missing value and
# counted in a note; the column's input typing then lists them, so compiled models read them as missing too.
# Matched after stripping surrounding spaces, case as written here.
NUMERIC_MISSING_WORDS = (
    "—",
    "–",
    "-",
    "--",
    "---",
    "?",
    "??",
    ".",
    "n.a.",
    "N.A.",
    "n.a",
    "N.A",
    "na",
    "Na",
    "N/a",
    "n/d",
    "N/D",
    "none",
    "NONE",
    "Null",
    "nil",
    "Nil",
    "NIL",
    "missing",
    "Missing",
    "MISSING",
    "#VALUE!",
    "#DIV/0!",
    "#REF!",
    "#NUM!",
    "#NAME?",
    "#NULL!",
)

_SNIFF_BYTES = 64 * 1024
_PARQUET_MAGIC = b"PAR1"
# Binary formats people export tables to by mistake, by their magic bytes.
_BINARY_KINDS = (
    (b"PK\x03\x04", "a ZIP archive (an Excel .xlsx workbook?); export the sheet as CSV"),
    (b"\xd0\xcf\x11\xe0", "an old Excel/Office file; export the sheet as CSV"),
    (b"\x1f\x8b", "gzip-compressed; decompress it first"),
    (b"SQLite format 3", "an SQLite database; export the table as CSV"),
)
# Text files hold almost no control characters besides tab, newline and carriage return.
_MAX_CONTROL_SHARE = 0.01


def read_source(source: object) -> tuple[pd.DataFrame, str, list[str]]:
    """Reads a table from a path or copies a DataFrame.

    Args:
        source: A ``.csv``, ``.parquet`` or ``.pq`` path, or a pandas DataFrame.

    Returns:
        The table (a copy: the caller's DataFrame is never changed), a description of the
        source for reports, and notes about the reading.

    Raises:
        DataError: a missing, empty or unreadable file, not a table, or an empty DataFrame.
    """
    notes: list[str]
    if isinstance(source, pd.DataFrame):
        frame, where, notes = source.copy(), "DataFrame", []
    elif isinstance(source, (str, os.PathLike)):
        frame, notes = _read_file(Path(source))
        where = str(source)
    else:
        raise DataError(
            f"cannot load a {type(source).__name__}; pass the path of a CSV or Parquet file "
            f"or a pandas DataFrame"
        )
    if frame.shape[1] == 0 or len(frame) == 0:
        raise DataError(f"{where}: the table has no data rows; pass a table with a header row and data rows")
    names = [str(c) for c in frame.columns]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise DataError(f"{where}: duplicate column names {', '.join(map(repr, duplicated))}; rename them")
    frame.columns = names  # the compiled graph names its inputs after columns, so names are text
    return frame, where, notes


def is_csv(path: str | os.PathLike[str]) -> bool:
    """Whether :func:`read_source` reads ``path`` as CSV."""
    return Path(path).suffix.lower() == ".csv"


def _read_file(path: Path) -> tuple[pd.DataFrame, list[str]]:
    if not path.exists():
        raise DataError(f"{path}: no such file; pass the path of a CSV or Parquet table")
    if not path.is_file():
        raise DataError(f"{path}: not a file; pass the path of a CSV or Parquet table")
    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise DataError(f"{path}: not a table ({suffix or 'no'} suffix); pass a .csv or .parquet file")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty; pass a table with a header row and data rows")
    with path.open("rb") as handle:
        head = handle.read(_SNIFF_BYTES)
    if is_csv(path):
        return _read_csv(path, head)
    return _read_parquet(path, head), []


def _read_csv(path: Path, head: bytes) -> tuple[pd.DataFrame, list[str]]:
    # The first bytes are checked before pandas sees the file: pandas reads almost anything as
    # a CSV, so a JSON document or an HTML page would come back as a strange table, not an error.
    if head.startswith(_PARQUET_MAGIC):
        raise DataError(f"{path}: this is a Parquet file with a .csv name; rename it to .parquet")
    _refuse_binary(path, head)
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]  # after a UTF-8 byte-order mark and blank space
    if start in (b"{", b"["):
        raise DataError(
            f"{path}: this is JSON, not CSV; convert it (pandas.read_json(...).to_csv(...)) "
            f"or pass a DataFrame"
        )
    if start == b"<":
        raise DataError(f"{path}: this is XML or HTML, not CSV; export the table as CSV")
    notes: list[str] = []
    encoding = "utf-8-sig"
    try:
        head.decode(encoding)
    except UnicodeDecodeError as exc:
        # A cut through a multi-byte character at the end of the sniffed bytes is not an error.
        if exc.start < len(head) - 3:
            encoding = "latin-1"  # industrial exports often are Latin-1 ("°C"); every byte decodes
            notes.append(f"{path.name} is not UTF-8; read as Latin-1")
    try:
        frame = pd.read_csv(
            path,
            encoding=encoding,
            low_memory=False,
            keep_default_na=False,
            na_values=list(CSV_MISSING_WORDS),
        )
    except pd.errors.EmptyDataError:
        raise DataError(
            f"{path}: the file holds no table; pass a table with a header row and data rows"
        ) from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise DataError(f"{path}: not a readable CSV table ({_first_line(exc)}); check the file") from None
    if len(frame) == 0:
        raise DataError(f"{path}: the file has a header but no data rows; pass a table with data rows")
    return frame, notes


def _read_parquet(path: Path, head: bytes) -> pd.DataFrame:
    if not head.startswith(_PARQUET_MAGIC):
        hint = "it looks like CSV text: rename it to .csv" if _looks_like_text(head) else "check the file"
        raise DataError(f"{path}: not a Parquet file; {hint}")
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises its own error types, which are not worth importing here
        raise DataError(
            f"{path}: not a readable Parquet table ({_first_line(exc)}); check the file"
        ) from None
    if len(frame) == 0:
        raise DataError(f"{path}: the table has columns but no data rows; pass a table with data rows")
    return frame


def _refuse_binary(path: Path, head: bytes) -> None:
    for magic, what in _BINARY_KINDS:
        if head.startswith(magic):
            raise DataError(f"{path}: not a CSV table: this is {what}")
    if not _looks_like_text(head):
        raise DataError(f"{path}: not a CSV table: the file is binary; pass a CSV or Parquet table")


def _looks_like_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    control = sum(1 for b in head if b < 32 and b not in (9, 10, 13))
    return control <= _MAX_CONTROL_SHARE * max(len(head), 1)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:160]
