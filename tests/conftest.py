"""Shared fixtures: real databases (SQLite file and PostgreSQL), settings, the CLI runner.

``db_url`` is parametrised over both databases, each created once per test session and migrated
with Alembic; every test that uses it starts from empty tables. PostgreSQL is the server at
``AUDITOR_TEST_PG_URL`` (default: user postgres on 127.0.0.1:5432); the session gets its own
database there, dropped at the end. When the server cannot be reached the PostgreSQL cases are
skipped, except under CI (``CI=true``), where they fail.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from auditor.cli import main
from auditor.db import make_engine, make_session_factory
from auditor.db.migrations import upgrade
from auditor.db.models import Base
from auditor.settings import Settings
from tests.factories import make_settings, write_config

PG_SERVER_URL = os.environ.get(
    "AUDITOR_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No AUDITOR_* variable from the shell leaks into a test."""
    for name in list(os.environ):
        if name.startswith("AUDITOR_") and name != "AUDITOR_TEST_PG_URL":
            monkeypatch.delenv(name)


def _unreachable(reason: str) -> None:
    message = f"PostgreSQL at {sa.make_url(PG_SERVER_URL)!r} is unreachable: {reason}"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message)
    pytest.skip(message)


def create_pg_database(prefix: str = "auditor_test") -> str:
    """A new, empty database on the test server; returns its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_SERVER_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except sa.exc.OperationalError as e:
        _unreachable(str(e.orig).strip().splitlines()[0])
    finally:
        admin.dispose()
    return sa.make_url(PG_SERVER_URL).set(database=name).render_as_string(hide_password=False)


def drop_pg_database(url: str) -> None:
    name = sa.make_url(url).database
    admin = sa.create_engine(PG_SERVER_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


def database_at(
    backend: str, tmp_path: Path, revision: str, rows: Sequence[str], prefix: str
) -> Iterator[str]:
    """A database (``backend`` "sqlite" or "postgresql") migrated to ``revision`` and holding
    ``rows`` (SQL statements); yields its URL, and drops a PostgreSQL one after."""
    url = f"sqlite:///{tmp_path / 'old.db'}" if backend == "sqlite" else create_pg_database(prefix)
    upgrade(url, revision)
    engine = make_engine(url)
    with engine.begin() as connection:
        for statement in rows:
            connection.exec_driver_sql(statement)
    engine.dispose()
    yield url
    if backend == "postgresql":
        drop_pg_database(url)


@pytest.fixture(scope="session")
def _migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'auditor.db'}"
    upgrade(url)
    engine = make_engine(url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def _migrated_postgresql() -> Iterator[Engine]:
    url = create_pg_database()
    try:
        upgrade(url)
        engine = make_engine(url)
        yield engine
        engine.dispose()
    finally:
        drop_pg_database(url)


def empty_all_tables(engine: Engine) -> None:
    tables = Base.metadata.sorted_tables
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            names = ", ".join(t.name for t in tables)
            connection.exec_driver_sql(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
        else:
            for table in reversed(tables):
                connection.execute(table.delete())
            if connection.exec_driver_sql(
                "SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'"
            ).first():
                connection.exec_driver_sql("DELETE FROM sqlite_sequence")  # RESTART IDENTITY


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)])
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """A migrated database, SQLite and then PostgreSQL, with empty tables."""
    engine: Engine = request.getfixturevalue(f"_migrated_{request.param}")
    yield engine
    empty_all_tables(engine)


@pytest.fixture
def db_url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


@pytest.fixture
def session_factory(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings for a test without a database: the test stores, paths under tmp_path."""
    return make_settings(tmp_path)


@pytest.fixture
def db_settings(tmp_path: Path, db_url: str) -> Settings:
    """The same settings, pointed at the parametrised database."""
    return make_settings(tmp_path, database_url=db_url)


@pytest.fixture
def config_file(tmp_path: Path, db_url: str) -> Path:
    """A settings file pointed at the parametrised database, for CLI tests."""
    return write_config(tmp_path / "auditor.toml", database_url=db_url)


@pytest.fixture
def run_cli(config_file: Path) -> Callable[..., Result]:
    """Run ``auditor --config <config_file> ARGS...`` through click's runner."""

    def run(*args: str | Path) -> Result:
        runner = CliRunner()
        return runner.invoke(main, ["--config", str(config_file), *map(str, args)])

    return run
