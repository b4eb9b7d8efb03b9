"""What the POS and snapshot ingests share: reading tables, rejects, local times.

A table is read whole before anything is stored. A file that cannot be read at all raises
:class:`UnreadableFileError`; a row that is wrong becomes a :class:`Reject` and the rest go on.
"""

from __future__ import annotations

import codecs
import csv
import io
import logging
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from sqlalchemy.orm import Session

from auditor.db.bulk import insert_ignore, upsert
from auditor.db.models import Cashier, Register, Store
from auditor.errors import AuditorError
from auditor.settings import Settings

logger = logging.getLogger(__name__)

REJECT_COLUMNS = ("line", "field", "reason")
_CONTROL_CHARACTERS = r"[\x00-\x1f\x7f]"
_CONTROL_BYTES = re.compile(rb"[\x00-\x09\x0b\x0c\x0e-\x1f\x7f]")
_UTF16_32_BOMS = (
    codecs.BOM_UTF32_LE,
    codecs.BOM_UTF32_BE,
    codecs.BOM_UTF16_LE,
    codecs.BOM_UTF16_BE,
)


Progress = Callable[[int, int], None]
"""Told ``(advance, total)`` as work gets done: the CLI draws a bar with it."""


class IngestError(AuditorError):
    """An ingest cannot go ahead."""


class UnreadableFileError(IngestError):
    """A whole input file cannot be read: nothing from it is stored."""


@dataclass(frozen=True)
class Reject:
    """One row left out, and why. ``line`` is the physical line (the header is line 1)."""

    source: str
    line: int | None
    field: str
    reason: str
    row: dict[str, str]

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line is not None else self.source
        return f"{where}: {self.field}: {self.reason}"


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


def rejects_path_for(path: Path) -> Path:
    """Where the rejects of ``path`` go: ``<stem>.rejects.csv`` beside it."""
    return path.with_name(f"{path.stem}.rejects.csv")


def write_rejects(path: Path, columns: Sequence[str], rejects: Sequence[Reject]) -> Path | None:
    """Write ``rejects`` to ``path`` all at once (or remove a stale file when there are none)."""
    if not rejects:
        path.unlink(missing_ok=True)
        return None
    extra = REJECT_COLUMNS if any(r.line is not None for r in rejects) else REJECT_COLUMNS[1:]
    header = [*columns, *(c for c in extra if c not in columns)]
    tmp: Path | None = None
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        tmp = Path(tmp_name)
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(header)
            for r in rejects:
                values = {**r.row, "line": "" if r.line is None else str(r.line)}
                values |= {"field": r.field, "reason": r.reason}
                writer.writerow([_readable(values.get(c, "")) for c in header])
        os.replace(tmp, path)
    except OSError as e:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        raise IngestError(f"{path}: cannot write the rejects file: {e.strerror or e}") from e
    return path


def _readable(value: str) -> str:
    """Undecodable bytes (kept as surrogates) shown as ``\\xNN``."""
    if _is_utf8(value):
        return value
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


# -- reading tables ------------------------------------------------------------------------------


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
    if not _is_utf8(",".join(header)):
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


