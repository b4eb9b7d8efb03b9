"""Random and hostile input: always a clean load or a clear error, never a traceback or a
partial file, and every row either loaded or explained."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pandas as pd
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from auditor.db.models import Sale, SaleLine
from auditor.ingest.pos import SALES_COLUMNS, ParsedSales, ingest_sales_file, parse_sales
from auditor.ingest.snapshots import parse_layout_path, read_manifest
from auditor.ingest.tables import UnreadableFileError
from auditor.settings import Settings
from tests.conftest import empty_all_tables
from tests.factories import make_settings, sale_row

FAST = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
HEADER = ",".join(SALES_COLUMNS).encode()

hostile_text = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"]), max_size=12
) | st.sampled_from(["", " ", '"', "\n", "\r", ",", "\x00", "NaN", "-0", "1e400", "ä€😀", "\ufeff"])
valid_values = {
    "store_id": st.sampled_from(["S1", "S2", "S9"]),
    "receipt_id": st.sampled_from(["1", "2", "3"]),
    "sold_at": st.sampled_from(
        ["2024-03-01T21:15:00", "2024-03-31T02:30:00", "2024-10-27 02:30", "2024-03-01T10:00Z"]
    ),
    "quantity": st.sampled_from(["1", "0.5", "12", "0"]),
    "amount": st.sampled_from(["1.99", "-0.50", "10", "0.1"]),
    "category": st.sampled_from(["beer", "Wine", "bakery"]),
}


@st.composite
def sale_rows(draw: st.DrawFn) -> dict[str, str]:
    """A POS row whose every field is valid, or now and then something hostile."""
    row = sale_row()
    for column in SALES_COLUMNS:
        if draw(st.integers(0, 9)) == 0:
            row[column] = draw(hostile_text)
        elif column in valid_values:
            row[column] = draw(valid_values[column])
    return row


def csv_bytes(rows: list[dict[str, str]]) -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(SALES_COLUMNS)
    writer.writerows([[row[c] for c in SALES_COLUMNS] for row in rows])
    return buffer.getvalue().encode("utf-8")


def parse(path: Path, settings: Settings) -> ParsedSales:
    return parse_sales(
        path, alcohol_categories=settings.alcohol_categories, zone_for=settings.store_zone
    )


def assert_clean_lines(lines: pd.DataFrame) -> None:
    # age_check and birth_date are None where the file records no age check
    assert not lines.drop(columns=["age_check", "birth_date"]).isna().any().any()
    assert (lines["quantity"] >= 0).all()
    earliest, latest = pd.Timestamp("1970", tz="UTC"), pd.Timestamp("2100", tz="UTC")
    assert lines["sold_at"].between(earliest, latest).all()
    for column in ("store_id", "receipt_id", "register_id", "cashier_id", "sku"):
        assert (lines[column] != "").all()


@FAST
@given(data=st.binary(max_size=600), with_header=st.booleans())
def test_random_bytes(tmp_path: Path, settings: Settings, data: bytes, with_header: bool) -> None:
    path = tmp_path / "sales.csv"
    path.write_bytes(HEADER + b"\n" + data if with_header else data)
    try:
        parsed = parse(path, settings)
    except UnreadableFileError as e:
        assert str(e).startswith(str(path)) and "\n" not in str(e)
        return
    assert len(parsed.lines) + len(parsed.rejects) == parsed.rows_read
    assert_clean_lines(parsed.lines)


@FAST
@given(rows=st.lists(sale_rows(), max_size=12))
def test_random_rows_are_loaded_or_explained(
    tmp_path: Path, settings: Settings, rows: list[dict[str, str]]
) -> None:
    path = tmp_path / "sales.csv"
    path.write_bytes(csv_bytes(rows))
    parsed = parse(path, settings)
    assert parsed.rows_read == len(rows)
    assert len(parsed.lines) + len(parsed.rejects) == len(rows)
    assert_clean_lines(parsed.lines)
    for reject in parsed.rejects:
        assert reject.field in (*SALES_COLUMNS, "row")
        assert reject.reason and "\n" not in str(reject)
    lines = sorted(parsed.lines["line"].tolist() + [r.line for r in parsed.rejects])
    assert len(set(lines)) == len(rows)


@settings(FAST, max_examples=25)
@given(rows=st.lists(sale_rows(), max_size=10), garbage=st.booleans())
def test_ingest_is_all_or_nothing_and_repeatable(
    tmp_path: Path, engine: Engine, rows: list[dict[str, str]], garbage: bool
) -> None:
    """Every example starts from an empty database and ends in a state a rerun keeps."""
    empty_all_tables(engine)
    url = engine.url.render_as_string(hide_password=False)
    db_settings = make_settings(tmp_path, database_url=url)
    factory = sessionmaker(engine)
    path = tmp_path / "sales.csv"
    content = csv_bytes(rows)
    path.write_bytes(b"\xff\xfe" + content if garbage else content)
    rejects = tmp_path / "sales.csv.rejects.csv"
    rejects.unlink(missing_ok=True)
    try:
        summary = ingest_sales_file(path, settings=db_settings, session_factory=factory)
    except UnreadableFileError:
        assert garbage
        assert stored(factory) == ([], 0)
        assert not rejects.exists()
        return
    sales, line_count = stored(factory)
    assert line_count == summary.lines_loaded
    assert len(sales) == summary.receipts == summary.receipts_written
    if summary.rejected:
        with rejects.open(newline="", encoding="utf-8") as f:
            assert len(list(csv.DictReader(f))) == summary.rejected
    else:
        assert not rejects.exists()
    again = ingest_sales_file(path, settings=db_settings, session_factory=factory)
    assert again.receipts_written == 0
    assert stored(factory) == (sales, line_count)


def stored(factory: sessionmaker[Session]) -> tuple[list[tuple[object, ...]], int]:
    with factory() as session:
        sales = session.execute(
            sa.select(Sale.store_id, Sale.receipt_id, Sale.content_hash).order_by(
                Sale.store_id, Sale.receipt_id
            )
        ).all()
        lines = session.scalar(sa.select(sa.func.count()).select_from(SaleLine)) or 0
    return [tuple(s) for s in sales], lines


@FAST
@given(path=st.text(max_size=60))
def test_layout_paths_parse_or_say_why(path: str) -> None:
    try:
        store_id, register_id, local = parse_layout_path(path)
    except ValueError as e:
        assert e.field in ("path", "store_id", "register_id", "date", "time")
        return
    assert store_id and register_id and local.year >= 1


@FAST
@given(data=st.binary(max_size=400), with_header=st.booleans())
def test_random_manifest(
    tmp_path: Path, settings: Settings, data: bytes, with_header: bool
) -> None:
    manifest = settings.snapshot_root / "manifest.csv"
    header = b"store_id,register_id,captured_at,path\n"
    manifest.write_bytes(header + data if with_header else data)
    try:
        parsed = read_manifest(
            manifest,
            root=settings.snapshot_root.resolve(),
            zone_for=settings.store_zone,
            progress=None,
        )
    except UnreadableFileError as e:
        assert str(e).startswith(str(manifest))
        return
    assert parsed.frames.empty  # no such image files exist
