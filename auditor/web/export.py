"""The flag list as CSV (``/flags.csv``): one row per matching flag of the listed sales, in the
list's order, every page of it. No face and no frame; the cashier's name, since the list
shows it. Each row carries the rules its audit run used (``legal_age``, ``age_threshold``; a
run recorded before stores had rules used the legal age 18) and the sale's probabilities of a
shopper under them (``p_under_legal``, ``p_under_threshold``, 0 to 1, 3 decimals; empty without
a face)."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from auditor.db.models import AuditRun, Cashier, Flag, Review, Sale, SaleVerdict, User
from auditor.flag_filters import FlagFilter
from auditor.settings import RecordedAudit
from auditor.web.access import CurrentUser
from auditor.web.filters import matching_sales, order_by

COLUMNS = (
    "flag_id",
    "store_id",
    "business_date",
    "receipt_id",
    "register_id",
    "cashier_id",
    "cashier_name",
    "sold_at",
    "time_zone",
    "estimated_age",
    "age_spread",
    "legal_age",
    "age_threshold",
    "p_under_legal",
    "p_under_threshold",
    "kind",
    "sale_kinds",
    "decision",
    "reviewer",
    "reviewed_at",
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # what a spreadsheet reads as a formula


def flag_rows(
    session: Session, *, user: CurrentUser, filters: FlagFilter, zone: Callable[[str], ZoneInfo]
) -> list[dict[str, Any]]:
    """The rows of the download; ``zone(store_id)`` is the store's time zone: the matching
    flags of each listed sale (in its run), with the flag's current review."""
    listed = matching_sales(user, filters).subquery("listed")
    query = (
        sa.select(
            Flag.id,
            Sale.store_id,
            AuditRun.business_date,
            Sale.receipt_id,
            Sale.register_id,
            Sale.cashier_id,
            Cashier.name,
            Sale.sold_at,
            SaleVerdict.estimated_age,
            SaleVerdict.age_spread,
            Flag.legal_age,
            Flag.threshold,
            Flag.p_under_legal,
            Flag.p_under_threshold,
            Flag.run_id,
            Flag.kind,
            SaleVerdict.flag_kinds,
            Review.decision,
            User.username,
            Review.reviewed_at,
        )
        .select_from(listed)
        .join(Flag, sa.and_(Flag.run_id == listed.c.run_id, Flag.sale_id == listed.c.sale_id))
        .join(Sale, Sale.id == Flag.sale_id)
        .join(AuditRun, AuditRun.id == Flag.run_id)
        .outerjoin(
            Cashier,
            sa.and_(Cashier.store_id == Sale.store_id, Cashier.cashier_id == Sale.cashier_id),
        )
        .outerjoin(
            SaleVerdict,
            sa.and_(SaleVerdict.run_id == Flag.run_id, SaleVerdict.sale_id == Flag.sale_id),
        )
        .outerjoin(Review, Review.id == Flag.review_id)
        .outerjoin(User, User.id == Review.reviewer_id)
        .order_by(*order_by(filters.order, listed), Flag.id)
    )
    if filters.kind:
        query = query.where(Flag.kind == filters.kind)
    found = session.execute(query).all()
    zones = {store_id: zone(store_id) for store_id in {r.store_id for r in found}}
    unruled = {r.run_id for r in found if r.legal_age is None}  # runs from before stores' rules
    legal_age_of = {
        run_id: _whole(RecordedAudit.of(settings).legal_age)
        for run_id, settings in session.execute(
            sa.select(AuditRun.id, AuditRun.settings).where(AuditRun.id.in_(unruled))
        )
    }
    rows = []
    for r in found:
        store_zone = zones[r.store_id]
        rows.append(
            {
                "flag_id": r.id,
                "store_id": r.store_id,
                "business_date": r.business_date.isoformat(),
                "receipt_id": r.receipt_id,
                "register_id": r.register_id,
                "cashier_id": r.cashier_id,
                "cashier_name": r.name or "",
                "sold_at": r.sold_at.astimezone(store_zone).isoformat(),
                "time_zone": store_zone.key,
                "estimated_age": _rounded(r.estimated_age),
                "age_spread": _rounded(r.age_spread),
                "legal_age": r.legal_age if r.legal_age is not None else legal_age_of[r.run_id],
                "age_threshold": r.threshold,
                "p_under_legal": _probability(r.p_under_legal),
                "p_under_threshold": _probability(r.p_under_threshold),
                "kind": r.kind,
                "sale_kinds": r.flag_kinds or "",
                "decision": r.decision or "",
                "reviewer": r.username or "",
                "reviewed_at": r.reviewed_at.isoformat() if r.reviewed_at else "",
            }
        )
    return rows


def _rounded(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def _probability(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def _whole(value: int | float) -> int | float:
    return int(value) if float(value).is_integer() else value


def _cell(value: Any) -> Any:
    """Text from the POS that a spreadsheet would run as a formula, quoted as text."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def to_csv(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({name: _cell(value) for name, value in row.items()})
    return out.getvalue()
