"""Audit runs keep every attempt; a verdict per audited sale.

An audit run becomes one attempt at a store-night instead of the store-night itself: the unique
(store_id, business_date) gives way to a unique index over the succeeded run alone, the status
gains ``replaced``, and a ``stats`` column holds counts and timings. ``sale_verdicts`` holds the
combined estimate and flag kinds of every audited sale.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)
BIGINT_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON_DOC = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

OLD_STATUSES = "status IN ('running', 'succeeded', 'failed')"
NEW_STATUSES = "status IN ('running', 'succeeded', 'failed', 'replaced')"
SUCCEEDED = sa.text("status = 'succeeded'")


def _audit_runs(revision: str) -> sa.Table:
    """``audit_runs`` as of ``revision``, for SQLite's copy-and-rename of the table."""
    old = revision == "0001"
    extra: list[sa.SchemaItem] = (
        [
            sa.UniqueConstraint(
                "store_id", "business_date", name="uq_audit_runs_store_id_business_date"
            )
        ]
        if old
        else [sa.Column("stats", JSON_DOC, nullable=True)]
    )
    return sa.Table(
        "audit_runs",
        sa.MetaData(),
        sa.Column("id", BIGINT_ID, nullable=False),
        sa.Column("store_id", sa.String(length=64), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("started_at", TIMESTAMP, nullable=False),
        sa.Column("finished_at", TIMESTAMP, nullable=True),
        sa.Column("settings", JSON_DOC, nullable=False),
        sa.Column("model_version", sa.String(length=200), nullable=False),
        sa.Column("sales_audited", sa.Integer(), nullable=False),
        sa.Column("flags_count", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.CheckConstraint(OLD_STATUSES if old else NEW_STATUSES, name="ck_audit_runs_status"),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], name="fk_audit_runs_store_id_stores"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_audit_runs"),
        *extra,
    )


def upgrade() -> None:
    with op.batch_alter_table("audit_runs", copy_from=_audit_runs("0001")) as batch:
        batch.drop_constraint(op.f("uq_audit_runs_store_id_business_date"), type_="unique")
        batch.drop_constraint(op.f("ck_audit_runs_status"), type_="check")
        batch.create_check_constraint(op.f("ck_audit_runs_status"), NEW_STATUSES)
        batch.add_column(sa.Column("stats", JSON_DOC, nullable=True))
    op.create_index("ix_audit_runs_store_date", "audit_runs", ["store_id", "business_date"])
    op.create_index(
        "uq_audit_runs_succeeded",
        "audit_runs",
        ["store_id", "business_date"],
        unique=True,
        sqlite_where=SUCCEEDED,
        postgresql_where=SUCCEEDED,
    )

    op.create_table(
        "sale_verdicts",
        sa.Column("id", BIGINT_ID, nullable=False),
        sa.Column("run_id", BIGINT_ID, nullable=False),
        sa.Column("sale_id", BIGINT_ID, nullable=False),
        sa.Column("estimated_age", sa.Double(), nullable=True),
        sa.Column("age_spread", sa.Double(), nullable=True),
        sa.Column("frames_matched", sa.Integer(), nullable=False),
        sa.Column("frames_read", sa.Integer(), nullable=False),
        sa.Column("faces_found", sa.Integer(), nullable=False),
        sa.Column("flag_kinds", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["audit_runs.id"],
            name=op.f("fk_sale_verdicts_run_id_audit_runs"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["sale_id"],
            ["sales.id"],
            name=op.f("fk_sale_verdicts_sale_id_sales"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sale_verdicts")),
        sa.UniqueConstraint("run_id", "sale_id", name=op.f("uq_sale_verdicts_run_id_sale_id")),
    )
    op.create_index("ix_sale_verdicts_sale", "sale_verdicts", ["sale_id"])


def downgrade() -> None:
    op.drop_index("ix_sale_verdicts_sale", table_name="sale_verdicts")
    op.drop_table("sale_verdicts")
    # One run per store-night again: keep the succeeded ones, with their results.
    others = "SELECT id FROM audit_runs WHERE status <> 'succeeded'"
    op.execute(f"UPDATE reviews SET flag_id = NULL WHERE flag_id IN "
               f"(SELECT id FROM flags WHERE run_id IN ({others}))")
    for child in ("flags", "age_estimates"):
        op.execute(f"DELETE FROM {child} WHERE run_id IN ({others})")
    op.execute("DELETE FROM audit_runs WHERE status <> 'succeeded'")
    op.drop_index("uq_audit_runs_succeeded", table_name="audit_runs")
    op.drop_index("ix_audit_runs_store_date", table_name="audit_runs")
    with op.batch_alter_table("audit_runs", copy_from=_audit_runs("0002")) as batch:
        batch.drop_column("stats")
        batch.drop_constraint(op.f("ck_audit_runs_status"), type_="check")
        batch.create_check_constraint(op.f("ck_audit_runs_status"), OLD_STATUSES)
        batch.create_unique_constraint(
            op.f("uq_audit_runs_store_id_business_date"), ["store_id", "business_date"]
        )
