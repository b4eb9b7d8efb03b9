"""The headline figures of the store-nights just audited, read from the database."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.orm import Session

from auditor.audit.summary import RunSummary
from auditor.db.models import Flag, SaleVerdict, Store
from auditor.notify.summary import StoreNight
from auditor.reviews import latest_reviews
from auditor.vocabulary import AGE_KINDS, RunStatus


def store_nights(session: Session, summaries: Sequence[RunSummary]) -> list[StoreNight]:
    """One :class:`StoreNight` per run summary: a succeeded run's sales counted from its
    verdicts, its open flags from the reviews as they stand now."""
    names: dict[str, str] = {r.id: r.name for r in session.execute(sa.select(Store.id, Store.name))}
    run_ids = [s.run_id for s in summaries if s.status == RunStatus.SUCCEEDED and s.run_id]
    kinds_of: dict[int, list[str]] = defaultdict(list)
    open_sales: dict[int, set[int]] = defaultdict(set)
    if run_ids:
        verdicts = session.execute(
            sa.select(SaleVerdict.run_id, SaleVerdict.flag_kinds).where(
                SaleVerdict.run_id.in_(run_ids)
            )
        )
        for run_id, kinds in verdicts:
            kinds_of[run_id].append(kinds)
        latest = latest_reviews()
        undecided = session.execute(
            sa.select(Flag.run_id, Flag.sale_id)
            .outerjoin(
                latest, (latest.c.sale_id == Flag.sale_id) & (latest.c.flag_kind == Flag.kind)
            )
            .where(Flag.run_id.in_(run_ids), latest.c.id.is_(None))
        )
        for run_id, sale_id in undecided:
            open_sales[run_id].add(sale_id)
    nights = []
    for s in summaries:
        split = [set(k.split(";")) - {""} for k in kinds_of.get(s.run_id or -1, [])]
        nights.append(
            StoreNight(
                store_id=s.store_id,
                name=names.get(s.store_id, "") or "",
                business_date=s.business_date,
                status=s.status,
                alcohol_sales=len(split),
                flagged_sales=sum(bool(k) for k in split),
                under_age_sales=sum(bool(k & {str(a) for a in AGE_KINDS}) for k in split),
                open_sales=len(open_sales.get(s.run_id or -1, ())),
                error=s.error,
            )
        )
    return nights
