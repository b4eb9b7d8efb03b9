"""The review state is kept with the results: each flag's current review
(``flags.review_id``, the latest review of its sale and kind) and, per sale of a run, its flags
without a decision and the review list's sort keys (``sale_verdicts.open_flags``, ``violation``,
``risk``, ``age_key``), with the indexes the list reads them by. Filled from the reviews and
flags already there.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)
BIGINT_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

KINDS = (
    "kind IN ('birth_date_under_age', 'id_contradicts_face', 'no_id_check', "
    "'under_age_threshold', 'no_frame', 'no_face', 'unreadable_frame', 'outside_legal_hours', "
    "'pos_error')"
)
VIOLATIONS = "('birth_date_under_age', 'id_contradicts_face')"
NO_PROBABILITY = "-1.0"
NO_AGE = "1000.0"
FLAGGED = "flag_kinds <> ''"

LATEST_REVIEW = (
    "SELECT r.id FROM reviews r WHERE r.sale_id = flags.sale_id AND r.flag_kind = flags.kind"
    " ORDER BY r.reviewed_at DESC, r.id DESC LIMIT 1"
)
OWN_FLAGS = (
    "FROM flags f WHERE f.run_id = sale_verdicts.run_id AND f.sale_id = sale_verdicts.sale_id"
)
BACKFILL = [
    f"UPDATE flags SET review_id = ({LATEST_REVIEW})"
    " WHERE EXISTS (SELECT 1 FROM reviews r"
    " WHERE r.sale_id = flags.sale_id AND r.flag_kind = flags.kind)",
    "UPDATE sale_verdicts SET"
    f" open_flags = (SELECT count(*) {OWN_FLAGS} AND f.review_id IS NULL),"
    f" violation = EXISTS (SELECT 1 {OWN_FLAGS} AND f.kind IN {VIOLATIONS}),"
    f" risk = coalesce((SELECT max(f.p_under_legal) {OWN_FLAGS}), {NO_PROBABILITY}),"
    f" age_key = coalesce(estimated_age, {NO_AGE})",
]


def _flags() -> sa.Table:
    """``flags`` as of revision 0008, for SQLite's copy-and-rename of the table."""
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
        sa.Column("legal_age", sa.Integer(), nullable=True),
        sa.Column("p_under_legal", sa.Double(), nullable=True),
        sa.Column("p_under_threshold", sa.Double(), nullable=True),
        sa.Column("review_id", BIGINT_ID, nullable=True),
        sa.CheckConstraint(KINDS, name="ck_flags_kind"),
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
    op.add_column("flags", sa.Column("review_id", BIGINT_ID, nullable=True))
    with op.batch_alter_table("sale_verdicts") as batch:
        batch.add_column(sa.Column("open_flags", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(
            sa.Column("violation", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(
            sa.Column("risk", sa.Double(), nullable=False, server_default=NO_PROBABILITY)
        )
        batch.add_column(sa.Column("age_key", sa.Double(), nullable=False, server_default=NO_AGE))
    for statement in BACKFILL:
        op.execute(statement)
    op.create_index("ix_flags_kind", "flags", ["kind", "run_id", "review_id", "p_under_legal"])
    for name, columns in (
        ("open", ["run_id", "open_flags"]),
        ("risk", ["violation", "risk"]),
        ("age", ["age_key"]),
    ):
        op.create_index(
            f"ix_sale_verdicts_{name}",
            "sale_verdicts",
            columns,
            sqlite_where=sa.text(FLAGGED),
            postgresql_where=sa.text(FLAGGED),
        )


def downgrade() -> None:
    op.drop_index("ix_sale_verdicts_age", table_name="sale_verdicts")
    op.drop_index("ix_sale_verdicts_risk", table_name="sale_verdicts")
    op.drop_index("ix_sale_verdicts_open", table_name="sale_verdicts")
    op.drop_index("ix_flags_kind", table_name="flags")
    with op.batch_alter_table("sale_verdicts") as batch:
        batch.drop_column("age_key")
        batch.drop_column("risk")
        batch.drop_column("violation")
        batch.drop_column("open_flags")
    with op.batch_alter_table("flags", copy_from=_flags()) as batch:
        batch.drop_column("review_id")
