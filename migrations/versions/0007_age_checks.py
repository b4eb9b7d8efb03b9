"""The till's age check reaches the audit: a sale keeps what the POS recorded of it (the
kind of check and a birth date), flags and verdicts keep the probabilities of a shopper under
the store's legal age and under its threshold, and the flags' kinds gain ``no_id_check``,
``birth_date_under_age`` and ``id_contradicts_face``.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)
BIGINT_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

OLD_KINDS = (
    "kind IN ('under_age_threshold', 'no_frame', 'no_face', 'unreadable_frame', "
    "'outside_legal_hours', 'pos_error')"
)
NEW_KINDS = (
    "kind IN ('birth_date_under_age', 'id_contradicts_face', 'no_id_check', "
    "'under_age_threshold', 'no_frame', 'no_face', 'unreadable_frame', 'outside_legal_hours', "
    "'pos_error')"
)
NEW_FLAG_KINDS = "('birth_date_under_age', 'id_contradicts_face', 'no_id_check')"
AGE_CHECKS = "age_check IS NULL OR age_check IN ('none', 'visual', 'id_checked', 'id_scanned')"


def _flags(revision: str) -> sa.Table:
    """``flags`` as of ``revision``, for SQLite's copy-and-rename of the table."""
    old = revision == "0006"
    extra: list[sa.SchemaItem] = (
        []
        if old
        else [
            sa.Column("legal_age", sa.Integer(), nullable=True),
            sa.Column("p_under_legal", sa.Double(), nullable=True),
            sa.Column("p_under_threshold", sa.Double(), nullable=True),
        ]
    )
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
        sa.Column("detail", sa.Text(), nullable=True),
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
        batch.add_column(sa.Column("age_check", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("birth_date", sa.Date(), nullable=True))
        batch.create_check_constraint(op.f("ck_sales_age_check"), AGE_CHECKS)
    with op.batch_alter_table("sale_verdicts") as batch:
        batch.add_column(sa.Column("p_under_legal", sa.Double(), nullable=True))
        batch.add_column(sa.Column("p_under_threshold", sa.Double(), nullable=True))
        batch.add_column(
            sa.Column("challenged", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("flags", copy_from=_flags("0006")) as batch:
        batch.drop_constraint(op.f("ck_flags_kind"), type_="check")
        batch.create_check_constraint(op.f("ck_flags_kind"), NEW_KINDS)
        batch.add_column(sa.Column("legal_age", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("p_under_legal", sa.Double(), nullable=True))
        batch.add_column(sa.Column("p_under_threshold", sa.Double(), nullable=True))


def downgrade() -> None:
    new_flags = f"SELECT id FROM flags WHERE kind IN {NEW_FLAG_KINDS}"
    op.execute(f"UPDATE reviews SET flag_id = NULL WHERE flag_id IN ({new_flags})")
    op.execute(f"DELETE FROM flags WHERE kind IN {NEW_FLAG_KINDS}")
    with op.batch_alter_table("flags", copy_from=_flags("0007")) as batch:
        batch.drop_column("p_under_threshold")
        batch.drop_column("p_under_legal")
        batch.drop_column("legal_age")
        batch.drop_constraint(op.f("ck_flags_kind"), type_="check")
        batch.create_check_constraint(op.f("ck_flags_kind"), OLD_KINDS)
    with op.batch_alter_table("sale_verdicts") as batch:
        batch.drop_column("challenged")
        batch.drop_column("p_under_threshold")
        batch.drop_column("p_under_legal")
    with op.batch_alter_table("sales") as batch:
        batch.drop_constraint(op.f("ck_sales_age_check"), type_="check")
        batch.drop_column("birth_date")
        batch.drop_column("age_check")
