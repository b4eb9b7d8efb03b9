"""The store-night lock, with real connections, threads and processes on both databases."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from auditor.audit.lock import AuditInProgress, lock_key, store_night_lock
from auditor.db import make_engine

DAY = date(2024, 3, 1)

HOLDER = """
import sys, time
from datetime import date
from pathlib import Path
from auditor.audit.lock import store_night_lock
from auditor.db import make_engine
engine = make_engine(sys.argv[1])
with store_night_lock(engine, "S1", date(2024, 3, 1)):
    print("locked", flush=True)
    time.sleep(120)
"""


def refused(engine: Engine, store_id: str = "S1", day: date = DAY) -> bool:
    try:
        with store_night_lock(engine, store_id, day):
            return False
    except AuditInProgress:
        return True


def test_a_second_holder_is_refused_until_the_first_lets_go(engine: Engine) -> None:
    with store_night_lock(engine, "S1", DAY) as connection:
        assert connection.exec_driver_sql("SELECT 1").scalar_one() == 1
        message = "store S1, business date 2024-03-01"
        with pytest.raises(AuditInProgress, match=message), store_night_lock(engine, "S1", DAY):
            pass
        # other store-nights are free
        assert not refused(engine, "S2", DAY)
        assert not refused(engine, "S1", date(2024, 3, 2))
    assert not refused(engine)
    assert not refused(engine)  # released again after the second use


def test_refused_from_another_thread(engine: Engine) -> None:
    results: list[bool] = []
    with store_night_lock(engine, "S1", DAY):
        thread = threading.Thread(target=lambda: results.append(refused(engine)))
        thread.start()
        thread.join(timeout=30)
    assert results == [True]


def test_released_when_the_body_fails(engine: Engine) -> None:
    with pytest.raises(RuntimeError), store_night_lock(engine, "S1", DAY):
        raise RuntimeError("boom")
    assert not refused(engine)


def test_another_process_is_refused_and_a_killed_holder_frees_the_lock(db_url: str) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, db_url], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        engine = make_engine(db_url)
        with pytest.raises(AuditInProgress) as refusal, store_night_lock(engine, "S1", DAY):
            pass
        if engine.dialect.name == "sqlite":
            assert f"process {holder.pid}" in str(refusal.value)
        holder.kill()
        holder.wait(timeout=10)
        deadline = time.monotonic() + 10  # the server notices the closed connection soon
        while refused(engine) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not refused(engine)
        engine.dispose()
    finally:
        holder.kill()
        holder.wait(timeout=10)
        if holder.stdout is not None:
            holder.stdout.close()


def test_in_memory_sqlite_locks_within_the_process() -> None:
    engine = make_engine("sqlite://")
    with store_night_lock(engine, "S1", DAY):
        assert refused(engine)
    assert not refused(engine)


def test_lock_key_is_stable_and_fits_a_bigint() -> None:
    assert lock_key("S1", DAY) == lock_key("S1", DAY)
    assert lock_key("S1", DAY) != lock_key("S1", date(2024, 3, 2))
    assert lock_key("S1", DAY) != lock_key("S2", DAY)
    assert -(2**63) <= lock_key("S1", DAY) < 2**63


def test_sqlite_lock_file_names_the_holder_and_goes_with_the_lock(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'auditor.db'}")
    locks = tmp_path / "auditor.db.locks"
    with store_night_lock(engine, "S1", DAY):
        (lock_file,) = locks.iterdir()
        assert lock_file.read_text().startswith(f"process {os.getpid()} on ")
    assert list(locks.iterdir()) == []
    assert not refused(engine)
    engine.dispose()
