"""The flag list as CSV (``/flags.csv``): one row per matching flag of the listed sales, in the
list's order, every page of it. No face and no frame; the cashier's name, since the list
shows it."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from auditor.db.models import AuditRun, Cashier, Flag, Sale, SaleVerdict, User
from auditor.reviews import latest_reviews
from auditor.web.access import CurrentUser
from auditor.web.filters import FlagFilter, matching_flags, matching_sales, order_by

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
    """The rows of the download; ``zone(store_id)`` is the store's time zone."""
    flags = matching_flags(user, filters).subquery("matching")
    listed = matching_sales(user, filters).subquery("listed")
    latest = latest_reviews()
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
            Flag.kind,
            SaleVerdict.flag_kinds,
            latest.c.decision,
            User.username,
            latest.c.reviewed_at,
        )
        .select_from(Flag)
        .join(flags, flags.c.flag_id == Flag.id)
        .join(listed, listed.c.sale_id == Flag.sale_id)
        .join(Sale, Sale.id == Flag.sale_id)
        .join(AuditRun, AuditRun.id == Flag.run_id)
        .outerjoin(
            SaleVerdict,
            sa.and_(SaleVerdict.run_id == Flag.run_id, SaleVerdict.sale_id == Flag.sale_id),
        )
        .outerjoin(
            Cashier,
            sa.and_(Cashier.store_id == Sale.store_id, Cashier.cashier_id == Sale.cashier_id),
        )
        .outerjoin(
            latest, sa.and_(latest.c.sale_id == Flag.sale_id, latest.c.flag_kind == Flag.kind)
        )
        .outerjoin(User, User.id == latest.c.reviewer_id)
        .order_by(*order_by(filters.order), Flag.id)
    )
    rows = []
    for r in session.execute(query).all():
        store_zone = zone(r.store_id)
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
