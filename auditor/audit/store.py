"""The audit run's reads and writes: a run's record, the night's inputs, its results.

:func:`start_run` records a ``running`` run, :func:`read_night` reads the night's sales and
frames, :func:`write_results` replaces the store-night's results with the run's in one
transaction and :func:`record_failure` marks a run ``failed``. The pipeline that calls them in
turn is :mod:`auditor.audit.run`. :func:`night_is_empty` tells, before any run, a night for
which nothing was ingested.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.orm import Session

from auditor.audit.business_day import day_bounds
from auditor.db.models import (
    AgeEstimate,
    AuditRun,
    Flag,
    Sale,
    SaleVerdict,
    Snapshot,
    Store,
    utcnow,
)
from auditor.db.queries import known_store_ids
from auditor.errors import AuditorError
from auditor.reviews import refresh_review_state
from auditor.settings import Settings
from auditor.vocabulary import RunStatus

logger = logging.getLogger(__name__)

INTERRUPTED = "interrupted: the process ended before the run finished"


class UnknownStore(AuditorError):
    """A store id that the database does not know."""


def require_known_stores(session: Session, store_ids: Sequence[str]) -> list[str]:
    """``store_ids``, or every store the database knows when it is empty.

    Raises :class:`UnknownStore` naming the ids the database does not know, and those it does.
    """
    known = known_store_ids(session)
    unknown = [s for s in store_ids if s not in known]
    if unknown:
        raise UnknownStore(
            f"unknown store{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
            f"known: {', '.join(sorted(known)) or 'none'}"
        )
    return list(store_ids) or known


@dataclass
class Night:
    """The night's inputs, read from the database."""

    # sale_id, register_id, sold_at, pos_errors (a list or None), age_check, birth_date
    sales: pd.DataFrame
    frames: pd.DataFrame  # snapshot_id, register_id, captured_at, path, purged, problem


@dataclass
class Outcome:
    """Everything to write for the night."""

    estimates: list[dict[str, Any]]
    verdicts: list[dict[str, Any]]
    flags: list[tuple[dict[str, Any], int | None]]  # flag row, index of its estimate
    stats: dict[str, Any]
    flag_counts: Counter[str]
    flagged_sales: int


def start_run(
    session: Session, *, settings: Settings, model_version: str, store_id: str, day: date
) -> int:
    """Record a ``running`` run of the store-night (and mark ``failed`` any left ``running``)."""
    with session.begin():
        if session.get(Store, store_id) is None:
            raise UnknownStore(f"store {store_id!r} is not in the database: ingest its sales first")
        now = utcnow()
        session.execute(
            sa.update(AuditRun)
            .where(
                AuditRun.store_id == store_id,
                AuditRun.business_date == day,
                AuditRun.status == RunStatus.RUNNING,
            )
            .values(status=RunStatus.FAILED, error=INTERRUPTED, finished_at=now)
        )
        run = AuditRun(
            store_id=store_id,
            business_date=day,
            status=RunStatus.RUNNING,
            started_at=now,
            settings={**settings.as_json_dict(), "rules": settings.rules(store_id).as_json_dict()},
            model_version=model_version,
            sales_audited=0,
            flags_count=0,
        )
        session.add(run)
        session.flush()
        return run.id


def night_is_empty(session: Session, *, settings: Settings, store_id: str, day: date) -> bool:
    """Whether the store's business day has no sale (of any kind) and no snapshot in it.

    Nothing was ingested for such a night: there is nothing to audit, and a run of it would
    record a night without sales (a store closed for a holiday, or a mistyped date).
    """
    start, end = day_bounds(day, settings.store_zone(store_id))
    sale = sa.select(Sale.id).where(
        Sale.store_id == store_id, Sale.sold_at >= start, Sale.sold_at < end
    )
    frame = sa.select(Snapshot.id).where(
        Snapshot.store_id == store_id, Snapshot.captured_at >= start, Snapshot.captured_at < end
    )
    with session.begin():
        return (
            session.execute(sale.limit(1)).first() is None
            and session.execute(frame.limit(1)).first() is None
        )


