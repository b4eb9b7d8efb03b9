"""POS problems reach the audit: a receipt keeps the lines the ingest rejected, and the audit
flags such a sale ``pos_error``, naming them.

``sales.pos_errors`` lists a receipt's rejected lines (``file:line: field: reason``);
``flags.detail`` holds a flag's text evidence; the flags' kinds gain ``pos_error``.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)
BIGINT_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON_DOC = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

OLD_KINDS = (
    "kind IN ('under_age_threshold', 'no_frame', 'no_face', 'unreadable_frame', "
    "'outside_legal_hours')"
)
NEW_KINDS = (
    "kind IN ('under_age_threshold', 'no_frame', 'no_face', 'unreadable_frame', "
    "'outside_legal_hours', 'pos_error')"
)


def _flags(revision: str) -> sa.Table:
    """``flags`` as of ``revision``, for SQLite's copy-and-rename of the table."""
    old = revision == "0004"
    extra: list[sa.SchemaItem] = [] if old else [sa.Column("detail", sa.Text(), nullable=True)]
    return sa.Table(
        "flags",
        sa.MetaData(),
        sa.Column("id", BIGINT_ID, nullable=False),
        sa.Column("run_id", BIGINT_ID, nullable=False),
        sa.Column("sale_id", BIGINT_ID, nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("snapshot_id", BIGINT_ID, nullable=True),
        sa.Column("age_estimate_id", BIGINT_ID, nullable=True),
        sa.Column("model_version", sa.String(length=200), nullable=True),
        sa.Column("threshold", sa.Integer(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("face_x", sa.Integer(), nullable=True),
        sa.Column("face_y", sa.Integer(), nullable=True),
        sa.Column("face_w", sa.Integer(), nullable=True),
        sa.Column("face_h", sa.Integer(), nullable=True),
        sa.Column("age", sa.Double(), nullable=True),
        sa.Column("spread", sa.Double(), nullable=True),
        sa.Column("face_crop_path", sa.String(length=1024), nullable=True),
        sa.Column("face_crop", sa.LargeBinary(), nullable=True),
        sa.Column("evidence_purged_at", TIMESTAMP, nullable=True),
        *extra,
        sa.CheckConstraint(OLD_KINDS if old else NEW_KINDS, name="ck_flags_kind"),
        sa.ForeignKeyConstraint(
            ["age_estimate_id"],
            ["age_estimates.id"],
            name="fk_flags_age_estimate_id_age_estimates",
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["audit_runs.id"], name="fk_flags_run_id_audit_runs", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["sale_id"], ["sales.id"], name="fk_flags_sale_id_sales", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["snapshot_id"],
            ["snapshots.id"],
            name="fk_flags_snapshot_id_snapshots",
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_flags"),
        sa.UniqueConstraint("run_id", "sale_id", "kind", name="uq_flags_run_id_sale_id_kind"),
        sa.Index("ix_flags_sale", "sale_id"),
    )


def upgrade() -> None:
    with op.batch_alter_table("sales") as batch:
        batch.add_column(sa.Column("pos_errors", JSON_DOC, nullable=True))
    with op.batch_alter_table("flags", copy_from=_flags("0004")) as batch:
        batch.drop_constraint(op.f("ck_flags_kind"), type_="check")
        batch.create_check_constraint(op.f("ck_flags_kind"), NEW_KINDS)
        batch.add_column(sa.Column("detail", sa.Text(), nullable=True))


def downgrade() -> None:
    pos_error_flags = "SELECT id FROM flags WHERE kind = 'pos_error'"
    op.execute(f"UPDATE reviews SET flag_id = NULL WHERE flag_id IN ({pos_error_flags})")
    op.execute("DELETE FROM flags WHERE kind = 'pos_error'")
    with op.batch_alter_table("flags", copy_from=_flags("0005")) as batch:
        batch.drop_column("detail")
        batch.drop_constraint(op.f("ck_flags_kind"), type_="check")
        batch.create_check_constraint(op.f("ck_flags_kind"), OLD_KINDS)
    with op.batch_alter_table("sales") as batch:
        batch.drop_column("pos_errors")
