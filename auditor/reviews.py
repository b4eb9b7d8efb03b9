"""Reviews: a person's decision on a flagged sale. Append-only; the latest row is current.

A decision is about one flag kind of one sale (``reviews.sale_id``, ``reviews.flag_kind``), so
it survives a new audit run of the night, which replaces the flag rows themselves. Revising a
decision adds a row; the history is every row, oldest first.

What the review list reads is kept with the flags and verdicts (:func:`refresh_review_state`):
each flag's current review, and each flagged sale's open flags and sort keys in its run. It is
written in the transaction that records decisions (:func:`record_reviews`) and in the one that
writes a run's results (a new audit of the night gets the decisions made on the earlier one).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from auditor.db.models import (
    NO_AGE,
    NO_PROBABILITY,
    AuditLogEntry,
    AuditRun,
    Flag,
    Review,
    SaleVerdict,
    User,
    utcnow,
)
from auditor.db.queries import current_run_ids
from auditor.errors import AuditorError
from auditor.vocabulary import Decision, FlagKind

logger = logging.getLogger(__name__)

MAX_COMMENT_LENGTH = 2000
VIOLATIONS = tuple(k.value for k in FlagKind if k.is_violation)
_CHUNK = 500  # sales per statement when refreshing the state of many


class ReviewError(AuditorError):
    """A decision that cannot be recorded as given."""


def latest_reviews() -> sa.Subquery:
    """The current review of each (sale, flag kind): its latest row (by time, then id)."""
    ranked = sa.select(
        Review.id,
        Review.sale_id,
        Review.flag_kind,
        Review.decision,
        Review.comment,
        Review.reviewer_id,
        Review.reviewed_at,
        sa.func.row_number()
        .over(
            partition_by=(Review.sale_id, Review.flag_kind),
            order_by=(Review.reviewed_at.desc(), Review.id.desc()),
        )
        .label("rank"),
    ).subquery("ranked_reviews")
    return (
        sa.select(*(c for c in ranked.c if c.name != "rank"))
        .where(ranked.c.rank == 1)
        .subquery("latest_review")
    )


def review_history(session: Session, *, sale_id: int, kind: str) -> list[tuple[Review, str]]:
    """Every decision on the sale's flag of ``kind``, newest first, with the reviewer's name."""
    rows = session.execute(
        sa.select(Review, User.username)
        .join(User, User.id == Review.reviewer_id)
        .where(Review.sale_id == sale_id, Review.flag_kind == kind)
        .order_by(Review.reviewed_at.desc(), Review.id.desc())
    ).all()
    return [(review, name) for review, name in rows]


def record_reviews(
    *, session: Session, flags: Sequence[Flag], reviewer: User, decision: str, comment: str
) -> list[Review]:
    """Add the same decision on each of ``flags``, each its own review and audit-log row, and
    bring the stored review state of their sales up to date (the caller commits)."""
    if decision not in tuple(Decision):
        raise ReviewError(f"decision {decision!r}: use one of {', '.join(Decision)}")
    comment = comment.strip()
    if len(comment) > MAX_COMMENT_LENGTH:
        raise ReviewError(f"a comment has at most {MAX_COMMENT_LENGTH} characters")
    reviews = []
    for flag in flags:
        review = Review(
            sale_id=flag.sale_id,
            flag_id=flag.id,
            flag_kind=flag.kind,
            reviewer_id=reviewer.id,
            decision=decision,
            comment=comment,
            reviewed_at=utcnow(),
        )
        session.add(review)
        session.flush()
        session.add(
            AuditLogEntry(
                user_id=reviewer.id,
                actor=reviewer.username,
                action="review",
                object_type="flag",
                object_id=str(flag.id),
                details={
                    "review_id": review.id,
                    "sale_id": flag.sale_id,
                    "kind": flag.kind,
                    "decision": decision,
                },
            )
        )
        logger.info("%s decided %s on flag %s", reviewer.username, decision, flag.id)
        reviews.append(review)
    session.flush()
    refresh_review_state(session, sale_ids={flag.sale_id for flag in flags})
    return reviews


def refresh_review_state(
    session: Session | sa.Connection,
    *,
    run_id: int | None = None,
    sale_ids: Collection[int] | None = None,
) -> None:
    """Write the stored review state from the reviews and the flags: of one run's flags and
    verdicts (``run_id``, when its results are written), or of every flag and verdict of
    ``sale_ids`` (when decisions on them are recorded).

    A flag's ``review_id`` is the latest review of its sale and kind (by time, then id), as
    :func:`latest_reviews` has it; a verdict's ``open_flags`` counts its run's flags of the
    sale without one, and its sort keys come from the same flags."""
    if run_id is not None:
        _refresh(session, Flag.run_id == run_id, SaleVerdict.run_id == run_id)
    ids = sorted(sale_ids or ())
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        _refresh(session, Flag.sale_id.in_(chunk), SaleVerdict.sale_id.in_(chunk))


def _refresh(
    session: Session | sa.Connection,
    flags: sa.ColumnElement[bool],
    verdicts: sa.ColumnElement[bool],
) -> None:
    reviews = sa.select(Review.id).where(
        Review.sale_id == Flag.sale_id, Review.flag_kind == Flag.kind
    )
    latest = (
        reviews.order_by(Review.reviewed_at.desc(), Review.id.desc()).limit(1).scalar_subquery()
    )
    no_sync = {"synchronize_session": False}
    session.execute(  # reviews are never removed: a flag without one has none to lose
        sa.update(Flag).where(flags, reviews.exists()).values(review_id=latest),
        execution_options=no_sync,
    )
    own = sa.and_(Flag.run_id == SaleVerdict.run_id, Flag.sale_id == SaleVerdict.sale_id)
    flag_rows = sa.select(Flag.id).where(own)
    open_flags = (
        sa.select(sa.func.count()).select_from(Flag).where(own, Flag.review_id.is_(None))
    ).scalar_subquery()
    risk = sa.select(sa.func.max(Flag.p_under_legal)).where(own).scalar_subquery()
    session.execute(
        sa.update(SaleVerdict)
        .where(verdicts)
        .values(
            open_flags=open_flags,
            violation=flag_rows.where(Flag.kind.in_(VIOLATIONS)).exists(),
            risk=sa.func.coalesce(risk, NO_PROBABILITY),
            age_key=sa.func.coalesce(SaleVerdict.estimated_age, NO_AGE),
        ),
        execution_options=no_sync,
    )


def reviewed_nights(session: Session, *, since: datetime) -> dict[tuple[str, date], datetime]:
    """The store-nights (store id, business date of the current audit run) that have a
    decision recorded after ``since``, each with the time of its latest decision."""
    query = (
        sa.select(AuditRun.store_id, AuditRun.business_date, sa.func.max(Review.reviewed_at))
        .join(Flag, sa.and_(Flag.sale_id == Review.sale_id, Flag.kind == Review.flag_kind))
        .join(AuditRun, AuditRun.id == Flag.run_id)
        .where(Flag.run_id.in_(current_run_ids()), Review.reviewed_at > since)
        .group_by(AuditRun.store_id, AuditRun.business_date)
    )
    return {(store, day): latest for store, day, latest in session.execute(query)}


def evidence_purged_nights(
    session: Session, *, since: datetime
) -> dict[tuple[str, date], datetime]:
    """The store-nights (as :func:`reviewed_nights`) with a flag whose evidence the purge
    removed after ``since``, each with the time of the latest such purge."""
    query = (
        sa.select(AuditRun.store_id, AuditRun.business_date, sa.func.max(Flag.evidence_purged_at))
        .join(AuditRun, AuditRun.id == Flag.run_id)
        .where(Flag.run_id.in_(current_run_ids()), Flag.evidence_purged_at > since)
        .group_by(AuditRun.store_id, AuditRun.business_date)
    )
    return {
        (store, day): latest for store, day, latest in session.execute(query) if latest is not None
    }
