"""Apply and inspect the Alembic migrations in ``migrations/``; they own the schema.

The scripts are the checkout's ``migrations/`` or, installed from a wheel, the copy inside the
package (:func:`auditor.resources.shipped_folder`).
"""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

from auditor.db.engine import DatabaseError, database_errors, describe_url
from auditor.resources import shipped_folder

MIGRATIONS_DIR = shipped_folder("migrations")


class SchemaOutOfDateError(DatabaseError):
    """The database has not been migrated to the schema this version of the auditor needs."""


def alembic_config(url: str) -> Config:
    """An Alembic config that runs ``migrations/`` against ``url``, leaving logging alone."""
    if not (MIGRATIONS_DIR / "env.py").is_file():
        raise DatabaseError(f"migrations not found in {MIGRATIONS_DIR}; reinstall the auditor")
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["url"] = url
    config.attributes["configure_logging"] = False
    return config


def upgrade(url: str, revision: str = "head") -> None:
    with database_errors(url):
        command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    with database_errors(url):
        command.downgrade(alembic_config(url), revision)


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None, "migrations/versions holds no revision"
    return head


def current_revision(engine: Engine) -> str | None:
    with database_errors(engine.url), engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def require_current_schema(engine: Engine) -> None:
    """Raise :class:`SchemaOutOfDateError` unless the database is at the latest revision."""
    current, head = current_revision(engine), head_revision()
    if current != head:
        raise SchemaOutOfDateError(
            f"database {describe_url(engine.url)} is at schema revision {current or 'none'}, "
            f"this auditor needs {head}: run `auditor db upgrade`"
        )