def _is_utf8(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _row_problem(fields: list[str], names: list[str], check_utf8: bool) -> tuple[str, str] | None:
    if len(fields) != len(names):
        return "row", f"expected {len(names)} fields, found {len(fields)}"
    if not check_utf8 or _is_utf8("".join(fields)):
        return None
    for name, value in zip(names, fields, strict=True):
        if not _is_utf8(value):
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
            as_text = pc.cast(column, pa.string()).fill_null("")
        except pa.ArrowException as e:
            raise UnreadableFileError(
                f"{source}: column {name!r} cannot be read as text: {e}"
            ) from None
        columns[name] = pd.Series(as_text.to_pandas(), dtype="str")
    frame = pd.DataFrame(columns) if columns else _empty(names)
    frame["line"] = pd.Series(range(2, table.num_rows + 2), dtype="int64")
    return RawTable(source, names, _known(names, required, optional), frame, [], table.num_rows)


# -- checks on columns ---------------------------------------------------------------------------


class Problems:
    """The first problem found on each row of a frame: checks run in order, the first one wins."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self.field = pd.Series(pd.NA, index=frame.index, dtype="object")
        self.reason = pd.Series(pd.NA, index=frame.index, dtype="object")

    def add(self, mask: pd.Series, field: str, reason: str | pd.Series) -> None:
        mask = mask.fillna(False).astype(bool) & self.field.isna()
        if not mask.any():
            return
        self.field[mask] = field
        self.reason[mask] = reason[mask] if isinstance(reason, pd.Series) else reason

    def add_each(self, found: dict[Any, tuple[str, str]]) -> None:
        """Add problems found row by row: ``{index: (field, reason)}``."""
        for index, (field, reason) in found.items():
            if pd.isna(self.field[index]):
                self.field[index], self.reason[index] = field, reason

    @property
    def ok(self) -> pd.Series:
        return self.field.isna()

    def check_text(
        self,
        columns: Iterable[str],
        required: set[str],
        lengths: dict[str, int],
        *,
        control_characters: bool = True,
    ) -> None:
        """Reject control characters (looked for unless ``control_characters`` is False),
        empty required values and values over their length."""
        for column in columns:
            values = self.frame[column]
            if control_characters:
                self.add(
                    values.str.contains(_CONTROL_CHARACTERS, regex=True),
                    column,
                    "contains a control character",
                )
            if column in required:
                self.add(values == "", column, "missing")
            limit = lengths.get(column)
            if limit is not None:
                self.add(values.str.len() > limit, column, f"longer than {limit} characters")

    def rejects(self, source: str, raw: pd.DataFrame, columns: Sequence[str]) -> list[Reject]:
        """A :class:`Reject` for each row with a problem, holding the row's ``columns``."""
        bad = ~self.ok
        rows = raw.loc[bad, list(columns)].to_dict("records")
        lines = raw.loc[bad, "line"].tolist()
        found = zip(lines, self.field[bad], self.reason[bad], rows, strict=True)
        return [Reject(source, line, f, r, row) for line, f, r, row in found]


# -- times ---------------------------------------------------------------------------------------


def parse_local_time(text: str, zone: ZoneInfo) -> datetime:
    """Parse an ISO 8601 time to aware UTC; a time without offset is local time in ``zone``.

    Local times at a daylight-saving change are read as :mod:`zoneinfo` reads them with
    ``fold=0``: a repeated time (clocks go back) is its first occurrence, and a skipped time
    (clocks go forward) is read with the offset in force before the change, as if the clock had
    not yet been put forward. Raises ``ValueError`` with a reason fit for a reject.
    """
    try:
        date.fromisoformat(text)
    except ValueError:
        pass
    else:
        raise ValueError(f"a date without a time of day: {text!r}")
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not an ISO 8601 time: {text[:40]!r}") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone, fold=0)
    try:
        return value.astimezone(UTC)
    except (OverflowError, ValueError):
        raise ValueError(f"time out of range: {text!r}") from None


def localize(value: datetime, zone: ZoneInfo) -> datetime:
    """A naive local wall time in ``zone`` as aware UTC, by the rule of :func:`parse_local_time`."""
    return value.replace(tzinfo=zone, fold=0).astimezone(UTC)


# -- stores, registers, cashiers -----------------------------------------------------------------


def save_places(
    *,
    session: Session,
    settings: Settings,
    store_ids: Sequence[str],
    registers: pd.DataFrame,
    cashiers: pd.DataFrame | None = None,
) -> None:
    """Make sure the stores, registers (and cashiers) a batch names exist.

    A store in the settings gets its name and zone from there (updated if they changed); one
    that is not gets the chain's default zone once. A cashier's name is the latest non-empty one.
    """
    known = [s for s in store_ids if settings.store(s) is not None]
    unknown = [s for s in store_ids if settings.store(s) is None]
    upsert(
        session,
        Store.__table__,
        [_store_row(settings, s) for s in known],
        keys=["id"],
        update=["name", "timezone"],
        only_if_changed=["name", "timezone"],
    )
    insert_ignore(session, Store.__table__, [_store_row(settings, s) for s in unknown], ["id"])
    insert_ignore(
        session, Register.__table__, registers.to_dict("records"), ["store_id", "register_id"]
    )
    if cashiers is None:
        return
    rows = cashiers.rename(columns={"cashier_name": "name"}).to_dict("records")
    keys = ["store_id", "cashier_id"]
    upsert(
        session,
        Cashier.__table__,
        [r for r in rows if r["name"]],
        keys=keys,
        update=["name"],
        only_if_changed=["name"],
    )
    insert_ignore(session, Cashier.__table__, [r for r in rows if not r["name"]], keys)


def _store_row(settings: Settings, store_id: str) -> dict[str, str]:
    store = settings.store(store_id)
    return {
        "id": store_id,
        "name": store.name if store else "",
        "timezone": str(settings.store_zone(store_id)),
    }
