"""Reading a CSV or Parquet file into stripped strings, with the line each row came from.

A CSV without quotes takes a fast path (pyarrow); any other goes through the exact path, where a
row of the wrong length or with bytes that are not UTF-8 becomes a reject.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from auditor.ingest import IngestError
from auditor.ingest.rejects import Reject, is_utf8

_CONTROL_BYTES = re.compile(rb"[\x00-\x09\x0b\x0c\x0e-\x1f\x7f]")
_UTF16_32_BOMS = (
    codecs.BOM_UTF32_LE,
    codecs.BOM_UTF32_BE,
    codecs.BOM_UTF16_LE,
    codecs.BOM_UTF16_BE,
)


class UnreadableFileError(IngestError):
    """A whole input file cannot be read: nothing from it is stored."""


@dataclass
class RawTable:
    """Rows of an input file as stripped strings, with the line each came from."""

    source: str
    header: list[str]  # every column of the file, case-folded
    columns: list[str]  # the columns the ingest knows, in file order
    frame: pd.DataFrame  # one str column per header column, plus "line"
    rejects: list[Reject]
    rows_read: int
    may_hold_control_characters: bool = True


def read_table(path: Path, required: Sequence[str], optional: Sequence[str] = ()) -> RawTable:
    """Read a CSV or Parquet file into stripped strings; raise if it cannot be read at all."""
    if path.suffix.lower() in (".parquet", ".pq"):
        table = _read_parquet(path, required, optional)
    else:
        table = _read_csv(path, required, optional)
    for column in table.header:
        table.frame[column] = table.frame[column].str.strip()
    return table


def _check_header(source: str, header: list[str], required: Sequence[str]) -> list[str]:
    names = [h.strip().casefold() for h in header]
    duplicates = sorted({n for n in names if names.count(n) > 1 and n})
    if duplicates:
        raise UnreadableFileError(f"{source}: column {duplicates[0]!r} appears twice in the header")
    missing = [c for c in required if c not in names]
    if missing:
        raise UnreadableFileError(
            f"{source}: missing column(s) {', '.join(missing)} (header: {','.join(header)[:200]})"
        )
    return names


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except IsADirectoryError:
        raise UnreadableFileError(f"{path}: is a folder, not a file") from None
    except FileNotFoundError:
        raise UnreadableFileError(f"{path}: file not found") from None
    except OSError as e:
        raise UnreadableFileError(f"{path}: cannot read: {e.strerror or e}") from None


def _read_csv(path: Path, required: Sequence[str], optional: Sequence[str]) -> RawTable:
    source = str(path)
    data = _read_bytes(path)
    if data.startswith(_UTF16_32_BOMS):
        raise UnreadableFileError(f"{source}: UTF-16/UTF-32 text; save the file as UTF-8")
    data = data.removeprefix(codecs.BOM_UTF8)
    try:
        text = data.decode("utf-8")
        valid_utf8 = True
    except UnicodeDecodeError:
        # Undecodable bytes are kept as surrogates so that only the rows holding them go.
        text = data.decode("utf-8", errors="surrogateescape")
        valid_utf8 = False
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
    except csv.Error as e:
        raise UnreadableFileError(f"{source}:1: not a CSV header: {e}") from None
    if not header:
        raise UnreadableFileError(f"{source}: empty file, no header line")
    if not is_utf8(",".join(header)):
        raise UnreadableFileError(f"{source}:1: header is not UTF-8 text; save the file as UTF-8")
    names = _check_header(source, header, required)
    known = _known(names, required, optional)
    simple = valid_utf8 and b'"' not in data and data.count(b"\r") == data.count(b"\r\n")
    frame = _read_simple_csv(data, names) if simple else None
    if frame is not None:
        # Without quotes, line breaks only end rows: any other control byte is in a value.
        controls = _CONTROL_BYTES.search(data) is not None
        return RawTable(source, names, known, frame, [], len(frame), controls)
    frame, rejects, rows_read = _read_any_csv(source, reader, names, check_utf8=not valid_utf8)
    return RawTable(source, names, known, frame, rejects, rows_read)


def _read_simple_csv(data: bytes, names: list[str]) -> pd.DataFrame | None:
    """The fast path for a file without quotes: every record is one physical line.

    Gives None when any line is not a plain row (blank, or the wrong number of fields), for
    the exact path to find and explain.
    """
    try:
        table = pa_csv.read_csv(
            io.BytesIO(data),
            read_options=pa_csv.ReadOptions(skip_rows=1, column_names=names),
            parse_options=pa_csv.ParseOptions(
                quote_char=False, newlines_in_values=False, ignore_empty_lines=False
            ),
            convert_options=pa_csv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid:
        return None
    frame = pd.DataFrame({n: pd.Series(table[n].to_pandas(), dtype="str") for n in names})
    frame["line"] = pd.Series(range(2, table.num_rows + 2), dtype="int64")
    return frame


def _read_any_csv(
    source: str, reader: Any, names: list[str], *, check_utf8: bool
) -> tuple[pd.DataFrame, list[Reject], int]:
    """The exact path: any CSV, quoted fields spanning lines, rows of the wrong length."""
    rows: list[list[str]] = []
    lines: list[int] = []
    rejects: list[Reject] = []
    start = reader.line_num + 1
    rows_read = 0
    try:
        for fields in reader:
            line, start = start, reader.line_num + 1
            if not fields:
                continue  # a blank line is no row
            rows_read += 1
            problem = _row_problem(fields, names, check_utf8)
            if problem is None:
                rows.append(fields)
                lines.append(line)
            else:
                row = dict(zip(names, fields, strict=False))
                rejects.append(Reject(source, line, problem[0], problem[1], row))
    except csv.Error as e:
        raise UnreadableFileError(f"{source}:{start}: not valid CSV: {e}") from None
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(names)
    frame = pd.DataFrame(
        {n: pd.Series(c, dtype="str") for n, c in zip(names, columns, strict=True)}
    )
    frame["line"] = pd.Series(lines, dtype="int64")
    return frame, rejects, rows_read


def _row_problem(fields: list[str], names: list[str], check_utf8: bool) -> tuple[str, str] | None:
    if len(fields) != len(names):
        return "row", f"expected {len(names)} fields, found {len(fields)}"
    if not check_utf8 or is_utf8("".join(fields)):
        return None
    for name, value in zip(names, fields, strict=True):
        if not is_utf8(value):
            return name, "not UTF-8 text (unknown encoding)"
    raise AssertionError("unreachable")


def _empty(names: list[str]) -> pd.DataFrame:
    return pd.DataFrame({n: pd.Series([], dtype="str") for n in names})


def _known(names: list[str], required: Sequence[str], optional: Sequence[str]) -> list[str]:
    return [n for n in names if n in required or n in optional]


def _read_parquet(path: Path, required: Sequence[str], optional: Sequence[str]) -> RawTable:
    """Parquet rows are numbered as the same data would be in CSV: the first row is line 2."""
    source = str(path)
    try:
        table = pq.read_table(path)
    except FileNotFoundError:
        raise UnreadableFileError(f"{source}: file not found") from None
    except (OSError, pa.ArrowException) as e:
        raise UnreadableFileError(f"{source}: not a readable Parquet file: {e}") from None
    names = _check_header(source, table.column_names, required)
    columns: dict[str, pd.Series] = {}
    for name, column in zip(names, table.columns, strict=True):
        try:
            # pyarrow takes a plain value; its stubs ask for a Scalar.
            as_text = pc.cast(column, pa.string()).fill_null("")  # type: ignore[arg-type]
        except pa.ArrowException as e:
            raise UnreadableFileError(
                f"{source}: column {name!r} cannot be read as text: {e}"
            ) from None
        columns[name] = pd.Series(as_text.to_pandas(), dtype="str")
    frame = pd.DataFrame(columns) if columns else _empty(names)
    frame["line"] = pd.Series(range(2, table.num_rows + 2), dtype="int64")
    return RawTable(source, names, _known(names, required, optional), frame, [], table.num_rows)
