"""Checks on the columns of a table: the first problem of each row makes it a reject."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd

from auditor.db.bulk import records
from auditor.ingest.rejects import Reject

_CONTROL_CHARACTERS = r"[\x00-\x1f\x7f]"


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
        rows = records(raw.loc[bad, list(columns)])
        lines = raw.loc[bad, "line"].tolist()
        found = zip(lines, self.field[bad], self.reason[bad], rows, strict=True)
        return [Reject(source, line, f, r, row) for line, f, r, row in found]
