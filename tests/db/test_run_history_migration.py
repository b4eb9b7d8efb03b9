"""Revision 0002: audit runs keep every attempt, one succeeded run per store-night, verdicts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from auditor.db import make_engine
from auditor.db.migrations import downgrade, upgrade
from tests.conftest import database_at

ROWS = [
    "INSERT INTO stores (id, name, timezone, created_at) VALUES ('S1', '', 'UTC', '2024-03-02')",
    "INSERT INTO registers (store_id, register_id) VALUES ('S1', 'R1')",
    "INSERT INTO cashiers (store_id, cashier_id, name) VALUES ('S1', 'C1', '')",
    "INSERT INTO sales (id, store_id, receipt_id, register_id, cashier_id, sold_at, has_alcohol,"
    " line_count, total_cents, content_hash, source_file, ingested_at) VALUES (1, 'S1', 'X', 'R1',"
    " 'C1', '2024-03-01 12:00', true, 1, 100, 'h', 'f', '2024-03-02')",
    # no explicit id, so that PostgreSQL's sequence moves on: the first run gets id 1
    "INSERT INTO audit_runs (store_id, business_date, status, started_at, settings,"
    " model_version, sales_audited, flags_count) VALUES ('S1', '2024-03-01', 'succeeded',"
    " '2024-03-02', '{}', 'm1', 1, 1)",
    "INSERT INTO flags (id, run_id, sale_id, kind, threshold, created_at)"
    " VALUES (1, 1, 1, 'no_frame', 25, '2024-03-02')",
]
RUN = (
    "INSERT INTO audit_runs (store_id, business_date, status, started_at, settings,"
    " model_version, sales_audited, flags_count) VALUES ('S1', '2024-03-01', '{status}',"
    " '2024-03-03', '{{}}', 'm2', 0, 0)"
)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)])
def url_at_0001(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database at revision 0001 holding a store-night with a flagged sale."""
    yield from database_at(request.param, tmp_path, "0001", ROWS, "auditor_0002")


def count(connection: sa.Connection, table: str) -> int:
    return connection.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar_one()


def test_upgrade_keeps_results_and_allows_run_history(url_at_0001: str) -> None:
    upgrade(url_at_0001, "0002")
    engine = make_engine(url_at_0001)
    try:
        with engine.begin() as connection:
            # rebuilding audit_runs on SQLite did not cascade to its flags
            assert count(connection, "flags") == 1
            assert count(connection, "audit_runs") == 1
            for status in ("failed", "running", "replaced"):
                connection.exec_driver_sql(RUN.format(status=status))
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as connection:
            connection.exec_driver_sql(RUN.format(status="succeeded"))  # a second current result
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as connection:
            connection.exec_driver_sql(RUN.format(status="lost"))
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as connection:
            connection.exec_driver_sql(  # foreign keys still hold for the app's connections
                "INSERT INTO sale_verdicts (run_id, sale_id, frames_matched, frames_read,"
                " faces_found, flag_kinds) VALUES (1, 99, 0, 0, 0, '')"
            )
    finally:
        engine.dispose()

    downgrade(url_at_0001, "0001")
    engine = make_engine(url_at_0001)
    try:
        with engine.begin() as connection:
            assert count(connection, "audit_runs") == 1  # the succeeded run, with its flag
            assert count(connection, "flags") == 1
    finally:
        engine.dispose()
