"""A flag's id is never given again: on SQLite ``flags.id`` becomes ``AUTOINCREMENT``.

A flag's id names it in links (reports, the review app, messages) and in the audit log, and a
night audited again replaces its flags. SQLite gives a new row the highest id + 1, so the new
flags took the ids of the flags just deleted when those were the highest: a page opened before
the new audit then sent its decision to another sale's flag. ``AUTOINCREMENT`` never reuses an
id; PostgreSQL's identity columns never did, so there this changes nothing. SQLite rebuilds the
table (its columns, constraints and indexes as they are).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _rebuild_flags(autoincrement: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table(
        "flags", recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
    ):
        pass


def upgrade() -> None:
    _rebuild_flags(True)


def downgrade() -> None:
    _rebuild_flags(False)
