"""One audit of a store-night at a time, across processes and machines.

:func:`store_night_lock` holds a lock for a (store, business date) while the audit runs and
gives the audit the database connection to work through. A second audit of the same
store-night is refused at once with :class:`AuditInProgress`; it never waits.

- PostgreSQL: a session-level advisory lock (``pg_try_advisory_lock``) on a 64-bit hash of
  store and date, held by the connection the audit writes its results through. The server
  drops it when that connection ends, so a process that dies leaves no lock behind.
- SQLite (one machine by nature): an exclusive ``flock`` (:class:`filelock.FileLock`) on a lock
  file in a folder beside the database file (``<database>.locks/``), which names its holder. The
  kernel drops it when the process dies. An in-memory database has a lock within the process
  only.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import sqlalchemy as sa
from filelock import FileLock, Timeout
from sqlalchemy.engine import Connection, Engine

from auditor.errors import AuditorError

logger = logging.getLogger(__name__)

_memory_locks: dict[tuple[str, str, date], threading.Lock] = {}
_memory_guard = threading.Lock()


class AuditInProgress(AuditorError):
    """Another audit of the same store-night holds its lock."""

    def __init__(self, store_id: str, day: date, holder: str = "") -> None:
        who = f" ({holder})" if holder else ""
        self.reason = (
            f"another audit of this store-night is running{who}; not started, try again when "
            "it has finished"
        )
        super().__init__(f"store {store_id}, business date {day}: {self.reason}")
        self.store_id = store_id
        self.day = day


def lock_key(store_id: str, day: date) -> int:
    """A signed 64-bit number for (store, date), the same in every process."""
    digest = hashlib.sha256(f"auditor-audit\0{store_id}\0{day.isoformat()}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextmanager
def store_night_lock(engine: Engine, store_id: str, day: date) -> Iterator[Connection]:
    """Hold the store-night's lock; yields a connection (outside any transaction) to work with.

    Raises :class:`AuditInProgress` when another audit holds it.
    """
    if engine.dialect.name == "postgresql":
        with _advisory_lock(engine, store_id, day) as connection:
            yield connection
        return
    database = engine.url.database
    if database in (None, "", ":memory:"):
        with _memory_lock(str(engine.url), store_id, day), engine.connect() as connection:
            yield connection
        return
    path = _lock_path(Path(database), store_id, day)
    with _file_lock(path, store_id, day), engine.connect() as connection:
        yield connection


@contextmanager
def _advisory_lock(engine: Engine, store_id: str, day: date) -> Iterator[Connection]:
    key = lock_key(store_id, day)
    connection = engine.connect()
    try:
        taken = connection.execute(sa.select(sa.func.pg_try_advisory_lock(key))).scalar_one()
        connection.commit()
    except BaseException:
        connection.close()
        raise
    if not taken:
        connection.close()
        raise AuditInProgress(store_id, day, "PostgreSQL advisory lock held")
    logger.debug("advisory lock %s taken for %s %s", key, store_id, day)
    try:
        yield connection
    finally:
        try:
            connection.rollback()
            connection.execute(sa.select(sa.func.pg_advisory_unlock(key)))
            connection.commit()
        except Exception:
            # A connection that cannot unlock must not go back to the pool holding the lock.
            logger.warning("cannot release the advisory lock; closing the connection")
            connection.invalidate()
        finally:
            connection.close()


def _lock_path(database: Path, store_id: str, day: date) -> Path:
    name = hashlib.sha256(f"{store_id}\0{day.isoformat()}".encode()).hexdigest()[:20]
    return database.parent / f"{database.name}.locks" / f"audit-{day.isoformat()}-{name}.lock"


@contextmanager
def _file_lock(path: Path, store_id: str, day: date) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(path, blocking=False, on_acquired=_write_holder)
    try:
        held = lock.acquire()
    except Timeout:
        raise AuditInProgress(store_id, day, _read_holder(path)) from None
    with held:
        try:
            yield
        finally:
            # Removed while still held: a process that opened the file meanwhile finds it gone
            # when it gets the lock and is refused; a later one locks a new file at the path.
            path.unlink(missing_ok=True)


def _write_holder(fd: int) -> None:
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"process {os.getpid()} on {os.uname().nodename}".encode(), 0)


def _read_holder(path: Path) -> str:
    try:
        with path.open("rb") as f:
            return f.read(200).decode(errors="replace").strip()
    except FileNotFoundError:
        return ""


@contextmanager
def _memory_lock(url: str, store_id: str, day: date) -> Iterator[None]:
    with _memory_guard:
        lock = _memory_locks.setdefault((url, store_id, day), threading.Lock())
    if not lock.acquire(blocking=False):
        raise AuditInProgress(store_id, day, "in this process")
    try:
        yield
    finally:
        lock.release()
