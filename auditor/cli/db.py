"""``auditor db ...``: create and migrate the database."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from auditor.db import migrations
from auditor.db.engine import describe_url

if TYPE_CHECKING:
    from auditor.cli import AppContext


@click.group("db")
def db_group() -> None:
    """Create and migrate the database."""


@db_group.command("upgrade")
@click.argument("revision", default="head")
@click.pass_obj
def upgrade(app: AppContext, revision: str) -> None:
    """Create the database, or migrate it to REVISION (default: the latest).

    The same as `alembic upgrade head` run in the project folder.
    """
    url = app.settings.database_url
    migrations.upgrade(url, revision)
    current = migrations.current_revision(app.engine)
    click.echo(f"database {describe_url(url)} is at schema revision {current}")


@db_group.command("current")
@click.pass_obj
def current(app: AppContext) -> None:
    """Print the database's schema revision and the latest one."""
    engine = app.existing_engine()
    found = migrations.current_revision(engine)
    head = migrations.head_revision()
    state = "up to date" if found == head else "run `auditor db upgrade`"
    click.echo(f"database {describe_url(engine.url)}: {found or 'empty'} (latest {head}, {state})")
