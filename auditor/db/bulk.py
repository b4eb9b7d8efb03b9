"""Bulk writes that work alike on SQLite and PostgreSQL: upserts by natural key, fast inserts.

These run inside the caller's transaction (the session's connection) and never commit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import islice
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

CHUNK_ROWS = 50_000


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """``frame``'s rows as dicts by column name, for :func:`insert_ignore` and :func:`upsert`."""
    rows: list[dict[str, Any]] = frame.to_dict("records", into=dict)
    return rows


def batched(items: Iterable[Any], size: int) -> Iterable[tuple[Any, ...]]:
    """``itertools.batched`` (Python 3.12) for 3.11."""
    iterator = iter(items)
    while chunk := tuple(islice(iterator, size)):
        yield chunk


def dialect_insert(session: Session, table: sa.Table) -> Any:
    """The dialect's own ``INSERT`` construct, which has ``on_conflict_do_...``."""
    dialect = session.get_bind().dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    return module.insert(table)


def insert_ignore(
    session: Session, table: sa.Table, rows: Sequence[Mapping[str, Any]], keys: Sequence[str]
) -> None:
    """Insert ``rows``, skipping those whose ``keys`` already exist."""
    if rows:
        stmt = dialect_insert(session, table).on_conflict_do_nothing(index_elements=list(keys))
        session.execute(stmt, list(rows))


def upsert(
    session: Session,
    table: sa.Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    keys: Sequence[str],
    update: Sequence[str],
    only_if_changed: Sequence[str] = (),
    returning: Sequence[str] = (),
) -> list[sa.Row[Any]]:
    """Insert ``rows`` or update ``update`` columns of existing ones found by ``keys``.

    With ``only_if_changed``, an existing row is updated only when one of those columns differs.
    With ``returning``, gives those columns of every row inserted or updated (not of skipped ones).
    """
    if not rows:
        return []
    stmt = dialect_insert(session, table)
    excluded = stmt.excluded
    where = sa.or_(*(table.c[c].is_distinct_from(excluded[c]) for c in only_if_changed))
    stmt = stmt.on_conflict_do_update(
        index_elements=list(keys),
        set_={c: excluded[c] for c in update},
        where=where if only_if_changed else None,
    )
    if returning:
        stmt = stmt.returning(*(table.c[c] for c in returning))
        return list(session.execute(stmt, list(rows)).all())
    session.execute(stmt, list(rows))
    return []


def columns_of(frame: pd.DataFrame, columns: Sequence[str]) -> list[list[Any]]:
    """The frame's columns as lists of plain Python values, ready for :func:`insert_rows`."""
    return [frame[c].tolist() for c in columns]


def timestamp_texts(values: pd.Series, dialect: str) -> list[str]:
    """UTC times as the text the database column takes from :func:`insert_rows`.

    SQLite gets the naive UTC text that SQLAlchemy itself stores; PostgreSQL an explicit offset.
    """
    utc = values.dt.tz_convert("UTC")
    pattern = "%Y-%m-%d %H:%M:%S.%f" + ("+00:00" if dialect == "postgresql" else "")
    texts: list[str] = utc.dt.strftime(pattern).tolist()
    return texts


def insert_rows(
    session: Session,
    table: sa.Table,
    columns: Sequence[str],
    rows: Iterable[tuple[Any, ...]],
    *,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Append plain rows (tuples of Python values, in ``columns`` order) as fast as the driver can.

    PostgreSQL: ``COPY ... FROM STDIN``. SQLite: ``executemany``. Values are not run through the
    columns' SQLAlchemy types, so pass only ints, floats, strings, bools and None.
    """
    connection = session.connection().connection.driver_connection
    assert connection is not None
    names = ", ".join(columns)
    written = 0
    if session.get_bind().dialect.name == "postgresql":
        with connection.cursor() as cursor:
            for chunk in batched(rows, CHUNK_ROWS):
                with cursor.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy:
                    for row in chunk:
                        copy.write_row(row)
                written += len(chunk)
                if progress:
                    progress(len(chunk))
        return written
    marks = ", ".join("?" for _ in columns)
    cursor = connection.cursor()
    try:
        for chunk in batched(rows, CHUNK_ROWS):
            cursor.executemany(f"INSERT INTO {table.name} ({names}) VALUES ({marks})", chunk)
            written += len(chunk)
            if progress:
                progress(len(chunk))
    finally:
        cursor.close()
    return written
