"""A frame file that is not a readable image is still recorded, with what is wrong with it, so
that the audit tells an unreadable frame from a missing one.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("snapshots") as batch:
        batch.add_column(sa.Column("problem", sa.String(length=200), nullable=True))


def downgrade() -> None:
    op.execute("DELETE FROM snapshots WHERE problem IS NOT NULL AND id NOT IN"
               " (SELECT snapshot_id FROM flags WHERE snapshot_id IS NOT NULL UNION"
               " SELECT snapshot_id FROM age_estimates WHERE snapshot_id IS NOT NULL)")
    with op.batch_alter_table("snapshots") as batch:
        batch.drop_column("problem")
