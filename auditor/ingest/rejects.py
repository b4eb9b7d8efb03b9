"""Rows left out of an ingest, and the ``<name>.rejects.csv`` file that lists them."""

from __future__ import annotations

import csv
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from auditor.ingest import IngestError

REJECT_COLUMNS = ("line", "field", "reason")


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


def rejects_path_for(path: Path) -> Path:
    """Where the rejects of ``path`` go: ``<name>.rejects.csv`` beside it (``sales.csv`` gives
    ``sales.csv.rejects.csv``), so ``x.csv`` and ``x.parquet`` keep their own."""
    return path.with_name(f"{path.name}.rejects.csv")


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
                writer.writerow([readable(values.get(c, "")) for c in header])
        os.replace(tmp, path)
    except OSError as e:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        raise IngestError(f"{path}: cannot write the rejects file: {e.strerror or e}") from e
    return path


def readable(value: str) -> str:
    """Undecodable bytes (kept as surrogates) shown as ``\\xNN``."""
    if is_utf8(value):
        return value
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def is_utf8(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
