"""Loading POS files into SQLite and PostgreSQL: idempotent, replacing, all or nothing."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from auditor.db.engine import DatabaseError
from auditor.db.models import Cashier, Register, Sale, SaleLine, Store
from auditor.ingest import pos
from auditor.ingest.pos import SalesIngestSummary, ingest_sales_file
from auditor.ingest.tables import UnreadableFileError
from auditor.settings import Settings
from tests.factories import receipt, sale_row, write_sales_csv


def ingest(path: Path, settings: Settings, factory: sessionmaker[Session]) -> SalesIngestSummary:
    return ingest_sales_file(path, settings=settings, session_factory=factory)


def snapshot(factory: sessionmaker[Session]) -> list[tuple[object, ...]]:
    """Every stored sale with its lines, in a stable order, to compare states."""
    with factory() as session:
        rows = session.execute(
            sa.select(
                Sale.id,
                Sale.store_id,
                Sale.receipt_id,
                Sale.sold_at,
                Sale.line_count,
                Sale.total_cents,
                Sale.has_alcohol,
                SaleLine.line_no,
                SaleLine.sku,
                SaleLine.amount_cents,
                SaleLine.is_alcohol,
            )
            .join(SaleLine)
            .order_by(Sale.store_id, Sale.receipt_id, SaleLine.line_no)
        )
        return [tuple(r) for r in rows]


def test_load_and_reload_is_idempotent(
    tmp_path: Path, db_settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    rows = [*receipt("1001"), *receipt("1002", lines=1), sale_row(receipt_id="9", quantity="x")]
    path = write_sales_csv(tmp_path / "sales.csv", rows)

    first = ingest(path, db_settings, session_factory)
    # Receipt 9's only line (a beer) is rejected: the receipt is kept, without lines, for the
    # audit to flag (pos_error).
    assert (first.lines_loaded, first.receipts, first.receipts_written, first.rejected) == (
        3,
        3,
        3,
        1,
    )
    assert first.rejects_path == tmp_path / "sales.csv.rejects.csv"
    state = snapshot(session_factory)
    assert state[0][1:] == (
        "S1",
        "1001",
        datetime(2024, 3, 1, 20, 15, tzinfo=UTC),
        2,
        843,
        True,
        1,
        "4001",
        594,
        True,
    )

    again = ingest(path, db_settings, session_factory)
    assert (again.receipts_written, again.receipts_unchanged) == (0, 3)
    assert snapshot(session_factory) == state


def test_changed_receipt_replaces_lines_and_keeps_its_id(
    tmp_path: Path, db_settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    ingest(
        write_sales_csv(tmp_path / "a.csv", [*receipt("1", lines=3), *receipt("2")]),
        db_settings,
        session_factory,
    )
    before = {r[2]: r[0] for r in snapshot(session_factory)}
    # An overlapping export: receipt 2 again, unchanged; receipt 1 with a line less; a new one.
    overlap = [*receipt("1", lines=2), *receipt("2"), *receipt("3", lines=1)]
    summary = ingest(write_sales_csv(tmp_path / "b.csv", overlap), db_settings, session_factory)
    assert (summary.receipts_written, summary.receipts_unchanged) == (2, 1)
    after = snapshot(session_factory)
    assert [(r[2], r[7]) for r in after] == [("1", 1), ("1", 2), ("2", 1), ("2", 2), ("3", 1)]
    assert {r[2]: r[0] for r in after if r[2] in before} == before
    with session_factory() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(SaleLine)) == 5
        assert session.get(Sale, before["1"]).line_count == 2


def test_stores_registers_and_cashiers_are_recorded(
    tmp_path: Path, db_settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    rows = [
        sale_row(receipt_id="1", cashier_name=""),
        sale_row(receipt_id="2", store_id="S9", register_id="R7", sold_at="2024-03-01T10:00:00"),
    ]
    summary = ingest(write_sales_csv(tmp_path / "a.csv", rows), db_settings, session_factory)
    assert summary.unknown_stores == ["S9"]
    ingest(
        write_sales_csv(tmp_path / "b.csv", [sale_row(receipt_id="3", cashier_name="Anna B.")]),
        db_settings,
        session_factory,
    )
    with session_factory() as session:
        stores = {s.id: (s.name, s.timezone) for s in session.scalars(sa.select(Store))}
        assert stores == {"S1": ("Berlin Mitte", "Europe/Berlin"), "S9": ("", "Europe/Berlin")}
        registers = session.execute(sa.select(Register.store_id, Register.register_id)).all()
        assert sorted(tuple(r) for r in registers) == [("S1", "R1"), ("S9", "R7")]
        assert session.get(Cashier, ("S1", "C1")).name == "Anna B."
        # Unknown store: local time read in the chain's default zone (Europe/Berlin, UTC+1).
        sale = session.scalars(sa.select(Sale).where(Sale.store_id == "S9")).one()
        assert sale.sold_at == datetime(2024, 3, 1, 9, tzinfo=UTC)


def test_unreadable_file_changes_nothing(
    tmp_path: Path, db_settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    ingest(write_sales_csv(tmp_path / "a.csv", receipt("1")), db_settings, session_factory)
    state = snapshot(session_factory)
    bad = tmp_path / "b.csv"
    bad.write_bytes(b"store_id,receipt_id\nS1,1\n")
    with pytest.raises(UnreadableFileError, match="missing column"):
        ingest(bad, db_settings, session_factory)
    assert snapshot(session_factory) == state
    assert not (tmp_path / "b.csv.rejects.csv").exists()


def test_failure_while_loading_rolls_back_the_whole_file(
    tmp_path: Path,
    db_settings: Settings,
    session_factory: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ingest(write_sales_csv(tmp_path / "a.csv", receipt("1")), db_settings, session_factory)
    state = snapshot(session_factory)

    def fail_after_lines(session: Session, **kwargs: object) -> int:
        session.execute(sa.delete(SaleLine))
        raise sa.exc.OperationalError("INSERT", {}, Exception("connection lost"))

    monkeypatch.setattr(pos, "_upsert_staged_sales", fail_after_lines)
    changed = [*receipt("1", lines=3), *receipt("2")]
    with pytest.raises(DatabaseError, match="connection lost"):
        ingest(write_sales_csv(tmp_path / "b.csv", changed), db_settings, session_factory)
    assert snapshot(session_factory) == state


def test_empty_file_loads_nothing(
    tmp_path: Path, db_settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    summary = ingest(write_sales_csv(tmp_path / "a.csv", []), db_settings, session_factory)
    assert (summary.rows_read, summary.receipts, summary.rejected) == (0, 0, 0)
    assert snapshot(session_factory) == []


def test_the_same_file_by_another_path_changes_nothing(
    tmp_path: Path,
    db_settings: Settings,
    session_factory: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A receipt with a rejected line keeps its problem, naming the file; given first as a
    # relative path and then as an absolute one, the file is the same and so is the receipt.
    rows = [*receipt("1"), sale_row(receipt_id="1", sku="4009", quantity="x")]
    (tmp_path / "exports").mkdir()
    path = write_sales_csv(tmp_path / "exports" / "sales.csv", rows)
    monkeypatch.chdir(tmp_path)
    first = ingest(Path("exports/sales.csv"), db_settings, session_factory)
    assert (first.receipts_written, first.rejected) == (1, 1)
    with session_factory() as session:
        [errors] = session.scalars(sa.select(Sale.pos_errors)).all()
    assert errors == [f"{path.resolve()}:4: quantity: not a number: 'x'"]
    monkeypatch.chdir(tmp_path / "exports")
    again = ingest(path.resolve(), db_settings, session_factory)
    assert (again.receipts_written, again.receipts_unchanged) == (0, 1)
    with session_factory() as session:
        assert session.scalars(sa.select(Sale.pos_errors)).all() == [errors]


def test_a_csv_and_a_parquet_of_one_name_keep_their_own_rejects(
    tmp_path: Path, db_settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    csv_path = write_sales_csv(tmp_path / "sales.csv", [sale_row(receipt_id="1", quantity="x")])
    frame = pd.DataFrame([sale_row(receipt_id="2", amount="lots")])
    parquet_path = tmp_path / "sales.parquet"
    frame.to_parquet(parquet_path)
    by_csv = ingest(csv_path, db_settings, session_factory)
    by_parquet = ingest(parquet_path, db_settings, session_factory)
    assert by_csv.rejects_path == tmp_path / "sales.csv.rejects.csv"
    assert by_parquet.rejects_path == tmp_path / "sales.parquet.rejects.csv"
    with by_csv.rejects_path.open(newline="") as f:
        assert [(r["receipt_id"], r["field"]) for r in csv.DictReader(f)] == [("1", "quantity")]
    with by_parquet.rejects_path.open(newline="") as f:
        assert [(r["receipt_id"], r["field"]) for r in csv.DictReader(f)] == [("2", "amount")]
