"""Rejected POS lines, tied back to their receipts, so that a bad line never hides a sale.

A rejected line still names its receipt when its ``store_id`` and ``receipt_id`` are usable;
it still tells alcohol when its ``is_alcohol`` says so or, without a valid ``is_alcohol``, its
category is an alcohol category. Its receipt then carries the problem (``file:line: field:
reason``) and is an alcohol sale when any of its lines, rejected or not, is. A receipt whose
every line was rejected is still stored, without lines, when one of them is alcohol and one
of them gives its register, cashier and time (it cannot be placed in a business day without).
Pure.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from zoneinfo import ZoneInfo

import pandas as pd

from auditor.db.models import ID_LENGTH, NAME_LENGTH
from auditor.ingest.rejects import Reject, readable
from auditor.ingest.times import parse_local_time

BOOLEANS = {"true": True, "1": True, "false": False, "0": False}
MAX_ERRORS = 20  # problems kept per receipt; the rest are counted
RECEIPT_PROBLEM_COLUMNS = [
    "store_id",
    "receipt_id",
    "pos_errors",
    "alcohol",
    "register_id",
    "cashier_id",
    "cashier_name",
    "sold_at",
]
_TEXT = re.compile(r"[^\x00-\x1f\x7f]*")


def _usable(value: str, limit: int) -> bool:
    return len(value) <= limit and bool(_TEXT.fullmatch(value)) and readable(value) == value


def _usable_id(value: str) -> bool:
    return value != "" and _usable(value, ID_LENGTH)


def is_alcohol_line(row: dict[str, str], alcohol_categories: frozenset[str]) -> bool:
    """Whether a (rejected) row is alcohol, by the POS rule."""
    said = BOOLEANS.get(row.get("is_alcohol", "").strip().casefold())
    if said is not None:
        return said
    return row.get("category", "").strip().casefold() in alcohol_categories


def _receipt_fields(
    row: dict[str, str], store_id: str, zone_for: Callable[[str], ZoneInfo]
) -> tuple[str, str, str, pd.Timestamp] | None:
    """Register, cashier, cashier name and UTC time of a rejected row, if all are usable."""
    register, cashier, name, sold_at = (
        row.get(c, "").strip() for c in ("register_id", "cashier_id", "cashier_name", "sold_at")
    )
    if not (_usable_id(register) and _usable_id(cashier)):
        return None
    try:
        when = parse_local_time(sold_at, zone_for(store_id))
    except ValueError:
        return None
    name = name if _usable(name, NAME_LENGTH) else ""
    return register, cashier, name, pd.Timestamp(when).tz_convert("UTC")


@dataclass
class _Receipt:
    errors: list[str] = field(default_factory=list)
    count: int = 0
    alcohol: bool = False
    fields: tuple[str, str, str, pd.Timestamp] | None = None


def receipt_problems(
    rejects: Iterable[Reject],
    *,
    alcohol_categories: frozenset[str],
    zone_for: Callable[[str], ZoneInfo],
    source: str | None = None,
) -> pd.DataFrame:
    """One row per receipt named by rejected lines (:data:`RECEIPT_PROBLEM_COLUMNS`): its
    problems in line order, whether one of those lines is alcohol, and the register, cashier
    and time of the first of them that gives all three (empty and NaT when none does).

    ``source``, when given, names the file in the problems in place of each reject's own
    (the stored text then does not depend on the path the file was given by)."""
    found: dict[tuple[str, str], _Receipt] = {}
    for reject in sorted(rejects, key=lambda r: r.line or 0):
        store, receipt = (reject.row.get(c, "").strip() for c in ("store_id", "receipt_id"))
        if not (_usable_id(store) and _usable_id(receipt)):
            continue
        entry = found.setdefault((store, receipt), _Receipt())
        entry.count += 1
        if len(entry.errors) < MAX_ERRORS:
            shown = reject if source is None else replace(reject, source=source)
            entry.errors.append(readable(str(shown)))
        entry.alcohol = entry.alcohol or is_alcohol_line(reject.row, alcohol_categories)
        if entry.fields is None:
            entry.fields = _receipt_fields(reject.row, store, zone_for)
    rows = []
    for (store, receipt), entry in found.items():
        errors = entry.errors
        if entry.count > len(errors):
            errors = [*errors, f"... and {entry.count - len(errors)} more rejected lines"]
        fields = entry.fields or ("", "", "", pd.NaT)
        rows.append([store, receipt, errors, entry.alcohol, *fields])
    table = pd.DataFrame(rows, columns=RECEIPT_PROBLEM_COLUMNS)
    table["alcohol"] = table["alcohol"].astype(bool)
    table["sold_at"] = pd.to_datetime(table["sold_at"], utc=True)
    return table
