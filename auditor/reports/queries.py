"""Read what the reports show: one query per table, into DataFrames. No figures here.

:func:`chain_window` reads a night and the nights before it for the stores of the chain (audit
runs and the verdicts of succeeded runs); :func:`store_evidence` reads what only a store page
needs (its flags with their face crops, the lines of its audited sales, the reviews and the
cashiers). Times come back as aware UTC, business dates as :class:`datetime.date`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.orm import Session

from auditor.db.models import (
    AuditRun,
    Cashier,
    Flag,
    Review,
    Sale,
    SaleLine,
    SaleVerdict,
    Store,
    User,
)
from auditor.db.queries import current_run_ids
from auditor.vocabulary import RunStatus

STORE_COLUMNS = ["id", "name", "timezone"]
RUN_COLUMNS = [
    "id",
    "store_id",
    "business_date",
    "status",
    "started_at",
    "finished_at",
    "settings",
    "model_version",
    "sales_audited",
    "flags_count",
    "error",
    "stats",
]
VERDICT_COLUMNS = [
    "run_id",
    "business_date",
    "store_id",
    "sale_id",
    "register_id",
    "cashier_id",
    "receipt_id",
    "sold_at",
    "estimated_age",
    "age_spread",
    "frames_matched",
    "frames_read",
    "faces_found",
    "flag_kinds",
    "p_under_legal",
    "p_under_threshold",
    "challenged",
]
FLAG_COLUMNS = [
    "flag_id",
    "run_id",
    "sale_id",
    "kind",
    "age",
    "spread",
    "threshold",
    "model_version",
    "face_crop",
    "evidence_purged_at",
    "legal_age",
    "p_under_legal",
]
LINE_COLUMNS = [
    "sale_id",
    "line_no",
    "product_name",
    "category",
    "quantity",
    "amount_cents",
    "is_alcohol",
]
REVIEW_COLUMNS = [
    "review_id",
    "sale_id",
    "flag_kind",
    "decision",
    "comment",
    "reviewed_at",
    "reviewer",
]
CASHIER_COLUMNS = ["cashier_id", "name"]


def verdict_select() -> tuple[Any, ...]:
    """The columns of a verdict row, in ``VERDICT_COLUMNS`` order; the query joins
    ``sale_verdicts`` with ``audit_runs`` and ``sales``."""
    return (
        SaleVerdict.run_id,
        AuditRun.business_date,
        Sale.store_id,
        SaleVerdict.sale_id,
        Sale.register_id,
        Sale.cashier_id,
        Sale.receipt_id,
        Sale.sold_at,
        SaleVerdict.estimated_age,
        SaleVerdict.age_spread,
        SaleVerdict.frames_matched,
        SaleVerdict.frames_read,
        SaleVerdict.faces_found,
        SaleVerdict.flag_kinds,
        SaleVerdict.p_under_legal,
        SaleVerdict.p_under_threshold,
        SaleVerdict.challenged,
    )


def frame(rows: Sequence[Any], columns: list[str], times: Sequence[str] = ()) -> pd.DataFrame:
    """Rows as a DataFrame with exactly ``columns`` (also when empty); ``times`` as UTC."""
    table = pd.DataFrame([tuple(r) for r in rows], columns=columns)
    for column in times:
        table[column] = pd.to_datetime(table[column], utc=True)
    return table


@dataclass
class ChainWindow:
    """The stores, and their runs and verdicts from ``first`` through ``day``."""

    day: date
    first: date
    stores: pd.DataFrame  # STORE_COLUMNS
    runs: pd.DataFrame  # RUN_COLUMNS: every attempt
    verdicts: pd.DataFrame  # VERDICT_COLUMNS: succeeded runs only


def chain_window(
    session: Session, *, day: date, nights: int, store_ids: Sequence[str] | None = None
) -> ChainWindow:
    """``day`` and the ``nights`` nights before it, for ``store_ids`` (default: every store)."""
    first = day - timedelta(days=nights)
    stores_query = sa.select(Store.id, Store.name, Store.timezone).order_by(Store.id)
    if store_ids is not None:
        stores_query = stores_query.where(Store.id.in_(list(store_ids)))
    stores = frame(session.execute(stores_query).all(), STORE_COLUMNS)
    ids = list(stores["id"])
    in_window = (
        AuditRun.store_id.in_(ids),
        AuditRun.business_date >= first,
        AuditRun.business_date <= day,
    )
    runs = session.execute(
        sa.select(*(getattr(AuditRun, c) for c in RUN_COLUMNS))
        .where(*in_window)
        .order_by(AuditRun.id)
    ).all()
    verdicts = session.execute(
        sa.select(*verdict_select())
        .join(AuditRun, AuditRun.id == SaleVerdict.run_id)
        .join(Sale, Sale.id == SaleVerdict.sale_id)
        .where(SaleVerdict.run_id.in_(current_run_ids(store_ids=ids, first=first, last=day)))
        .order_by(Sale.sold_at, SaleVerdict.sale_id)
    ).all()
    return ChainWindow(
        day=day,
        first=first,
        stores=stores,
        runs=frame(runs, RUN_COLUMNS, ("started_at", "finished_at")),
        verdicts=frame(verdicts, VERDICT_COLUMNS, ("sold_at",)),
    )


@dataclass
class StoreEvidence:
    """What a store page needs beyond the chain window."""

    flags: pd.DataFrame  # FLAG_COLUMNS: the night's current run
    lines: pd.DataFrame  # LINE_COLUMNS: lines of the night's audited sales
    reviews: pd.DataFrame  # REVIEW_COLUMNS: reviews of the window's audited sales
    cashiers: pd.DataFrame  # CASHIER_COLUMNS


def review_rows(session: Session, sale_ids: Any) -> Sequence[Any]:
    """Every review of the given sales (a list or a subquery), oldest first, in
    ``REVIEW_COLUMNS`` order with the reviewer's name."""
    return session.execute(
        sa.select(
            Review.id,
            Review.sale_id,
            Review.flag_kind,
            Review.decision,
            Review.comment,
            Review.reviewed_at,
            User.username,
        )
        .outerjoin(User, User.id == Review.reviewer_id)
        .where(Review.sale_id.in_(sale_ids))
        .order_by(Review.reviewed_at, Review.id)
    ).all()


