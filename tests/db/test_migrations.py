"""Migrations: they build exactly the models' schema on SQLite and PostgreSQL, and go back."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import alembic.config
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from auditor.db import make_engine
from auditor.db.migrations import (
    MIGRATIONS_DIR,
    SchemaOutOfDateError,
    current_revision,
    downgrade,
    head_revision,
    require_current_schema,
    upgrade,
)
from auditor.db.models import Base, Store
from tests.conftest import create_pg_database, drop_pg_database

TABLES = {
    "stores",
    "registers",
    "cashiers",
    "sales",
    "sale_lines",
    "snapshots",
    "audit_runs",
    "age_estimates",
    "flags",
    "reviews",
    "users",
    "audit_log",
    "sale_verdicts",
    "login_failures",
    "web_sessions",
    "notifications",
}


SALE_AND_RUN = [
    "INSERT INTO stores (id, name, timezone, created_at) VALUES ('S1', '', 'UTC', :t)",
    "INSERT INTO registers (store_id, register_id) VALUES ('S1', 'R1')",
    "INSERT INTO cashiers (store_id, cashier_id, name) VALUES ('S1', 'C1', '')",
    "INSERT INTO sales (id, store_id, receipt_id, register_id, cashier_id, sold_at,"
    " has_alcohol, line_count, total_cents, content_hash, source_file, ingested_at)"
    " VALUES (1, 'S1', 'X', 'R1', 'C1', :t, true, 1, 100, 'h', 'f', :t)",
    "INSERT INTO audit_runs (id, store_id, business_date, status, started_at, settings,"
    " model_version, sales_audited, flags_count) VALUES (1, 'S1', '2024-03-01', 'succeeded',"
    " :t, '{}', 'm1', 1, 1)",
    "INSERT INTO users (id, username, password_hash, role, active, created_at)"
    " VALUES (1, 'lp', 'x', 'loss_prevention', true, :t)",
]
T = sa.bindparam("t", datetime(2024, 3, 2, tzinfo=UTC), Store.created_at.type)


def _run_statements(connection: sa.Connection, statements: list[str]) -> None:
    for statement in statements:
        clause = sa.text(statement)
        connection.execute(clause.bindparams(T) if ":t" in statement else clause)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of its own, never migrated."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    url = create_pg_database("auditor_migrations")
    yield url
    drop_pg_database(url)


def _tables(engine: Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names()) - {"alembic_version"}


def test_upgrade_builds_the_models_schema_and_downgrade_removes_it(fresh_url: str) -> None:
    engine = make_engine(fresh_url)
    try:
        with pytest.raises(SchemaOutOfDateError, match="auditor db upgrade"):
            require_current_schema(engine)
        upgrade(fresh_url)
        assert _tables(engine) == TABLES
        assert current_revision(engine) == head_revision()
        require_current_schema(engine)
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
        downgrade(fresh_url, "base")
        assert _tables(engine) == set()
        upgrade(fresh_url)
        assert _tables(engine) == TABLES
    finally:
        engine.dispose()


def test_plain_alembic_command_uses_the_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'plain.db'}"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AUDITOR_DATABASE__URL", url)
    alembic.config.main(["-c", str(MIGRATIONS_DIR.parent / "alembic.ini"), "upgrade", "head"])
    engine = make_engine(url)
    assert current_revision(engine) == head_revision()
    engine.dispose()


def test_times_come_back_as_aware_utc(engine: Engine) -> None:
    berlin = timezone(timedelta(hours=1))
    with Session(engine) as session, session.begin():
        session.add(
            Store(
                id="S1",
                name="",
                timezone="Europe/Berlin",
                created_at=datetime(2024, 3, 1, 21, 15, tzinfo=berlin),
            )
        )
    with Session(engine) as session:
        created = session.get(Store, "S1").created_at
    assert created == datetime(2024, 3, 1, 20, 15, tzinfo=UTC)
    assert created.utcoffset() == timedelta(0)


def test_naive_times_are_refused(engine: Engine) -> None:
    with Session(engine) as session, pytest.raises(sa.exc.StatementError, match="naive"):
        session.add(Store(id="S1", name="", timezone="UTC", created_at=datetime(2024, 3, 1)))
        session.flush()


def test_deleting_a_run_takes_its_results_but_reviews_stay(engine: Engine) -> None:
    """A store-night's results are replaceable: flags go with the run, reviews stay with sales."""
    statements = [
        *SALE_AND_RUN,
        "INSERT INTO flags (id, run_id, sale_id, kind, threshold, created_at)"
        " VALUES (1, 1, 1, 'no_frame', 25, :t)",
        "INSERT INTO reviews (id, sale_id, flag_id, flag_kind, reviewer_id, decision, comment,"
        " reviewed_at) VALUES (1, 1, 1, 'no_frame', 1, 'id_checked', '', :t)",
    ]
    with engine.begin() as connection:
        _run_statements(connection, statements)
    with engine.begin() as connection:
        connection.exec_driver_sql("DELETE FROM audit_runs WHERE id = 1")
        assert connection.exec_driver_sql("SELECT count(*) FROM flags").scalar() == 0
        review = connection.exec_driver_sql("SELECT flag_id, decision FROM reviews").one()
    assert tuple(review) == (None, "id_checked")


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO users (username, password_hash, role, active, created_at)"
        " VALUES ('m', 'x', 'store_manager', true, '2024-03-01')",
        "INSERT INTO users (username, password_hash, role, active, created_at)"
        " VALUES ('m', 'x', 'cashier', true, '2024-03-01')",
    ],
)
def test_check_constraints(engine: Engine, statement: str) -> None:
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as connection:
        connection.exec_driver_sql(statement)


