"""Queries used by more than one place.

The current run of a store-night is its succeeded audit run: the latest attempt that succeeded,
whose results are the store-night's (a later success marks it ``replaced``; the schema allows
one ``succeeded`` run per store and business date). It is written here once, as a select that
callers narrow (``.with_only_columns(...)``) or use as a subquery over many store-nights.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from auditor.db.models import AuditRun, Store
from auditor.vocabulary import RunStatus


def is_current_run() -> sa.ColumnElement[bool]:
    """The condition on :class:`AuditRun` that makes a run its store-night's current one, for
    a query that joins the runs of its rows."""
    return AuditRun.status == RunStatus.SUCCEEDED


def current_runs(
    *,
    store_ids: Sequence[str] | None = None,
    first: date | None = None,
    last: date | None = None,
) -> sa.Select[AuditRun]:
    """The current run of every audited store-night, of ``store_ids`` (default: every store)
    and of the business dates from ``first`` through ``last`` (default: every date)."""
    query = sa.select(AuditRun).where(is_current_run())
    if store_ids is not None:
        query = query.where(AuditRun.store_id.in_(list(store_ids)))
    if first is not None:
        query = query.where(AuditRun.business_date >= first)
    if last is not None:
        query = query.where(AuditRun.business_date <= last)
    return query


def current_run_ids(
    *,
    store_ids: Sequence[str] | None = None,
    first: date | None = None,
    last: date | None = None,
) -> sa.Select[int]:
    """The ids of :func:`current_runs`, as a subquery for ``run_id.in_(...)``."""
    runs = current_runs(store_ids=store_ids, first=first, last=last)
    return runs.with_only_columns(AuditRun.id)


def audited_nights(session: Session, *, since: datetime) -> dict[tuple[str, date], datetime]:
    """The store-nights (store id, business date) whose current run finished after ``since``,
    each with the time it finished."""
    runs = current_runs().where(AuditRun.finished_at > since)
    query = runs.with_only_columns(AuditRun.store_id, AuditRun.business_date, AuditRun.finished_at)
    return {(store, day): at for store, day, at in session.execute(query) if at is not None}


def current_run(session: Session, *, store_id: str, day: date) -> AuditRun | None:
    """The store-night's current run, if it has one."""
    query = current_runs(store_ids=[store_id], first=day, last=day)
    return session.execute(query).scalar_one_or_none()


def known_store_ids(session: Session) -> list[str]:
    """Every store the database knows, by id."""
    return list(session.execute(sa.select(Store.id).order_by(Store.id)).scalars())


def night_has_runs(session: Session, *, day: date) -> bool:
    """Whether any store's audit of business date ``day`` was ever attempted (any status)."""
    query = sa.select(AuditRun.id).where(AuditRun.business_date == day).limit(1)
    return session.execute(query).first() is not None
