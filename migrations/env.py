"""Alembic environment: metadata from the models, the URL from the auditor's settings."""

from logging.config import fileConfig

from alembic import context

from auditor.db.engine import make_engine
from auditor.db.models import Base
from auditor.settings import load_settings

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logging", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _url() -> str:
    if "url" in config.attributes:
        return config.attributes["url"]
    return load_settings(context.get_x_argument(as_dictionary=True).get("config")).database_url


def _configure(**kwargs: object) -> None:
    context.configure(
        target_metadata=Base.metadata,
        compare_type=True,
        render_as_batch=True,
        **kwargs,
    )


def run_migrations_offline() -> None:
    _configure(url=_url(), literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = make_engine(_url())
    try:
        with engine.connect() as connection:
            if connection.dialect.name == "sqlite":
                # SQLite rebuilds a table to alter it (batch mode); dropping the old copy must not
                # cascade to the rows that reference it. Only outside a transaction does it apply.
                connection.exec_driver_sql("PRAGMA foreign_keys = OFF")
                connection.commit()
            _configure(connection=connection)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
