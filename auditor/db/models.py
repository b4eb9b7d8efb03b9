"""ORM models: the whole schema. Alembic migrations create these tables; the app never does.

Times are UTC (:class:`UTCDateTime`). Stores, registers and cashiers are keyed by the POS's own
ids. A sale is one receipt (unique per store), its lines hang off it. An audit run is one store's
business date; its estimates, flags and sale verdicts reference the run and go when a later run
of that store-night succeeds (the run row stays, as ``replaced``), while reviews reference the
sale so that a re-run keeps them.

The review state is also kept with the results, so that the review list need not work it out
from every review on each request: a flag's current review (``flags.review_id``) and, per sale
of a run, its open flags and the list's sort keys (``sale_verdicts``: ``open_flags``,
``violation``, ``risk``, ``age_key``). :func:`auditor.reviews.refresh_review_state` writes them,
in the transaction that records a decision or a run's results.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from auditor.db.types import BigIntId, JSONDoc, UTCDateTime
from auditor.vocabulary import (
    AgeCheck,
    Decision,
    EstimateOutcome,
    FlagKind,
    Role,
    RunStatus,
    SendStatus,
)

# Longest values the POS and snapshot ingests accept; parsers reject longer ones.
ID_LENGTH = 64
NAME_LENGTH = 200
PATH_LENGTH = 1024

NAMING_CONVENTION = {
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


def _one_of(column: str, names: type[StrEnum]) -> str:
    return f"{column} IN ({', '.join(repr(n.value) for n in names)})"


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    # Every model is mapped to a Table (DeclarativeBase only promises a FromClause).
    __table__: ClassVar[sa.Table]


class Store(Base):
    __tablename__ = "stores"

    id: Mapped[str] = mapped_column(sa.String(ID_LENGTH), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(NAME_LENGTH), default="")
    timezone: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Register(Base):
    __tablename__ = "registers"

    store_id: Mapped[str] = mapped_column(sa.ForeignKey("stores.id"), primary_key=True)
    register_id: Mapped[str] = mapped_column(sa.String(ID_LENGTH), primary_key=True)


class Cashier(Base):
    __tablename__ = "cashiers"

    store_id: Mapped[str] = mapped_column(sa.ForeignKey("stores.id"), primary_key=True)
    cashier_id: Mapped[str] = mapped_column(sa.String(ID_LENGTH), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(NAME_LENGTH), default="")


class Sale(Base):
    """One receipt. ``content_hash`` covers the receipt, its lines, its age check and its POS
    problems, to spot a changed resend. ``pos_errors`` lists the receipt's lines the ingest
    rejected (``file:line: field: reason``), None when there were none. ``age_check`` and
    ``birth_date`` are what the till recorded of the shopper's age check; None when the POS
    export has no such column."""

    __tablename__ = "sales"
    __table_args__ = (
        sa.UniqueConstraint("store_id", "receipt_id"),
        sa.ForeignKeyConstraint(
            ["store_id", "register_id"], ["registers.store_id", "registers.register_id"]
        ),
        sa.ForeignKeyConstraint(
            ["store_id", "cashier_id"], ["cashiers.store_id", "cashiers.cashier_id"]
        ),
        sa.Index("ix_sales_store_sold_at", "store_id", "sold_at"),
        sa.CheckConstraint(
            f"age_check IS NULL OR {_one_of('age_check', AgeCheck)}", name="age_check"
        ),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    store_id: Mapped[str] = mapped_column(sa.ForeignKey("stores.id"))
    receipt_id: Mapped[str] = mapped_column(sa.String(ID_LENGTH))
    register_id: Mapped[str] = mapped_column(sa.String(ID_LENGTH))
    cashier_id: Mapped[str] = mapped_column(sa.String(ID_LENGTH))
    sold_at: Mapped[datetime] = mapped_column(UTCDateTime)
    has_alcohol: Mapped[bool] = mapped_column(sa.Boolean)
    line_count: Mapped[int] = mapped_column(sa.Integer)
    total_cents: Mapped[int] = mapped_column(sa.BigInteger)
    content_hash: Mapped[str] = mapped_column(sa.String(64))
    source_file: Mapped[str] = mapped_column(sa.String(PATH_LENGTH))
    ingested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    pos_errors: Mapped[list[str] | None] = mapped_column(JSONDoc)
    age_check: Mapped[str | None] = mapped_column(sa.String(16))
    birth_date: Mapped[date | None] = mapped_column(sa.Date)

    lines: Mapped[list[SaleLine]] = relationship(
        back_populates="sale", order_by="SaleLine.line_no", passive_deletes=True
    )


class SaleLine(Base):
    __tablename__ = "sale_lines"

    sale_id: Mapped[int] = mapped_column(
        sa.ForeignKey("sales.id", ondelete="CASCADE"), primary_key=True
    )
    line_no: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    source_line: Mapped[int] = mapped_column(sa.Integer)
    sku: Mapped[str] = mapped_column(sa.String(ID_LENGTH))
    product_name: Mapped[str] = mapped_column(sa.String(NAME_LENGTH))
    category: Mapped[str] = mapped_column(sa.String(NAME_LENGTH))
    quantity: Mapped[float] = mapped_column(sa.Double)
    amount_cents: Mapped[int] = mapped_column(sa.BigInteger)
    is_alcohol: Mapped[bool] = mapped_column(sa.Boolean)

    sale: Mapped[Sale] = relationship(back_populates="lines")


class Snapshot(Base):
    """A checkout camera frame: metadata only, the image stays under the snapshot root.

    ``problem`` says why a file named by the layout could not be used as an image at ingest
    (empty, not a JPEG, unreadable): the camera fired, the frame is unreadable.
    """

    __tablename__ = "snapshots"
    __table_args__ = (
        sa.ForeignKeyConstraint(
            ["store_id", "register_id"], ["registers.store_id", "registers.register_id"]
        ),
        sa.Index("ix_snapshots_register_time", "store_id", "register_id", "captured_at"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    store_id: Mapped[str] = mapped_column(sa.ForeignKey("stores.id"))
    register_id: Mapped[str] = mapped_column(sa.String(ID_LENGTH))
    captured_at: Mapped[datetime] = mapped_column(UTCDateTime)
    path: Mapped[str] = mapped_column(sa.String(PATH_LENGTH), unique=True)
    size_bytes: Mapped[int] = mapped_column(sa.BigInteger)
    sha256: Mapped[str] = mapped_column(sa.String(64))
    ingested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    problem: Mapped[str | None] = mapped_column(sa.String(NAME_LENGTH))


class AuditRun(Base):
    """One attempt to audit a store's business date.

    A store-night has at most one ``succeeded`` run: its current result. When a later run
    succeeds, the earlier one becomes ``replaced`` and its results go. ``running`` is a run in
    progress (or one whose process died: the next run of the store-night marks it ``failed``).
    ``stats`` holds the counts and the seconds spent per stage.
    """

    __tablename__ = "audit_runs"
    __table_args__ = (
        sa.CheckConstraint(_one_of("status", RunStatus), name="status"),
        sa.Index("ix_audit_runs_store_date", "store_id", "business_date"),
        sa.Index(
            "uq_audit_runs_succeeded",
            "store_id",
            "business_date",
            unique=True,
            sqlite_where=sa.text(f"status = '{RunStatus.SUCCEEDED}'"),
            postgresql_where=sa.text(f"status = '{RunStatus.SUCCEEDED}'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    store_id: Mapped[str] = mapped_column(sa.ForeignKey("stores.id"))
    business_date: Mapped[date] = mapped_column(sa.Date)
    status: Mapped[str] = mapped_column(sa.String(16), default=RunStatus.RUNNING)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    settings: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
    model_version: Mapped[str] = mapped_column(sa.String(NAME_LENGTH), default="")
    sales_audited: Mapped[int] = mapped_column(sa.Integer, default=0)
    flags_count: Mapped[int] = mapped_column(sa.Integer, default=0)
    error: Mapped[str | None] = mapped_column(sa.Text)
    stats: Mapped[dict[str, Any] | None] = mapped_column(JSONDoc)


class _FaceEvidence:
    """Columns shared by estimates and flags: the face box, the estimate and the crop."""

    face_x: Mapped[int | None] = mapped_column(sa.Integer)
    face_y: Mapped[int | None] = mapped_column(sa.Integer)
    face_w: Mapped[int | None] = mapped_column(sa.Integer)
    face_h: Mapped[int | None] = mapped_column(sa.Integer)
    age: Mapped[float | None] = mapped_column(sa.Double)
    spread: Mapped[float | None] = mapped_column(sa.Double)
    face_crop_path: Mapped[str | None] = mapped_column(sa.String(PATH_LENGTH))
    face_crop: Mapped[bytes | None] = mapped_column(sa.LargeBinary)
    evidence_purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AgeEstimate(_FaceEvidence, Base):
    """What the model made of one frame of one sale in one run."""

    __tablename__ = "age_estimates"
    __table_args__ = (
        sa.CheckConstraint(_one_of("outcome", EstimateOutcome), name="outcome"),
        sa.Index("ix_age_estimates_run", "run_id"),
        sa.Index("ix_age_estimates_sale", "sale_id"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    run_id: Mapped[int] = mapped_column(sa.ForeignKey("audit_runs.id", ondelete="CASCADE"))
    sale_id: Mapped[int] = mapped_column(sa.ForeignKey("sales.id", ondelete="CASCADE"))
    snapshot_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("snapshots.id", ondelete="SET NULL")
    )
    outcome: Mapped[str] = mapped_column(sa.String(32))
    model_version: Mapped[str] = mapped_column(sa.String(NAME_LENGTH))


class Flag(_FaceEvidence, Base):
    """A sale the audit holds up for review, with the evidence that made it do so."""

    __tablename__ = "flags"
    __table_args__ = (
        sa.UniqueConstraint("run_id", "sale_id", "kind"),
        sa.CheckConstraint(_one_of("kind", FlagKind), name="kind"),
        sa.Index("ix_flags_sale", "sale_id"),
        # the list filtered by kind, without reading the rows (and their face crops)
        sa.Index("ix_flags_kind", "kind", "run_id", "review_id", "p_under_legal"),
        # A flag's id names it in links and the audit log; a night audited again deletes its
        # flags, and without this SQLite would give their ids to the new ones (migration 0010).
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    run_id: Mapped[int] = mapped_column(sa.ForeignKey("audit_runs.id", ondelete="CASCADE"))
    sale_id: Mapped[int] = mapped_column(sa.ForeignKey("sales.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(sa.String(32))
    snapshot_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("snapshots.id", ondelete="SET NULL")
    )
    age_estimate_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("age_estimates.id", ondelete="SET NULL")
    )
    model_version: Mapped[str | None] = mapped_column(sa.String(NAME_LENGTH))
    threshold: Mapped[int] = mapped_column(sa.Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    detail: Mapped[str | None] = mapped_column(sa.Text)  # text evidence (a pos_error's lines)
    # The store's legal age in the run, and the sale's probabilities of a shopper under it and
    # under the threshold (None without a face): what the review ranks by.
    legal_age: Mapped[int | None] = mapped_column(sa.Integer)
    p_under_legal: Mapped[float | None] = mapped_column(sa.Double)
    p_under_threshold: Mapped[float | None] = mapped_column(sa.Double)
    # The current review of the flag's sale and kind (the latest), None while no one has
    # decided. Not a foreign key: reviews point at flags already, and are never deleted.
    review_id: Mapped[int | None] = mapped_column(BigIntId)


# The review list ranks flagged sales by these values where a sale has none: after every other.
NO_PROBABILITY = -1.0  # no P(under the legal age)
NO_AGE = 1000.0  # no estimated age (the list puts the youngest first)
FLAGGED = "flag_kinds <> ''"  # a verdict with flags: the review list's rows


class SaleVerdict(Base):
    """The audit's verdict on one alcohol sale in one run: the combined estimate and its flags.

    Every audited sale has one, flagged or not; ``flag_kinds`` is the kinds raised, joined by
    ``;`` in :class:`~auditor.vocabulary.FlagKind` order, and empty for a clean sale. The
    probabilities are of a shopper under the store's legal age and under its threshold (None
    without a face); ``challenged`` is a sale estimated under the threshold where the till
    recorded an ID check, so not flagged.

    The rest is the review state of a flagged sale in this run, what the review list reads:
    ``open_flags``, its flags without a decision, and the list's sort keys from its flags:
    ``violation`` (one is a hard violation), ``risk`` (the highest P(under the legal age), else
    :data:`NO_PROBABILITY`) and ``age_key`` (the estimated age, else :data:`NO_AGE`).
    """

    __tablename__ = "sale_verdicts"
    __table_args__ = (
        sa.UniqueConstraint("run_id", "sale_id"),
        sa.Index("ix_sale_verdicts_sale", "sale_id"),
        *(
            sa.Index(
                f"ix_sale_verdicts_{name}",
                *columns,
                sqlite_where=sa.text(FLAGGED),
                postgresql_where=sa.text(FLAGGED),
            )
            for name, columns in (
                ("open", ("run_id", "open_flags")),  # the list's counts and narrow lists
                ("risk", ("violation", "risk")),  # the list by risk, the default
                ("age", ("age_key",)),  # by estimated age
            )
        ),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    run_id: Mapped[int] = mapped_column(sa.ForeignKey("audit_runs.id", ondelete="CASCADE"))
    sale_id: Mapped[int] = mapped_column(sa.ForeignKey("sales.id", ondelete="CASCADE"))
    estimated_age: Mapped[float | None] = mapped_column(sa.Double)
    age_spread: Mapped[float | None] = mapped_column(sa.Double)
    frames_matched: Mapped[int] = mapped_column(sa.Integer)
    frames_read: Mapped[int] = mapped_column(sa.Integer)
    faces_found: Mapped[int] = mapped_column(sa.Integer)
    flag_kinds: Mapped[str] = mapped_column(sa.String(NAME_LENGTH), default="")
    p_under_legal: Mapped[float | None] = mapped_column(sa.Double)
    p_under_threshold: Mapped[float | None] = mapped_column(sa.Double)
    challenged: Mapped[bool] = mapped_column(sa.Boolean, default=False, server_default=sa.false())
    open_flags: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")
    violation: Mapped[bool] = mapped_column(sa.Boolean, default=False, server_default=sa.false())
    risk: Mapped[float] = mapped_column(
        sa.Double, default=NO_PROBABILITY, server_default=str(NO_PROBABILITY)
    )
    age_key: Mapped[float] = mapped_column(sa.Double, default=NO_AGE, server_default=str(NO_AGE))


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        sa.CheckConstraint(_one_of("role", Role), name="role"),
        sa.CheckConstraint(
            f"role <> '{Role.STORE_MANAGER}' OR store_id IS NOT NULL", name="manager_has_store"
        ),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    username: Mapped[str] = mapped_column(sa.String(NAME_LENGTH), unique=True)
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    role: Mapped[str] = mapped_column(sa.String(32))
    store_id: Mapped[str | None] = mapped_column(sa.ForeignKey("stores.id"))
    active: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Review(Base):
    """One reviewer's decision on a flagged sale. Never updated: the latest row is current."""

    __tablename__ = "reviews"
    __table_args__ = (
        sa.CheckConstraint(_one_of("decision", Decision), name="decision"),
        sa.Index("ix_reviews_sale_time", "sale_id", "reviewed_at"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    sale_id: Mapped[int] = mapped_column(sa.ForeignKey("sales.id", ondelete="CASCADE"))
    flag_id: Mapped[int | None] = mapped_column(sa.ForeignKey("flags.id", ondelete="SET NULL"))
    flag_kind: Mapped[str] = mapped_column(sa.String(32))
    reviewer_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    decision: Mapped[str] = mapped_column(sa.String(32))
    comment: Mapped[str] = mapped_column(sa.Text, default="")
    reviewed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AuditLogEntry(Base):
    """Who did what to which object, and when."""

    __tablename__ = "audit_log"
    __table_args__ = (
        sa.Index("ix_audit_log_object", "object_type", "object_id"),
        sa.Index("ix_audit_log_at", "at"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    actor: Mapped[str] = mapped_column(sa.String(NAME_LENGTH))
    action: Mapped[str] = mapped_column(sa.String(ID_LENGTH))
    object_type: Mapped[str] = mapped_column(sa.String(ID_LENGTH))
    object_id: Mapped[str] = mapped_column(sa.String(NAME_LENGTH))
    details: Mapped[dict[str, Any] | None] = mapped_column(JSONDoc)


class LoginFailure(Base):
    """A failed login, kept for twice ``[web] lockout_minutes`` to throttle logins: one row per
    key (``user:<name>`` and ``address:<ip>``) of each failure, shared by every process of the
    review app (:mod:`auditor.web.throttle`)."""

    __tablename__ = "login_failures"
    __table_args__ = (
        sa.Index("ix_login_failures_key_at", "key", "failed_at"),
        sa.Index("ix_login_failures_at", "failed_at"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(NAME_LENGTH + 16))
    failed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class WebSession(Base):
    """A login to the review app. The session cookie carries a random token; this row, keyed
    by the token's SHA-256, is what makes the cookie valid: logging out ends it, a password
    change or disabling the account ends all of the user's, so a copied cookie opens nothing
    afterwards. Rows older than ``[web] session_hours`` are deleted as new logins come in."""

    __tablename__ = "web_sessions"
    __table_args__ = (
        sa.Index("ix_web_sessions_user", "user_id"),
        sa.Index("ix_web_sessions_started", "started_at"),
    )

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Notification(Base):
    """One message of a nightly summary to one recipient: an e-mail or a webhook call.

    ``key`` names the night and scope (``2026-11-30/chain``, ``2026-11-30/store/S1``); a
    message is written once per key, channel and recipient, so a rerun of the night does not
    send it twice. One that fails stays ``pending`` and is tried again on the next nights, up
    to ``[notify] max_attempts``; then it is ``dropped``.
    """

    __tablename__ = "notifications"
    __table_args__ = (
        sa.UniqueConstraint("key", "channel", "recipient"),
        sa.CheckConstraint(_one_of("status", SendStatus), name="status"),
        sa.CheckConstraint("channel IN ('email', 'webhook')", name="channel"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(NAME_LENGTH))
    channel: Mapped[str] = mapped_column(sa.String(16))
    recipient: Mapped[str] = mapped_column(sa.String(PATH_LENGTH))
    subject: Mapped[str] = mapped_column(sa.String(NAME_LENGTH))
    body: Mapped[str] = mapped_column(sa.Text)  # the e-mail's text, or the webhook's JSON
    html: Mapped[str | None] = mapped_column(sa.Text)
    status: Mapped[str] = mapped_column(sa.String(16), default=SendStatus.PENDING)
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