def test_the_flag_kinds_check_follows_the_vocabulary_up_and_down(fresh_url: str) -> None:
    """0005 adds ``pos_error`` to the flags' CHECK constraint (SQLite rebuilds the table), and
    going back removes such flags before restoring the old constraint."""
    setup = [
        *SALE_AND_RUN,
        "INSERT INTO flags (id, run_id, sale_id, kind, threshold, created_at)"
        " VALUES (1, 1, 1, 'no_frame', 25, :t)",
    ]
    now = T

    def flag(connection: sa.Connection, flag_id: int, kind: str) -> None:
        connection.execute(
            sa.text(
                "INSERT INTO flags (id, run_id, sale_id, kind, threshold, created_at)"
                f" VALUES ({flag_id}, 1, 1, '{kind}', 25, :t)"
            ).bindparams(now)
        )

    engine = make_engine(fresh_url)
    try:
        upgrade(fresh_url, "0004")
        with engine.begin() as connection:
            _run_statements(connection, setup)
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as connection:
            flag(connection, 2, "pos_error")
        upgrade(fresh_url)
        with engine.begin() as connection:
            flag(connection, 2, "pos_error")
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as connection:
            flag(connection, 3, "some_new_kind")
        with engine.connect() as connection:
            kinds = connection.exec_driver_sql("SELECT kind FROM flags ORDER BY id").scalars()
            assert list(kinds) == ["no_frame", "pos_error"]
        downgrade(fresh_url, "0004")
        with engine.connect() as connection:
            kinds = connection.exec_driver_sql("SELECT kind FROM flags ORDER BY id").scalars()
            assert list(kinds) == ["no_frame"]
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as connection:
            flag(connection, 2, "pos_error")
    finally:
        engine.dispose()


def test_a_flag_id_is_never_given_twice(engine: Engine) -> None:
    """A night audited again deletes its flags and writes new ones: the new ones never take
    the old ids (which links and the audit log still name), on either database."""
    from auditor.db.models import Flag

    def new_flag(session: Session, kind: str) -> int:
        flag = Flag(run_id=1, sale_id=1, kind=kind, threshold=25, created_at=T.value)
        session.add(flag)
        session.flush()
        return flag.id

    with engine.begin() as connection:
        _run_statements(connection, SALE_AND_RUN)
    with Session(engine) as session, session.begin():
        old = [new_flag(session, "no_frame"), new_flag(session, "no_face")]
    with Session(engine) as session, session.begin():
        session.execute(sa.delete(Flag))  # the highest ids go
        assert new_flag(session, "no_frame") > max(old)


def test_0010_rebuilds_sqlite_flags_keeping_rows_and_references(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ids.db'}"
    upgrade(url, "0009")
    engine = make_engine(url)

    def flags_sql() -> str:
        with engine.connect() as connection:
            return str(
                connection.exec_driver_sql(
                    "SELECT sql FROM sqlite_master WHERE name = 'flags'"
                ).scalar_one()
            )

    try:
        with engine.begin() as connection:
            _run_statements(
                connection,
                [
                    *SALE_AND_RUN,
                    "INSERT INTO flags (id, run_id, sale_id, kind, threshold, created_at)"
                    " VALUES (7, 1, 1, 'no_frame', 25, :t)",
                    "INSERT INTO reviews (id, sale_id, flag_id, flag_kind, reviewer_id, decision,"
                    " comment, reviewed_at) VALUES (1, 1, 7, 'no_frame', 1, 'adult', '', :t)",
                ],
            )
        assert "AUTOINCREMENT" not in flags_sql()
        upgrade(url)
        assert "AUTOINCREMENT" in flags_sql()
        with engine.connect() as connection:
            assert connection.exec_driver_sql("SELECT flag_id FROM reviews").scalar() == 7
            assert connection.exec_driver_sql("SELECT id, kind FROM flags").all() == [
                (7, "no_frame")
            ]
            indexes = {i["name"] for i in sa.inspect(connection).get_indexes("flags")}
            assert {"ix_flags_sale", "ix_flags_kind"} <= indexes
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as connection:
            _run_statements(  # the kinds' CHECK constraint came through the rebuild
                connection,
                [
                    "INSERT INTO flags (run_id, sale_id, kind, threshold, created_at)"
                    " VALUES (1, 1, 'no_such_kind', 25, :t)"
                ],
            )
        downgrade(url, "0009")
        assert "AUTOINCREMENT" not in flags_sql()
        with engine.connect() as connection:
            assert connection.exec_driver_sql("SELECT flag_id FROM reviews").scalar() == 7
    finally:
        engine.dispose()
