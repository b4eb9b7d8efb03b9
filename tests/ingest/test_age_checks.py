"""The till's age check in POS exports: ``age_check`` and ``birth_date``, checked like every
column, stored with the sale on SQLite and PostgreSQL; a file without them loads as before."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from auditor.db.models import Sale
from auditor.ingest.pos import SALES_COLUMNS, ingest_sales_file, parse_sales
from auditor.settings import Settings
from tests.factories import receipt, sale_row, write_sales_csv

COLUMNS = [*SALES_COLUMNS, "Age_Check", "BIRTH_DATE"]  # header names in any case


def rows_with(**checks: str) -> dict[str, str]:
    return {"Age_Check": checks.get("age_check", ""), "BIRTH_DATE": checks.get("birth_date", "")}


def parse(path: Path, settings: Settings):
    return parse_sales(
        path, alcohol_categories=settings.alcohol_categories, zone_for=settings.store_zone
    )


def test_checks_are_read_case_insensitively_and_blank_is_none(tmp_path, settings):
    rows = [
        *[
            {**r, **rows_with(age_check="ID_Scanned", birth_date="1990-05-17")}
            for r in receipt("1")
        ],
        {**sale_row(receipt_id="2"), **rows_with(age_check="Visual")},
        {**sale_row(receipt_id="3"), **rows_with()},
        {**sale_row(receipt_id="4"), **rows_with(age_check="id_checked", birth_date="2008-01-02")},
    ]
    parsed = parse(write_sales_csv(tmp_path / "sales.csv", rows, COLUMNS), settings)
    assert not parsed.rejects
    by_receipt = parsed.lines.drop_duplicates("receipt_id").set_index("receipt_id")
    assert by_receipt["age_check"].to_dict() == {
        "1": "id_scanned",
        "2": "visual",
        "3": "none",
        "4": "id_checked",
    }
    assert by_receipt["birth_date"].to_dict() == {
        "1": date(1990, 5, 17),
        "2": None,
        "3": None,
        "4": date(2008, 1, 2),
    }


@pytest.mark.parametrize(
    "checks, field, reason",
    [
        ({"age_check": "passport"}, "age_check", "not one of none, visual, id_checked, id_scanned"),
        ({"age_check": "yes"}, "age_check", "not one of none, visual"),
        ({"birth_date": "17.05.1990"}, "birth_date", "not a date (YYYY-MM-DD): '17.05.1990'"),
        ({"birth_date": "2001-02-30"}, "birth_date", "not a date (YYYY-MM-DD)"),
        ({"birth_date": "2024-03-02"}, "birth_date", "after the day of the sale"),
        ({"birth_date": "1850-01-01"}, "birth_date", "before 1900-01-01"),
    ],
)
def test_a_bad_check_is_rejected_naming_file_line_and_field(
    tmp_path, settings, checks, field, reason
):
    rows = [
        {**sale_row(receipt_id="1"), **rows_with()},
        {**sale_row(receipt_id="2"), **rows_with(**checks)},
    ]
    path = write_sales_csv(tmp_path / "sales.csv", rows, COLUMNS)
    parsed = parse(path, settings)
    assert parsed.lines["receipt_id"].tolist() == ["1"]
    [reject] = parsed.rejects
    assert (reject.line, reject.field) == (3, field)
    assert str(reject).startswith(f"{path}:3: {field}: {reason}")


def test_the_lines_of_a_receipt_must_agree_on_the_check(tmp_path, settings):
    first, second = receipt("1")
    rows = [
        {**first, **rows_with(age_check="id_checked", birth_date="1990-05-17")},
        {**second, **rows_with(age_check="id_checked", birth_date="1990-05-18")},
        {**sale_row(receipt_id="2"), **rows_with(age_check="none")},
        {**sale_row(receipt_id="2", sku="9"), **rows_with(age_check="visual")},
    ]
    path = write_sales_csv(tmp_path / "sales.csv", rows, COLUMNS)
    rejects = {(r.line, r.field): r.reason for r in parse(path, settings).rejects}
    assert rejects == {
        (3, "birth_date"): "differs from line 2, the receipt's first line",
        (5, "age_check"): "differs from line 4, the receipt's first line",
    }


def stored(factory: sessionmaker[Session]) -> dict[str, tuple[str | None, date | None, str]]:
    with factory() as session:
        rows = session.execute(
            sa.select(Sale.receipt_id, Sale.age_check, Sale.birth_date, Sale.content_hash)
        )
        return {r.receipt_id: (r.age_check, r.birth_date, r.content_hash) for r in rows}


def test_checks_are_stored_and_a_changed_check_rewrites_the_receipt(
    tmp_path, db_settings: Settings, session_factory: sessionmaker[Session]
):
    plain = write_sales_csv(tmp_path / "plain.csv", receipt("1") + receipt("2"))
    ingest_sales_file(plain, settings=db_settings, session_factory=session_factory)
    before = stored(session_factory)
    assert {k: v[:2] for k, v in before.items()} == {"1": (None, None), "2": (None, None)}

    checked = [
        *[
            {**r, **rows_with(age_check="id_scanned", birth_date="1990-05-17")}
            for r in receipt("1")
        ],
        *[{**r, **rows_with()} for r in receipt("2")],
    ]
    path = write_sales_csv(tmp_path / "checked.csv", checked, COLUMNS)
    summary = ingest_sales_file(path, settings=db_settings, session_factory=session_factory)
    assert summary.receipts_written == 2  # both now record a check (receipt 2: none)
    after = stored(session_factory)
    assert after["1"][:2] == ("id_scanned", date(1990, 5, 17))
    assert after["2"][:2] == ("none", None)
    assert after["1"][2] != before["1"][2]

    again = ingest_sales_file(path, settings=db_settings, session_factory=session_factory)
    assert again.receipts_written == 0 and stored(session_factory) == after
    # the file without the columns again: the receipts go back to recording no check
    ingest_sales_file(plain, settings=db_settings, session_factory=session_factory)
    assert stored(session_factory) == before
