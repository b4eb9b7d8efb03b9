"""Initial schema: stores, POS sales, snapshots, audit results, reviews, users, audit log.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Spelled out here rather than imported from the app, so this revision never changes.
TIMESTAMP = sa.DateTime(timezone=True)
BIGINT_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON_DOC = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "stores",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stores")),
    )
    op.create_table(
        "audit_runs",
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
        sa.CheckConstraint(
            "status IN ('running', 'succeeded', 'failed')", name=op.f("ck_audit_runs_status")
        ),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], name=op.f("fk_audit_runs_store_id_stores")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_runs")),
        sa.UniqueConstraint(
            "store_id", "business_date", name=op.f("uq_audit_runs_store_id_business_date")
        ),
    )
    op.create_table(
        "cashiers",
        sa.Column("store_id", sa.String(length=64), nullable=False),
        sa.Column("cashier_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], name=op.f("fk_cashiers_store_id_stores")
        ),
        sa.PrimaryKeyConstraint("store_id", "cashier_id", name=op.f("pk_cashiers")),
    )
    op.create_table(
        "registers",
        sa.Column("store_id", sa.String(length=64), nullable=False),
        sa.Column("register_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], name=op.f("fk_registers_store_id_stores")
        ),
        sa.PrimaryKeyConstraint("store_id", "register_id", name=op.f("pk_registers")),
    )
    op.create_table(
        "users",
        sa.Column("id", BIGINT_ID, nullable=False),
        sa.Column("username", sa.String(length=200), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("store_id", sa.String(length=64), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.CheckConstraint(
            "role <> 'store_manager' OR store_id IS NOT NULL",
            name=op.f("ck_users_manager_has_store"),
        ),
        sa.CheckConstraint(
            "role IN ('store_manager', 'loss_prevention', 'analyst', 'admin')",
            name=op.f("ck_users_role"),
        ),
        sa.ForeignKeyConstraint(["store_id"], ["stores.id"], name=op.f("fk_users_store_id_stores")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", BIGINT_ID, nullable=False),
        sa.Column("at", TIMESTAMP, nullable=False),
        sa.Column("user_id", BIGINT_ID, nullable=True),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("object_type", sa.String(length=64), nullable=False),
        sa.Column("object_id", sa.String(length=200), nullable=False),
        sa.Column("details", JSON_DOC, nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_audit_log_user_id_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_index("ix_audit_log_object", "audit_log", ["object_type", "object_id"])

    op.create_table(
        "sales",
        sa.Column("id", BIGINT_ID, nullable=False),
        sa.Column("store_id", sa.String(length=64), nullable=False),
        sa.Column("receipt_id", sa.String(length=64), nullable=False),
        sa.Column("register_id", sa.String(length=64), nullable=False),
        sa.Column("cashier_id", sa.String(length=64), nullable=False),
        sa.Column("sold_at", TIMESTAMP, nullable=False),
        sa.Column("has_alcohol", sa.Boolean(), nullable=False),
        sa.Column("line_count", sa.Integer(), nullable=False),
        sa.Column("total_cents", sa.BigInteger(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("source_file", sa.String(length=1024), nullable=False),
        sa.Column("ingested_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["store_id", "cashier_id"],
            ["cashiers.store_id", "cashiers.cashier_id"],
            name=op.f("fk_sales_store_id_cashier_id_cashiers"),
        ),
        sa.ForeignKeyConstraint(
            ["store_id", "register_id"],
            ["registers.store_id", "registers.register_id"],
            name=op.f("fk_sales_store_id_register_id_registers"),
        ),
        sa.ForeignKeyConstraint(["store_id"], ["stores.id"], name=op.f("fk_sales_store_id_stores")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sales")),
        sa.UniqueConstraint("store_id", "receipt_id", name=op.f("uq_sales_store_id_receipt_id")),
    )
    op.create_index("ix_sales_store_sold_at", "sales", ["store_id", "sold_at"])

    op.create_table(
        "snapshots",
        sa.Column("id", BIGINT_ID, nullable=False),
        sa.Column("store_id", sa.String(length=64), nullable=False),
        sa.Column("register_id", sa.String(length=64), nullable=False),
        sa.Column("captured_at", TIMESTAMP, nullable=False),
        sa.Column("path", sa.String(length=1024), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("ingested_at", TIMESTAMP, nullable=False),
        sa.Column("purged_at", TIMESTAMP, nullable=True),
        sa.ForeignKeyConstraint(
            ["store_id", "register_id"],
            ["registers.store_id", "registers.register_id"],
            name=op.f("fk_snapshots_store_id_register_id_registers"),
        ),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], name=op.f("fk_snapshots_store_id_stores")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_snapshots")),
        sa.UniqueConstraint("path", name=op.f("uq_snapshots_path")),
    )
    op.create_index(
        "ix_snapshots_register_time", "snapshots", ["store_id", "register_id", "captured_at"]
    )

    op.create_table(
        "age_estimates",
        sa.Column("id", BIGINT_ID, nullable=False),
        sa.Column("run_id", BIGINT_ID, nullable=False),
        sa.Column("sale_id", BIGINT_ID, nullable=False),
        sa.Column("snapshot_id", BIGINT_ID, nullable=True),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("model_version", sa.String(length=200), nullable=False),
        sa.Column("face_x", sa.Integer(), nullable=True),
        sa.Column("face_y", sa.Integer(), nullable=True),
        sa.Column("face_w", sa.Integer(), nullable=True),
        sa.Column("face_h", sa.Integer(), nullable=True),
        sa.Column("age", sa.Double(), nullable=True),
        sa.Column("spread", sa.Double(), nullable=True),
        sa.Column("face_crop_path", sa.String(length=1024), nullable=True),
        sa.Column("face_crop", sa.LargeBinary(), nullable=True),
        sa.Column("evidence_purged_at", TIMESTAMP, nullable=True),
        sa.CheckConstraint(
            "outcome IN ('estimated', 'no_face', 'unreadable_frame')",
            name=op.f("ck_age_estimates_outcome"),
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["audit_runs.id"],
            name=op.f("fk_age_estimates_run_id_audit_runs"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["sale_id"],
            ["sales.id"],
            name=op.f("fk_age_estimates_sale_id_sales"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["snapshot_id"],
            ["snapshots.id"],
            name=op.f("fk_age_estimates_snapshot_id_snapshots"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_age_estimates")),
    )
    op.create_index("ix_age_estimates_run", "age_estimates", ["run_id"])
    op.create_index("ix_age_estimates_sale", "age_estimates", ["sale_id"])

    op.create_table(
        "sale_lines",
        sa.Column("sale_id", BIGINT_ID, nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("source_line", sa.Integer(), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("product_name", sa.String(length=200), nullable=False),
        sa.Column("category", sa.String(length=200), nullable=False),
        sa.Column("quantity", sa.Double(), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("is_alcohol", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["sale_id"], ["sales.id"], name=op.f("fk_sale_lines_sale_id_sales"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("sale_id", "line_no", name=op.f("pk_sale_lines")),
    )
    op.create_table(
        "flags",
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
        sa.CheckConstraint(
            "kind IN ('under_age_threshold', 'no_frame', 'no_face', 'unreadable_frame', 'outside_legal_hours')",
            name=op.f("ck_flags_kind"),
        ),
        sa.ForeignKeyConstraint(
            ["age_estimate_id"],
            ["age_estimates.id"],
            name=op.f("fk_flags_age_estimate_id_age_estimates"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["audit_runs.id"],
            name=op.f("fk_flags_run_id_audit_runs"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["sale_id"], ["sales.id"], name=op.f("fk_flags_sale_id_sales"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["snapshot_id"],
            ["snapshots.id"],
            name=op.f("fk_flags_snapshot_id_snapshots"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_flags")),
        sa.UniqueConstraint("run_id", "sale_id", "kind", name=op.f("uq_flags_run_id_sale_id_kind")),
    )
    op.create_index("ix_flags_sale", "flags", ["sale_id"])

    op.create_table(
        "reviews",
        sa.Column("id", BIGINT_ID, nullable=False),
        sa.Column("sale_id", BIGINT_ID, nullable=False),
        sa.Column("flag_id", BIGINT_ID, nullable=True),
        sa.Column("flag_kind", sa.String(length=32), nullable=False),
        sa.Column("reviewer_id", BIGINT_ID, nullable=False),
        sa.Column("decision", sa.String(length=32), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("reviewed_at", TIMESTAMP, nullable=False),
        sa.CheckConstraint(
            "decision IN ('confirmed_violation', 'id_checked', 'adult', 'invalid_frame')",
            name=op.f("ck_reviews_decision"),
        ),
        sa.ForeignKeyConstraint(
            ["flag_id"], ["flags.id"], name=op.f("fk_reviews_flag_id_flags"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["reviewer_id"], ["users.id"], name=op.f("fk_reviews_reviewer_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["sale_id"], ["sales.id"], name=op.f("fk_reviews_sale_id_sales"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reviews")),
    )
    op.create_index("ix_reviews_sale_time", "reviews", ["sale_id", "reviewed_at"])


def downgrade() -> None:
    op.drop_index("ix_reviews_sale_time", table_name="reviews")

    op.drop_table("reviews")
    op.drop_index("ix_flags_sale", table_name="flags")

    op.drop_table("flags")
    op.drop_table("sale_lines")
    op.drop_index("ix_age_estimates_sale", table_name="age_estimates")
    op.drop_index("ix_age_estimates_run", table_name="age_estimates")

    op.drop_table("age_estimates")
    op.drop_index("ix_snapshots_register_time", table_name="snapshots")

    op.drop_table("snapshots")
    op.drop_index("ix_sales_store_sold_at", table_name="sales")

    op.drop_table("sales")
    op.drop_index("ix_audit_log_object", table_name="audit_log")
    op.drop_index("ix_audit_log_at", table_name="audit_log")

    op.drop_table("audit_log")
    op.drop_table("users")
    op.drop_table("registers")
    op.drop_table("cashiers")
    op.drop_table("audit_runs")
    op.drop_table("stores")
