"""Reviews: a person's decision on a flagged sale. Append-only; the latest row is current.

A decision is about one flag kind of one sale (``reviews.sale_id``, ``reviews.flag_kind``), so
it survives a new audit run of the night, which replaces the flag rows themselves. Revising a
decision adds a row; the history is every row, oldest first.
"""

from __future__ import annotations

import logging
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from auditor.db.models import AuditLogEntry, AuditRun, Flag, Review, User, utcnow
from auditor.db.queries import current_run_ids
from auditor.errors import AuditorError
from auditor.vocabulary import Decision

logger = logging.getLogger(__name__)

MAX_COMMENT_LENGTH = 2000


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


def record_review(
    *, session: Session, flag: Flag, reviewer: User, decision: str, comment: str
) -> Review:
    """Add a decision on ``flag`` and its audit-log row (the caller commits)."""
    if decision not in tuple(Decision):
        raise ReviewError(f"decision {decision!r}: use one of {', '.join(Decision)}")
    comment = comment.strip()
    if len(comment) > MAX_COMMENT_LENGTH:
        raise ReviewError(f"a comment has at most {MAX_COMMENT_LENGTH} characters")
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
    return review


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
