"""The night's verdicts for loss-prevention tools: one row per audited alcohol sale.

Columns (:data:`EXPORT_COLUMNS`): ``store_id, register_id, cashier_id, receipt_id, sold_at,
estimated_age, age_spread, legal_age, age_threshold, p_under_legal, p_under_threshold,
challenged, flags``. ``sold_at`` is the store's local time in ISO 8601 with its UTC offset; the
age and its spread are in years, rounded to 0.1, empty (JSON: null) when no face was estimated;
``legal_age`` and ``age_threshold`` are the rules the night's run used for the store (a run
recorded before stores had rules: the legal age 18); ``p_under_legal`` and
``p_under_threshold`` the probabilities that the shopper is under them (0 to 1, rounded to
0.001; empty without a face); ``challenged`` whether the sale was estimated under the threshold
with an ID check recorded at the till (so not flagged; ``true``/``false`` in CSV); ``flags`` are
the flag kinds, ``;``-separated in CSV (empty for a clean sale) and a list in JSON. Rows come
from each store-night's current (succeeded) run, ordered by store, time of sale and receipt.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import IO, Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from auditor.db.models import AuditRun, Sale, SaleVerdict
from auditor.db.queries import current_runs, known_store_ids
from auditor.errors import AuditorError
from auditor.settings import RecordedAudit, Settings

EXPORT_COLUMNS = [
    "store_id",
    "register_id",
    "cashier_id",
    "receipt_id",
    "sold_at",
    "estimated_age",
    "age_spread",
    "legal_age",
    "age_threshold",
    "p_under_legal",
    "p_under_threshold",
    "challenged",
    "flags",
]
FORMATS = ("csv", "json")


class NoAuditResults(AuditorError):
    """The night asked for has not been audited (successfully)."""


@dataclass
class NightVerdicts:
    """The rows of a night, the stores they come from, and the stores asked for without any."""

    rows: list[dict[str, Any]]
    stores: list[str]
    not_audited: list[str]


def night_verdicts(
    session: Session, *, day: date, settings: Settings, store_ids: Sequence[str] = ()
) -> NightVerdicts:
    """Every verdict of ``day`` for ``store_ids`` (default: every store in the database)."""
    wanted = list(store_ids) or known_store_ids(session)
    current = current_runs(store_ids=wanted, first=day, last=day)
    runs: dict[str, int] = {}
    rules: dict[str, RecordedAudit] = {}
    for store_id, run_id, recorded in session.execute(
        current.with_only_columns(AuditRun.store_id, AuditRun.id, AuditRun.settings)
    ):
        runs[store_id] = run_id
        rules[store_id] = RecordedAudit.of(recorded)
    query = (
        sa.select(
            Sale.store_id,
            Sale.register_id,
            Sale.cashier_id,
            Sale.receipt_id,
            Sale.sold_at,
            SaleVerdict.estimated_age,
            SaleVerdict.age_spread,
            SaleVerdict.p_under_legal,
            SaleVerdict.p_under_threshold,
            SaleVerdict.challenged,
            SaleVerdict.flag_kinds,
        )
        .join(SaleVerdict, SaleVerdict.sale_id == Sale.id)
        .where(SaleVerdict.run_id.in_(list(runs.values())))
        .order_by(Sale.store_id, Sale.sold_at, Sale.receipt_id)
    )
    rows = []
    for row in session.execute(query) if runs else []:
        store_id, register_id, cashier_id, receipt_id, sold_at, age, spread = row[:7]
        p_legal, p_threshold, challenged, kinds = row[7:]
        recorded = rules[store_id]
        rows.append(
            {
                "store_id": store_id,
                "register_id": register_id,
                "cashier_id": cashier_id,
                "receipt_id": receipt_id,
                "sold_at": sold_at.astimezone(settings.store_zone(store_id)).isoformat(),
                "estimated_age": _rounded(age),
                "age_spread": _rounded(spread),
                "legal_age": _whole(recorded.legal_age),
                "age_threshold": _whole(recorded.age_threshold),
                "p_under_legal": _rounded(p_legal, 3),
                "p_under_threshold": _rounded(p_threshold, 3),
                "challenged": bool(challenged),
                "flags": kinds.split(";") if kinds else [],
            }
        )
    return NightVerdicts(
        rows=rows,
        stores=sorted(runs),
        not_audited=[s for s in wanted if s not in runs],
    )


def _rounded(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def _whole(value: int | float | None) -> int | float | None:
    """A recorded number as an int when it is whole (records may hold 25.0)."""
    return int(value) if value is not None and float(value).is_integer() else value


def write_verdicts(rows: Sequence[dict[str, Any]], stream: IO[str], fmt: str = "csv") -> None:
    """Write rows of :func:`night_verdicts` as CSV (with a header) or as a JSON array."""
    if fmt == "json":
        json.dump(list(rows), stream, indent=1, ensure_ascii=False)
        stream.write("\n")
        return
    if fmt != "csv":
        raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(EXPORT_COLUMNS)
    for row in rows:
        writer.writerow([_csv_cell(c, row[c]) for c in EXPORT_COLUMNS])


def _csv_cell(column: str, value: Any) -> Any:
    if value is None:
        return ""
    if column == "flags":
        return ";".join(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return value
