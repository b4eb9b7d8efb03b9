"""The headline figures of the store-nights just audited, read from the database and counted
as the reports count them (:mod:`auditor.reports.figures`)."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.orm import Session

from auditor.audit.summary import RunSummary
from auditor.db.models import SaleVerdict, Store
from auditor.notify.summary import StoreNight
from auditor.reports import figures
from auditor.reports.queries import REVIEW_COLUMNS, frame, review_rows
from auditor.vocabulary import AGE_KINDS, RunStatus


def store_nights(session: Session, summaries: Sequence[RunSummary]) -> list[StoreNight]:
    """One :class:`StoreNight` per run summary: a succeeded run's sales counted from its
    verdicts, its open flags from the reviews as they stand now."""
    names = {r.id: r.name for r in session.execute(sa.select(Store.id, Store.name))}
    run_ids = [s.run_id for s in summaries if s.status == RunStatus.SUCCEEDED and s.run_id]
    of_runs = SaleVerdict.run_id.in_(run_ids)
    verdicts = frame(
        session.execute(
            sa.select(SaleVerdict.run_id, SaleVerdict.sale_id, SaleVerdict.flag_kinds).where(
                of_runs
            )
        ).all(),
        ["run_id", "sale_id", "flag_kinds"],
    )
    sales = sa.select(SaleVerdict.sale_id).where(of_runs)
    reviews = frame(review_rows(session, sales), REVIEW_COLUMNS, ("reviewed_at",))
    by_run = dict(tuple(verdicts.groupby("run_id"))) if run_ids else {}
    nights = []
    for s in summaries:
        night = by_run.get(s.run_id, verdicts.iloc[0:0]) if s.run_id else verdicts.iloc[0:0]
        kinds = night["flag_kinds"]
        counts = figures.review_counts(night, reviews)
        nights.append(
            StoreNight(
                store_id=s.store_id,
                name=names.get(s.store_id) or "",
                business_date=s.business_date,
                status=s.status,
                alcohol_sales=len(night),
                flagged_sales=int(figures.is_flagged(kinds).sum()),
                under_age_sales=int(figures.has_any_kind(kinds, AGE_KINDS).sum()),
                open_sales=counts.open,
                error=s.error,
            )
        )
    return nights
