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
from auditor.db.queries import current_run_ids, current_runs
from auditor.reviews import latest_reviews
from auditor.vocabulary import AGE_KINDS, Decision, FlagKind

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
NIGHT_TOTAL_COLUMNS = [
    "business_date",
    "stores",
    "alcohol_sales",
    "flagged_sales",
    "under_age",
    "challenged",
    "due",
]


def instant(column: Any) -> Any:
    """A UTC time column as the driver reads it (naive UTC from SQLite, aware from
    PostgreSQL), not made aware UTC row by row: :func:`frame` makes the whole column UTC."""
    return sa.type_coerce(column, sa.DateTime(timezone=True)).label(column.key)


def verdict_select() -> tuple[Any, ...]:
    """The columns of a verdict row, in ``VERDICT_COLUMNS`` order; the query joins
    ``sale_verdicts`` with ``audit_runs`` and ``sales``. Read them into :func:`frame` with
    ``sold_at`` among its times."""
    return (
        SaleVerdict.run_id,
        AuditRun.business_date,
        Sale.store_id,
        SaleVerdict.sale_id,
        Sale.register_id,
        Sale.cashier_id,
        Sale.receipt_id,
        instant(Sale.sold_at),
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


def read(session: Session, query: sa.Executable) -> Sequence[Any]:
    """Every row of ``query`` through the session's connection: the report queries select
    columns, never ORM objects, so the rows skip the ORM's loading (about half the time of a
    large read)."""
    return session.connection().execute(query).all()


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
    stores = frame(read(session, stores_query), STORE_COLUMNS)
    ids = list(stores["id"])
    in_window = (
        AuditRun.store_id.in_(ids),
        AuditRun.business_date >= first,
        AuditRun.business_date <= day,
    )
    runs = read(
        session,
        sa.select(*(getattr(AuditRun, c) for c in RUN_COLUMNS))
        .where(*in_window)
        .order_by(AuditRun.id),
    )
    verdicts = read(
        session,
        sa.select(*verdict_select())
        .join(AuditRun, AuditRun.id == SaleVerdict.run_id)
        .join(Sale, Sale.id == SaleVerdict.sale_id)
        .where(SaleVerdict.run_id.in_(current_run_ids(store_ids=ids, first=first, last=day)))
        .order_by(Sale.sold_at, SaleVerdict.sale_id),
    )
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
    return read(
        session,
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
        .order_by(Review.reviewed_at, Review.id),
    )


def _flag_columns(crop: Any) -> tuple[Any, ...]:
    """The columns of a flag the pages show, its face crop given as ``crop``."""
    return (
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
    flags = read(
        session,
        sa.select(
            *_flag_columns(crop),
        )
        .where(Flag.run_id == run_id)
        .order_by(Flag.sale_id, Flag.id),
    )
    night_sales = sa.select(SaleVerdict.sale_id).where(SaleVerdict.run_id == run_id)
    lines = read(
        session,
        sa.select(*(getattr(SaleLine, c) for c in LINE_COLUMNS))
        .where(SaleLine.sale_id.in_(night_sales))
        .order_by(SaleLine.sale_id, SaleLine.line_no),
    )
    window_runs = current_run_ids(store_ids=[store_id], first=first, last=day)
    window_sales = sa.select(SaleVerdict.sale_id).where(SaleVerdict.run_id.in_(window_runs))
    reviews = review_rows(session, window_sales)
    return StoreEvidence(
        flags=frame(flags, FLAG_COLUMNS, ("evidence_purged_at",)),
        lines=frame(lines, LINE_COLUMNS),
        reviews=frame(reviews, REVIEW_COLUMNS, ("reviewed_at",)),
        cashiers=store_cashiers(session, store_id),
    )


SPEND_COLUMNS = ["store_id", "band", "category", "spend"]


def alcohol_spend(
    session: Session,
    *,
    store_id: str,
    first: date,
    day: date,
    bands: Sequence[tuple[str, float, float]],
) -> pd.DataFrame:
    """Alcohol spend (cents, a return counting as nothing) of the store's sales with an
    estimated age in its current runs from ``first`` through ``day``, summed by the database
    per estimated-age band and category as the till wrote it (``SPEND_COLUMNS``, in no order):
    a few dozen rows where the lines of a month are tens of thousands. ``bands`` are
    (label, lowest age, first age of the next band), in order, covering every age."""
    window_runs = current_run_ids(store_ids=[store_id], first=first, last=day)
    age = SaleVerdict.estimated_age
    lines = (
        sa.select(
            sa.case(
                *((age < high, label) for label, _, high in bands[:-1]), else_=bands[-1][0]
            ).label("band"),
            SaleLine.category,
            sa.case((SaleLine.amount_cents > 0, SaleLine.amount_cents), else_=0).label("cents"),
        )
        .join(SaleLine, SaleLine.sale_id == SaleVerdict.sale_id)
        .where(
            SaleVerdict.run_id.in_(window_runs),
            age.is_not(None),
            SaleLine.is_alcohol.is_(True),
        )
        .subquery()
    )
    rows = read(
        session,
        sa.select(lines.c.band, lines.c.category, sa.func.sum(lines.c.cents)).group_by(
            lines.c.band, lines.c.category
        ),
    )
    table = frame([(store_id, *row) for row in rows], SPEND_COLUMNS)
    table["spend"] = table["spend"].astype(float)
    return table


def store_cashiers(session: Session, store_id: str) -> pd.DataFrame:
    """The cashiers of a store (``CASHIER_COLUMNS``), by id."""
    cashiers = read(
        session,
        sa.select(Cashier.cashier_id, Cashier.name)
        .where(Cashier.store_id == store_id)
        .order_by(Cashier.cashier_id),
    )
    return frame(cashiers, CASHIER_COLUMNS)


def _has_kind(kind: str) -> sa.ColumnElement[bool]:
    """Whether a verdict's ``;``-joined ``flag_kinds`` hold ``kind``."""
    padded = sa.literal(";") + SaleVerdict.flag_kinds + sa.literal(";")
    return padded.like(f"%;{kind};%")


def night_totals(
    session: Session, *, first: date, last: date, days: Sequence[date] | None = None
) -> pd.DataFrame:
    """Per business date from ``first`` through ``last`` (only ``days``, when given), over
    every store's current run: stores with a result, alcohol sales, flagged sales, sales with
    an under-age flag, and the challenges (sales with an ID check recorded; those and the
    ``no_id_check`` ones). Columns: :data:`NIGHT_TOTAL_COLUMNS`."""
    under = sa.or_(*(_has_kind(k) for k in sorted(AGE_KINDS)))
    challenged = SaleVerdict.challenged.is_(True)
    due = sa.or_(challenged, _has_kind(FlagKind.NO_ID_CHECK))

    def count(condition: sa.ColumnElement[bool]) -> Any:
        return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)

    runs = current_runs(first=first, last=last).subquery()
    query = (
        sa.select(
            runs.c.business_date,
            sa.func.count(sa.distinct(runs.c.store_id)),
            sa.func.count(SaleVerdict.sale_id),
            count(SaleVerdict.flag_kinds != ""),
            count(under),
            count(challenged),
            count(due),
        )
        .select_from(runs)
        .outerjoin(SaleVerdict, SaleVerdict.run_id == runs.c.id)
        .group_by(runs.c.business_date)
    )
    if days is not None:
        query = query.where(runs.c.business_date.in_(list(days)))
    return frame(read(session, query), NIGHT_TOTAL_COLUMNS)


def night_reviews(
    session: Session, *, first: date, last: date, days: Sequence[date] | None = None
) -> pd.DataFrame:
    """Per business date, over every store's current run: the flagged sales still open (one
    of their flags has no current review) and the confirmed violations (a current review of
    the sale says so). Columns ``business_date, open, confirmed``."""
    runs = current_runs(first=first, last=last).subquery()
    latest = latest_reviews()
    open_query = (
        sa.select(runs.c.business_date, sa.func.count(sa.distinct(Flag.sale_id)))
        .select_from(runs)
        .join(Flag, Flag.run_id == runs.c.id)
        .outerjoin(latest, (latest.c.sale_id == Flag.sale_id) & (latest.c.flag_kind == Flag.kind))
        .where(latest.c.id.is_(None))
        .group_by(runs.c.business_date)
    )
    confirmed_query = (
        sa.select(runs.c.business_date, sa.func.count(sa.distinct(SaleVerdict.sale_id)))
        .select_from(runs)
        .join(SaleVerdict, SaleVerdict.run_id == runs.c.id)
        .join(latest, latest.c.sale_id == SaleVerdict.sale_id)
        .where(latest.c.decision == Decision.CONFIRMED_VIOLATION)
        .group_by(runs.c.business_date)
    )
    if days is not None:
        open_query = open_query.where(runs.c.business_date.in_(list(days)))
        confirmed_query = confirmed_query.where(runs.c.business_date.in_(list(days)))
    opened: dict[date, int] = {d: int(n) for d, n in read(session, open_query)}
    confirmed: dict[date, int] = {d: int(n) for d, n in read(session, confirmed_query)}
    rows = [(d, opened.get(d, 0), confirmed.get(d, 0)) for d in sorted({*opened, *confirmed})]
    return frame(rows, ["business_date", "open", "confirmed"])


def store_reviews(session: Session, *, store_id: str, first: date, day: date) -> pd.DataFrame:
    """Every review of the sales of the store's current runs from ``first`` through ``day``."""
    window_runs = current_run_ids(store_ids=[store_id], first=first, last=day)
    window_sales = sa.select(SaleVerdict.sale_id).where(SaleVerdict.run_id.in_(window_runs))
    return frame(review_rows(session, window_sales), REVIEW_COLUMNS, ("reviewed_at",))


EVIDENCE_CHUNK = 500  # sale ids to a query: well within every database's bound parameters


@dataclass
class WindowEvidence:
    """The flags and lines of a store's flagged sales over the window, for cashier pages."""

    flags: pd.DataFrame  # FLAG_COLUMNS: face crops of under-age flags only
    lines: pd.DataFrame  # LINE_COLUMNS


def window_evidence(
    session: Session, *, store_id: str, first: date, day: date, sale_ids: Sequence[int]
) -> WindowEvidence:
    """The flags (of the store's current runs from ``first`` through ``day``) and the lines of
    the sales ``sale_ids``, flagged sales of those runs: only theirs are read, a few hundred
    sales to a query. Face crops come with the flags of ``day`` alone: a page embeds only its
    own night's faces, so the purge of a night's evidence touches that night's pages only."""
    window_runs = current_run_ids(store_ids=[store_id], first=first, last=day)
    night_runs = current_run_ids(store_ids=[store_id], first=day, last=day)
    own_face = sa.and_(Flag.kind.in_([str(k) for k in AGE_KINDS]), Flag.run_id.in_(night_runs))
    crop = sa.case((own_face, Flag.face_crop), else_=sa.null())
    wanted = sorted({int(s) for s in sale_ids})
    flags: list[Any] = []
    lines: list[Any] = []
    for start in range(0, len(wanted), EVIDENCE_CHUNK):
        chunk = wanted[start : start + EVIDENCE_CHUNK]
        flags += read(
            session,
            sa.select(*_flag_columns(crop.label("face_crop")))
            .where(Flag.run_id.in_(window_runs), Flag.sale_id.in_(chunk))
            .order_by(Flag.sale_id, Flag.id),
        )
        lines += read(
            session,
            sa.select(*(getattr(SaleLine, c) for c in LINE_COLUMNS))
            .where(SaleLine.sale_id.in_(chunk))
            .order_by(SaleLine.sale_id, SaleLine.line_no),
        )
    return WindowEvidence(
        flags=frame(flags, FLAG_COLUMNS, ("evidence_purged_at",)),
        lines=frame(lines, LINE_COLUMNS),
    )
