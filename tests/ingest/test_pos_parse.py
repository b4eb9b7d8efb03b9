"""The POS parser: every bad row explained as file:line: field: reason, good rows kept."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from auditor.ingest.pos import SALES_COLUMNS, ParsedSales, build_batch, parse_sales
from auditor.ingest.rejects import write_rejects
from auditor.ingest.tables import UnreadableFileError, read_table
from auditor.settings import Settings
from tests.factories import receipt, sale_row, write_sales_csv


def parse(path: Path, settings: Settings) -> ParsedSales:
    return parse_sales(
        path, alcohol_categories=settings.alcohol_categories, zone_for=settings.store_zone
    )


@pytest.mark.parametrize(
    "overrides, field, reason",
    [
        ({"store_id": ""}, "store_id", "missing"),
        ({"receipt_id": "  "}, "receipt_id", "missing"),
        ({"sku": ""}, "sku", "missing"),
        ({"quantity": "six"}, "quantity", "not a number: 'six'"),
        ({"quantity": "-1"}, "quantity", "negative quantity"),
        ({"quantity": "nan"}, "quantity", "not a number"),
        ({"quantity": "1e12"}, "quantity", "too large"),
        ({"amount": "5,94"}, "amount", "not a number: '5,94'"),
        ({"amount": "inf"}, "amount", "not a number"),
        ({"amount": "5.945"}, "amount", "more than 2 decimal places"),
        ({"amount": ""}, "amount", "missing"),
        ({"sold_at": "yesterday"}, "sold_at", "not an ISO 8601 time"),
        ({"sold_at": "2024-03-01"}, "sold_at", "a date without a time of day"),
        ({"sold_at": "2024-02-30T10:00:00"}, "sold_at", "not an ISO 8601 time"),
        ({"sold_at": "2024-03-01T25:00:00"}, "sold_at", "not an ISO 8601 time"),
        ({"sold_at": "9999-12-31T23:59:59-05:00"}, "sold_at", "time out of range"),
        ({"category": ""}, "category", "missing (needed to tell alcohol"),
        ({"is_alcohol": "maybe"}, "is_alcohol", "not one of true, false, 1, 0"),
        ({"store_id": "S" * 65}, "store_id", "longer than 64 characters"),
        ({"product_name": "Pils\x00"}, "product_name", "contains a control character"),
        ({"sku": "40\t01"}, "sku", "contains a control character"),
        ({"product_name": "Pils\n0.5 l"}, "product_name", "contains a control character"),
    ],
)
def test_bad_row_is_rejected_with_field_and_reason(
    tmp_path: Path, settings: Settings, overrides: dict[str, str], field: str, reason: str
) -> None:
    columns = [*SALES_COLUMNS, "is_alcohol"]
    rows = [sale_row(receipt_id="1"), sale_row(**{"receipt_id": "2", **overrides})]
    path = write_sales_csv(tmp_path / "sales.csv", rows, columns)
    parsed = parse(path, settings)
    assert parsed.lines["receipt_id"].tolist() == ["1"]
    [reject] = parsed.rejects
    assert (reject.line, reject.field) == (3, field)
    assert reject.reason.startswith(reason)
    assert str(reject).startswith(f"{path}:3: {field}: {reason}")
    assert reject.row.keys() == set(columns)


def test_good_lines_are_typed_and_in_utc(tmp_path: Path, settings: Settings) -> None:
    rows = [
        *receipt("1001"),
        sale_row(receipt_id="2001", store_id="S2", sold_at="2024-03-01 16:15"),
        sale_row(receipt_id="3001", store_id="S9", sold_at="2024-03-01T21:15:00.250+00:00"),
    ]
    parsed = parse(write_sales_csv(tmp_path / "sales.csv", rows), settings)
    assert parsed.rejects == []
    lines = parsed.lines.set_index("receipt_id")
    assert lines.loc["1001", "sold_at"].tolist() == [pd.Timestamp("2024-03-01 20:15", tz=UTC)] * 2
    assert lines.loc["2001", "sold_at"] == pd.Timestamp("2024-03-01 21:15", tz=UTC)
    assert lines.loc["3001", "sold_at"] == pd.Timestamp("2024-03-01 21:15:00.250", tz=UTC)
    assert lines.loc["1001", "amount_cents"].tolist() == [594, 249]
    assert lines.loc["1001", "quantity"].tolist() == [6.0, 1.0]
    assert lines.loc["1001", "is_alcohol"].tolist() == [True, False]
    assert parsed.lines["line"].tolist() == [2, 3, 4, 5]


@pytest.mark.parametrize(
    "category, is_alcohol, expected",
    [
        ("beer", "", True),
        ("BEER ", "", True),
        ("Sparkling Wine", "", True),
        ("bakery", "", False),
        ("bakery", "true", True),
        ("bakery", "1", True),
        ("beer", "FALSE", False),
        ("beer", "0", False),
        ("", "true", True),
    ],
)
def test_alcohol_from_flag_else_category(
    tmp_path: Path, settings: Settings, category: str, is_alcohol: str, expected: bool
) -> None:
    row = sale_row(category=category, is_alcohol=is_alcohol)
    path = write_sales_csv(tmp_path / "sales.csv", [row], [*SALES_COLUMNS, "is_alcohol"])
    assert parse(path, settings).lines["is_alcohol"].tolist() == [expected]


@pytest.mark.parametrize(
    "local, expected_utc",
    [
        # Europe/Berlin, clocks back 03:00 -> 02:00 on 2024-10-27: the first 02:30 (CEST).
        ("2024-10-27T02:30:00", datetime(2024, 10, 27, 0, 30, tzinfo=UTC)),
        # Clocks forward 02:00 -> 03:00 on 2024-03-31: 02:30 read with the old offset (CET).
        ("2024-03-31T02:30:00", datetime(2024, 3, 31, 1, 30, tzinfo=UTC)),
        ("2024-03-31T03:30:00", datetime(2024, 3, 31, 1, 30, tzinfo=UTC)),
        ("2024-03-31T01:59:59", datetime(2024, 3, 31, 0, 59, 59, tzinfo=UTC)),
        ("20240331T023000", datetime(2024, 3, 31, 1, 30, tzinfo=UTC)),
        ("2024-03-31T02:30:00+02:00", datetime(2024, 3, 31, 0, 30, tzinfo=UTC)),
        ("2024-03-31T02:30:00Z", datetime(2024, 3, 31, 2, 30, tzinfo=UTC)),
    ],
)
def test_local_times_at_clock_changes_are_deterministic(
    tmp_path: Path, settings: Settings, local: str, expected_utc: datetime
) -> None:
    path = write_sales_csv(tmp_path / "sales.csv", [sale_row(sold_at=local)])
    [sold_at] = parse(path, settings).lines["sold_at"].tolist()
    assert sold_at == expected_utc


def test_line_numbers_are_physical_lines(tmp_path: Path, settings: Settings) -> None:
    """A quoted field spanning lines and blank lines keep the numbering of the file."""
    path = tmp_path / "sales.csv"
    header = ",".join(SALES_COLUMNS)
    path.write_text(
        f"{header}\r\n"
        'S1,R1,C1,"Anna\r\nExample",1,2024-03-01T21:15:00,1,Pils,beer,1,1.00\r\n'
        "\r\n"
        "S1,R1,C1,Anna,2,2024-03-01T21:15:00,1,Pils,beer,x,1.00\r\n"
        "S1,R1,C1,Anna,3,2024-03-01T21:15:00,1,Pils,beer,1,1.00,extra\r\n"
        "S1,R1,C1,Anna,4,2024-03-01T21:15:00,1,Pils,beer,1,1.00\r\n",
        newline="",
    )
    parsed = parse(path, settings)
    assert [(r.line, r.field) for r in parsed.rejects] == [
        (2, "cashier_name"),
        (5, "quantity"),
        (6, "row"),
    ]
    assert parsed.lines["line"].tolist() == [7]
    assert parsed.rows_read == 4


def test_receipt_lines_must_agree(tmp_path: Path, settings: Settings) -> None:
    rows = [
        sale_row(receipt_id="1"),
        sale_row(receipt_id="1", register_id="R2"),
        sale_row(receipt_id="1", sold_at="2024-03-01T21:16:00"),
        sale_row(receipt_id="1", cashier_id="C2"),
        sale_row(receipt_id="1", store_id="S2"),  # another store's receipt 1: fine
    ]
    parsed = parse(write_sales_csv(tmp_path / "sales.csv", rows), settings)
    assert [(r.line, r.field, r.reason) for r in parsed.rejects] == [
        (3, "register_id", "differs from line 2, the receipt's first line"),
        (4, "sold_at", "differs from line 2, the receipt's first line"),
        (5, "cashier_id", "differs from line 2, the receipt's first line"),
    ]
    assert parsed.lines["line"].tolist() == [2, 6]


def test_undecodable_bytes_reject_only_their_row(tmp_path: Path, settings: Settings) -> None:
    path = write_sales_csv(tmp_path / "sales.csv", [sale_row(receipt_id="1")])
    with path.open("ab") as f:
        f.write("S1,R1,C1,J\xe9r\xf4me,2,2024-03-01T21:15:00,1,Pils,beer,1,1\n".encode("latin-1"))
    parsed = parse(path, settings)
    [reject] = parsed.rejects
    assert (reject.line, reject.field) == (3, "cashier_name")
    assert "not UTF-8" in reject.reason
    rejects_file = write_rejects(tmp_path / "r.csv", parsed.header, parsed.rejects)
    assert "J\\xe9r\\xf4me" in rejects_file.read_text(encoding="utf-8")


def test_byte_order_mark_and_header_case_are_accepted(tmp_path: Path, settings: Settings) -> None:
    header = ",".join(c.upper() for c in SALES_COLUMNS)
    line = ",".join(sale_row().values())
    path = tmp_path / "sales.csv"
    path.write_bytes(b"\xef\xbb\xbf" + f" {header}\n{line}\n".replace(",", " , ").encode())
    parsed = parse(path, settings)
    assert parsed.rejects == []
    assert parsed.lines["store_id"].tolist() == ["S1"]


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "empty file"),
        (b"store_id,register_id\nS1,R1\n", r"missing column\(s\) cashier_id"),
        (",".join([*SALES_COLUMNS, "sku"]).encode() + b"\n", "column 'sku' appears twice"),
        (",".join(SALES_COLUMNS).encode("utf-16"), "UTF-16"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01", "header is not UTF-8"),
        (",".join(SALES_COLUMNS).encode() + b'\nS1,"R1\n', "not valid CSV"),
        (",".join(SALES_COLUMNS).encode() + b'\nS1,"R1"x,\n', "not valid CSV"),
    ],
)
def test_unreadable_file_raises_naming_the_file(
    tmp_path: Path, settings: Settings, content: bytes, message: str
) -> None:
    path = tmp_path / "sales.csv"
    path.write_bytes(content)
    with pytest.raises(UnreadableFileError, match=message) as error:
        parse(path, settings)
    assert str(error.value).startswith(str(path))


def test_missing_file_and_folder(tmp_path: Path, settings: Settings) -> None:
    with pytest.raises(UnreadableFileError, match="file not found"):
        parse(tmp_path / "nope.csv", settings)
    with pytest.raises(UnreadableFileError, match="is a folder"):
        parse(tmp_path, settings)


def test_parquet_is_read_like_csv(tmp_path: Path, settings: Settings) -> None:
    frame = pd.DataFrame([sale_row(receipt_id="1"), sale_row(receipt_id="2", quantity="-2")])
    frame["quantity"] = frame["quantity"].astype(float)
    frame["amount"] = frame["amount"].astype(float)
    frame["sold_at"] = pd.to_datetime(frame["sold_at"])  # naive: store-local
    frame["is_alcohol"] = [True, None]
    path = tmp_path / "sales.parquet"
    frame.to_parquet(path)
    parsed = parse(path, settings)
    assert [(r.line, r.field) for r in parsed.rejects] == [(3, "quantity")]
    assert parsed.lines["sold_at"].tolist() == [pd.Timestamp("2024-03-01 20:15", tz=UTC)]
    assert parsed.lines["amount_cents"].tolist() == [594]


def test_not_parquet_is_unreadable(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "sales.parquet"
    path.write_text(",".join(SALES_COLUMNS))
    with pytest.raises(UnreadableFileError, match="not a readable Parquet file"):
        parse(path, settings)


def test_fast_and_exact_csv_readers_agree(tmp_path: Path) -> None:
    rows = [sale_row(receipt_id=str(n), cashier_name=f" name {n} ") for n in range(5)]
    plain = write_sales_csv(tmp_path / "plain.csv", rows)
    quoted = tmp_path / "quoted.csv"
    with quoted.open("w", newline="") as f:
        writer = csv.writer(f, quoting=csv.QUOTE_ALL)
        writer.writerow(SALES_COLUMNS)
        writer.writerows([list(r.values()) for r in rows])
    fast, exact = read_table(plain, SALES_COLUMNS), read_table(quoted, SALES_COLUMNS)
    pd.testing.assert_frame_equal(fast.frame, exact.frame)


def test_build_batch_numbers_lines_and_hashes_content(tmp_path: Path, settings: Settings) -> None:
    rows = [sale_row(receipt_id="2"), *receipt("1", lines=3), sale_row(receipt_id="2", sku="7")]
    batch = build_batch(parse(write_sales_csv(tmp_path / "a.csv", rows), settings).lines)
    receipts = batch.receipts.set_index("receipt_id")
    assert receipts.loc["1", "line_count"] == 3
    assert receipts.loc["2", "line_count"] == 2
    assert receipts.loc["1", "total_cents"] == 594 + 2 * 249
    assert bool(receipts.loc["1", "has_alcohol"])
    two = batch.lines[batch.lines["receipt_id"] == "2"]
    assert two[["line", "line_no", "sku"]].values.tolist() == [[2, 1, "4001"], [6, 2, "7"]]

    changed = [*rows[:-1], sale_row(receipt_id="2", sku="8")]
    again = build_batch(parse(write_sales_csv(tmp_path / "b.csv", changed), settings).lines)
    hashes = receipts["content_hash"]
    new_hashes = again.receipts.set_index("receipt_id")["content_hash"]
    assert new_hashes["1"] == hashes["1"]
    assert new_hashes["2"] != hashes["2"]


def test_rejects_file_is_replaced_or_removed(tmp_path: Path, settings: Settings) -> None:
    path = write_sales_csv(tmp_path / "sales.csv", [sale_row(quantity="x")])
    parsed = parse(path, settings)
    target = tmp_path / "sales.csv.rejects.csv"
    write_rejects(target, parsed.header, parsed.rejects)
    with target.open(newline="") as f:
        [row] = list(csv.DictReader(f))
    assert row["line"] == "2" and row["field"] == "quantity" and row["quantity"] == "x"
    assert write_rejects(target, parsed.header, []) is None
    assert not target.exists()
