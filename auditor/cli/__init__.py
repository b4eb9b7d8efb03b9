"""The ``auditor`` command. Each command group lives in its own module.

Errors from bad input or settings (:class:`~auditor.errors.AuditorError`) become one-line
messages and exit code 1 here, at the edge; usage errors exit 2. Commands that only read take
the engine from :meth:`AppContext.existing_engine`, so they never create a database.
"""

from __future__ import annotations

import logging
from functools import cached_property
from pathlib import Path
from typing import Any

import click
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from auditor import __version__
from auditor.cli.audit import audit_command, flags_command, schedule_command
from auditor.cli.config import config_group
from auditor.cli.db import db_group
from auditor.cli.demo import demo_command
from auditor.cli.ingest import ingest_group
from auditor.cli.model import model_group
from auditor.cli.purge import purge_command
from auditor.cli.report import report_command
from auditor.cli.serve import serve_command
from auditor.cli.threshold import threshold_command
from auditor.cli.users import users_group
from auditor.db.engine import make_engine, make_session_factory, require_existing_database
from auditor.db.migrations import require_current_schema
from auditor.errors import AuditorError
from auditor.settings import Settings, load_settings


class AppContext:
    """What the commands share (``ctx.obj``): settings and database, loaded when first used."""

    def __init__(self, config_path: Path | None) -> None:
        self.config_path = config_path

    @cached_property
    def settings(self) -> Settings:
        return load_settings(self.config_path)

    @cached_property
    def engine(self) -> Engine:
        return make_engine(self.settings.database_url)

    def existing_engine(self) -> Engine:
        """The engine, for a command that only reads or needs a database made already: a
        SQLite file that does not exist is an error naming it, rather than created empty by
        the first connection."""
        require_existing_database(self.settings.database_url)
        return self.engine

    def migrated_engine(self) -> Engine:
        """:meth:`existing_engine`, of a database at the current schema revision (else an error
        saying to run ``auditor db upgrade``): what a command that works on the tables needs."""
        engine = self.existing_engine()
        require_current_schema(engine)
        return engine

    @cached_property
    def session_factory(self) -> sessionmaker[Session]:
        return make_session_factory(self.engine)

    def close(self) -> None:
        if "engine" in self.__dict__:
            self.engine.dispose()


class _AuditorGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except AuditorError as e:
            raise click.ClickException(str(e)) from e


@click.group("auditor", cls=_AuditorGroup)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="AUDITOR_CONFIG",
    help="Settings file (TOML). Default: ./auditor.toml if it exists, else built-in defaults.",
)
@click.option("-v", "--verbose", count=True, help="Log more (-v: info, -vv: debug).")
@click.version_option(__version__, prog_name="auditor")
@click.pass_context
def main(ctx: click.Context, config_path: Path | None, verbose: int) -> None:
    """Audit cashiers' alcohol sales against checkout snapshots.

    Settings come from --config (or ./auditor.toml) and AUDITOR_* environment variables,
    e.g. AUDITOR_DATABASE__URL. See auditor.example.toml for every key.
    """
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    app = AppContext(config_path)
    ctx.obj = app
    ctx.call_on_close(app.close)


main.add_command(config_group)
main.add_command(db_group)
main.add_command(ingest_group)
main.add_command(model_group)
main.add_command(audit_command)
main.add_command(flags_command)
main.add_command(schedule_command)
main.add_command(report_command)
main.add_command(demo_command)
main.add_command(users_group)
main.add_command(serve_command)
main.add_command(threshold_command)
main.add_command(purge_command)
