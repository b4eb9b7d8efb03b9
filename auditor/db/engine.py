"""The engine and sessions. One engine per process; a session per unit of work, at the edge."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from auditor.errors import AuditorError

logger = logging.getLogger(__name__)


class DatabaseError(AuditorError):
    """The database cannot be reached or refused an operation."""


class DatabaseMissing(DatabaseError):
    """The SQLite file of the settings does not exist, and the command only reads."""


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.close()


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url``; for SQLite, creates the file's folder and turns foreign keys on."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        kwargs.setdefault("connect_args", {"timeout": 30})
        engine = sa.create_engine(parsed, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return sa.create_engine(parsed, pool_pre_ping=True, **kwargs)


def sqlite_file(url: str | sa.URL) -> Path | None:
    """The file of a SQLite URL; ``None`` for an in-memory database or another backend."""
    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    return Path(database)


def require_existing_database(url: str | sa.URL) -> None:
    """Raise :class:`DatabaseMissing` when ``url`` is a SQLite file that does not exist.

    Connecting would create it, empty: a command that only reads checks first.
    """
    path = sqlite_file(url)
    if path is not None and not path.exists():
        raise DatabaseMissing(
            f"database file {path} does not exist: `auditor db upgrade` creates it"
        )


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def describe_url(url: str | sa.URL) -> str:
    """The URL with its password hidden, for messages."""
    return make_url(url).render_as_string(hide_password=True)


@contextmanager
def database_errors(url: str | sa.URL) -> Iterator[None]:
    """Turn a failed connection or a refused statement into a one-line :class:`DatabaseError`."""
    try:
        yield
    except sa.exc.OperationalError as e:
        reason = str(e.orig).strip().splitlines()[0] if e.orig else str(e)
        raise DatabaseError(f"database {describe_url(url)}: {reason}") from e
    except sa.exc.DBAPIError as e:
        reason = str(e.orig).strip().splitlines()[0] if e.orig else str(e)
        raise DatabaseError(f"database {describe_url(url)} refused: {reason}") from e