def read_night(
    session: Session, *, settings: Settings, store_id: str, day: date, timings: dict[str, float]
) -> Night:
    """The night's alcohol sales and the frames around them, in a short read transaction."""
    started = time.perf_counter()
    zone = settings.store_zone(store_id)
    start, end = day_bounds(day, zone)
    audit = settings.audit
    with session.begin():
        sales = session.execute(
            sa.select(
                Sale.id,
                Sale.register_id,
                Sale.sold_at,
                Sale.pos_errors,
                Sale.age_check,
                Sale.birth_date,
            )
            .where(
                Sale.store_id == store_id,
                Sale.has_alcohol.is_(True),
                Sale.sold_at >= start,
                Sale.sold_at < end,
            )
            .order_by(Sale.id)
        ).all()
        frames = session.execute(
            sa.select(
                Snapshot.id,
                Snapshot.register_id,
                Snapshot.captured_at,
                Snapshot.path,
                Snapshot.purged_at.is_not(None).label("purged"),
                Snapshot.problem,
            ).where(
                Snapshot.store_id == store_id,
                Snapshot.captured_at >= start - timedelta(seconds=audit.window_before_s),
                Snapshot.captured_at <= end + timedelta(seconds=audit.window_after_s),
            )
        ).all()
    night = Night(
        sales=_table(
            sales,
            ["sale_id", "register_id", "sold_at", "pos_errors", "age_check", "birth_date"],
            "sold_at",
        ),
        frames=_table(
            frames,
            ["snapshot_id", "register_id", "captured_at", "path", "purged", "problem"],
            "captured_at",
        ),
    )
    timings["query"] = time.perf_counter() - started
    return night


def _table(rows: Sequence[tuple[Any, ...]], columns: list[str], time_column: str) -> pd.DataFrame:
    table = pd.DataFrame([tuple(r) for r in rows], columns=columns)
    table[time_column] = pd.to_datetime(table[time_column], utc=True)
    return table


def write_results(
    session: Session,
    *,
    run_id: int,
    store_id: str,
    day: date,
    outcome: Outcome,
    timings: dict[str, float],
    started: float,
) -> None:
    """Replace the store-night's results with this run's, in one transaction, with the review
    state the decisions already made on the night give them."""
    write_started = time.perf_counter()
    with session.begin():
        earlier = (
            session.execute(
                sa.select(AuditRun.id).where(
                    AuditRun.store_id == store_id,
                    AuditRun.business_date == day,
                    AuditRun.id != run_id,
                )
            )
            .scalars()
            .all()
        )
        if earlier:
            for table in (SaleVerdict, Flag, AgeEstimate):
                session.execute(sa.delete(table).where(table.run_id.in_(earlier)))
            session.execute(
                sa.update(AuditRun)
                .where(AuditRun.id.in_(earlier), AuditRun.status == RunStatus.SUCCEEDED)
                .values(status=RunStatus.REPLACED)
            )
        now = utcnow()
        estimate_ids: list[int] = []
        if outcome.estimates:
            estimate_ids = list(
                session.execute(
                    sa.insert(AgeEstimate).returning(AgeEstimate.id, sort_by_parameter_order=True),
                    [{**row, "run_id": run_id} for row in outcome.estimates],
                ).scalars()
            )
        if outcome.flags:
            session.execute(
                sa.insert(Flag),
                [
                    {
                        **row,
                        "run_id": run_id,
                        "created_at": now,
                        "age_estimate_id": estimate_ids[i] if i is not None else None,
                    }
                    for row, i in outcome.flags
                ],
            )
        if outcome.verdicts:
            session.execute(
                sa.insert(SaleVerdict), [{**row, "run_id": run_id} for row in outcome.verdicts]
            )
        # the decisions made on the night's earlier results hold for the same sales and kinds
        refresh_review_state(session, run_id=run_id)
        timings["write"] = time.perf_counter() - write_started
        timings["total"] = time.perf_counter() - started
        session.execute(
            sa.update(AuditRun)
            .where(AuditRun.id == run_id)
            .values(
                status=RunStatus.SUCCEEDED,
                finished_at=now,
                sales_audited=len(outcome.verdicts),
                flags_count=len(outcome.flags),
                stats={**outcome.stats, "seconds": _rounded(timings)},
                error=None,
            )
        )


def _rounded(timings: dict[str, float]) -> dict[str, float]:
    return {stage: round(seconds, 3) for stage, seconds in timings.items()}


def record_failure(session: Session, *, run_id: int, error: str, timings: dict[str, float]) -> None:
    """Mark the run ``failed`` with its error (logged, not raised, when that fails too)."""
    try:
        with session.begin():
            session.execute(
                sa.update(AuditRun)
                .where(AuditRun.id == run_id, AuditRun.status == RunStatus.RUNNING)
                .values(
                    status=RunStatus.FAILED,
                    finished_at=utcnow(),
                    error=error,
                    stats={"seconds": _rounded(timings)},
                )
            )
    except Exception:
        logger.exception("cannot record the failure of audit run %s", run_id)