def store_evidence(
    session: Session,
    *,
    store_id: str,
    run_id: int | None,
    first: date,
    day: date,
    with_face_crops: bool = True,
) -> StoreEvidence:
    """The store-night's flags and lines (none without a run), reviews of the window's sales."""
    crop = Flag.face_crop if with_face_crops else sa.null().label("face_crop")
    flags = session.execute(
        sa.select(
            Flag.id,
            Flag.run_id,
            Flag.sale_id,
            Flag.kind,
            Flag.age,
            Flag.spread,
            Flag.threshold,
            Flag.model_version,
            crop,
            Flag.evidence_purged_at,
            Flag.legal_age,
            Flag.p_under_legal,
        )
        .where(Flag.run_id == run_id)
        .order_by(Flag.sale_id, Flag.id)
    ).all()
    night_sales = sa.select(SaleVerdict.sale_id).where(SaleVerdict.run_id == run_id)
    lines = session.execute(
        sa.select(*(getattr(SaleLine, c) for c in LINE_COLUMNS))
        .where(SaleLine.sale_id.in_(night_sales))
        .order_by(SaleLine.sale_id, SaleLine.line_no)
    ).all()
    window_runs = current_run_ids(store_ids=[store_id], first=first, last=day)
    window_sales = sa.select(SaleVerdict.sale_id).where(SaleVerdict.run_id.in_(window_runs))
    reviews = review_rows(session, window_sales)
    return StoreEvidence(
        flags=frame(flags, FLAG_COLUMNS, ("evidence_purged_at",)),
        lines=frame(lines, LINE_COLUMNS),
        reviews=frame(reviews, REVIEW_COLUMNS, ("reviewed_at",)),
        cashiers=store_cashiers(session, store_id),
    )


def store_cashiers(session: Session, store_id: str) -> pd.DataFrame:
    """The cashiers of a store (``CASHIER_COLUMNS``), by id."""
    cashiers = session.execute(
        sa.select(Cashier.cashier_id, Cashier.name)
        .where(Cashier.store_id == store_id)
        .order_by(Cashier.cashier_id)
    ).all()
    return frame(cashiers, CASHIER_COLUMNS)


def nights_summary(session: Session, days: Sequence[date]) -> pd.DataFrame:
    """Per business date: stores with a result, alcohol sales audited, flags, failed attempts."""
    succeeded = sa.case((AuditRun.status == RunStatus.SUCCEEDED, 1), else_=0)
    failed = sa.case((AuditRun.status == RunStatus.FAILED, 1), else_=0)
    rows = session.execute(
        sa.select(
            AuditRun.business_date,
            sa.func.sum(succeeded),
            sa.func.sum(AuditRun.sales_audited * succeeded),
            sa.func.sum(AuditRun.flags_count * succeeded),
            sa.func.sum(failed),
        )
        .where(AuditRun.business_date.in_(list(days)))
        .group_by(AuditRun.business_date)
    ).all()
    return frame(rows, ["business_date", "stores", "alcohol_sales", "flags", "failed_attempts"])
