"""POS sales: parse line-level exports (CSV or Parquet), check every row, upsert by receipt.

The parse is pure: a file goes in, a frame of good lines and a list of rejects come out. A
receipt is all the lines of one ``(store_id, receipt_id)`` in a file, numbered in file order;
when it comes again with other content it replaces the stored one (same sale id, new lines),
and when it comes again unchanged nothing is written.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session, sessionmaker

from auditor.db.bulk import delete_where_in, insert_rows, upsert
from auditor.db.engine import database_errors
from auditor.db.models import ID_LENGTH, NAME_LENGTH, Sale, SaleLine
from auditor.ingest.common import (
    Problems,
    Progress,
    Reject,
    parse_local_time,
    read_table,
    rejects_path_for,
    save_places,
    write_rejects,
)
from auditor.settings import Settings

logger = logging.getLogger(__name__)

SALES_COLUMNS = (
    "store_id",
    "register_id",
    "cashier_id",
    "cashier_name",
    "receipt_id",
    "sold_at",
    "sku",
    "product_name",
    "category",
    "quantity",
    "amount",
)
OPTIONAL_COLUMNS = ("is_alcohol",)
REQUIRED_VALUES = {
    "store_id",
    "register_id",
    "cashier_id",
    "receipt_id",
    "sold_at",
    "sku",
    "quantity",
    "amount",
}
LENGTHS = {
    **dict.fromkeys(("store_id", "register_id", "cashier_id", "receipt_id", "sku"), ID_LENGTH),
    **dict.fromkeys(("cashier_name", "product_name", "category"), NAME_LENGTH),
    **dict.fromkeys(("sold_at", "quantity", "amount", "is_alcohol"), 40),
}
MAX_QUANTITY = 1e9
MAX_AMOUNT = 1e12
BOOLEANS = {"true": True, "1": True, "false": False, "0": False}
RECEIPT_FIELDS = ("register_id", "cashier_id", "sold_at")


@dataclass
class ParsedSales:
    """Good lines of one file (times in UTC, amounts in cents) and its rejects."""

    source: str
    header: list[str]
    lines: pd.DataFrame
    rejects: list[Reject]
    rows_read: int


@dataclass
class SalesBatch:
    """One file's receipts, their numbered lines and the cashiers they name."""

    receipts: pd.DataFrame
    lines: pd.DataFrame
    cashiers: pd.DataFrame


@dataclass
class SalesIngestSummary:
    source: str
    rows_read: int
    lines_loaded: int
    rejected: int
    receipts: int
    receipts_written: int
    rejects_path: Path | None
    rejects: list[Reject] = field(default_factory=list, repr=False)
    unknown_stores: list[str] = field(default_factory=list)

    @property
    def receipts_unchanged(self) -> int:
        return self.receipts - self.receipts_written

    def __str__(self) -> str:
        text = (
            f"{self.source}: {self.rows_read} rows, {self.lines_loaded} lines in "
            f"{self.receipts} receipts ({self.receipts_written} new or changed, "
            f"{self.receipts_unchanged} unchanged), {self.rejected} rejected"
        )
        if self.rejects_path is not None:
            text += f" (see {self.rejects_path})"
        return text


# -- parse (pure) --------------------------------------------------------------------------------


def parse_sales(
    path: Path, *, alcohol_categories: frozenset[str], zone_for: Callable[[str], ZoneInfo]
) -> ParsedSales:
    """Read and check a POS export; raise :class:`UnreadableFileError` if it cannot be read."""
    raw = read_table(path, SALES_COLUMNS, OPTIONAL_COLUMNS)
    frame = raw.frame
    problems = Problems(frame)
    problems.check_text(raw.columns, REQUIRED_VALUES, LENGTHS)

    if "is_alcohol" in frame:
        flag_text = frame["is_alcohol"].str.casefold()
        problems.add(
            (flag_text != "") & ~flag_text.isin(list(BOOLEANS)),
            "is_alcohol",
            "not one of true, false, 1, 0",
        )
        said = flag_text.map(BOOLEANS)
    else:
        said = pd.Series(np.nan, index=frame.index, dtype="object")
    problems.add(
        said.isna() & (frame["category"] == ""),
        "category",
        "missing (needed to tell alcohol when is_alcohol is not given)",
    )

    quantity = _numbers(frame, "quantity", problems)
    problems.add(quantity < 0, "quantity", "negative quantity")
    problems.add(quantity.abs() > MAX_QUANTITY, "quantity", "too large")
    amount = _numbers(frame, "amount", problems)
    cents = (amount * 100).round()
    problems.add(amount.abs() > MAX_AMOUNT, "amount", "too large")
    problems.add((amount * 100 - cents).abs() > 1e-6, "amount", "more than 2 decimal places")

    sold_at = _times(frame, problems, zone_for)
    _check_receipts_agree(frame.assign(sold_at=sold_at), problems)

    category = frame["category"]
    is_alcohol = said.where(said.notna(), category.str.casefold().isin(list(alcohol_categories)))
    good = problems.ok
    lines = pd.DataFrame(
        {
            "line": frame["line"],
            **{c: frame[c] for c in ("store_id", "register_id", "cashier_id", "cashier_name")},
            "receipt_id": frame["receipt_id"],
            "sold_at": sold_at,
            **{c: frame[c] for c in ("sku", "product_name", "category")},
            "quantity": quantity,
            "amount_cents": cents.fillna(0).astype("int64"),
            "is_alcohol": is_alcohol.fillna(False).astype(bool),
        }
    )[good].reset_index(drop=True)
    rejects = sorted(
        raw.rejects + problems.rejects(raw.source, frame, raw.header), key=lambda r: r.line or 0
    )
    logger.info("%s: %d good lines, %d rejected", raw.source, len(lines), len(rejects))
    return ParsedSales(raw.source, raw.header, lines, rejects, raw.rows_read)


def _numbers(frame: pd.DataFrame, column: str, problems: Problems) -> pd.Series:
    text = frame[column]
    values = pd.to_numeric(text, errors="coerce").astype("float64")
    problems.add(
        (text != "") & ~np.isfinite(values), column, "not a number: '" + text.str.slice(0, 20) + "'"
    )
    return values


def _times(
    frame: pd.DataFrame, problems: Problems, zone_for: Callable[[str], ZoneInfo]
) -> pd.Series:
    """``sold_at`` as UTC; each distinct (time, store) is parsed once."""
    todo = problems.ok & (frame["sold_at"] != "")
    pairs = frame.loc[todo, ["sold_at", "store_id"]].drop_duplicates()
    zones = {store: zone_for(store) for store in pairs["store_id"].unique()}
    parsed: dict[tuple[str, str], object] = {}
    errors: dict[tuple[str, str], str] = {}
    for text, store in pairs.itertuples(index=False):
        try:
            parsed[text, store] = parse_local_time(text, zones[store])
        except ValueError as e:
            errors[text, store] = str(e)
    keys = pd.Series(list(zip(frame["sold_at"], frame["store_id"], strict=True)), dtype="object")
    reasons = keys.map(errors)
    problems.add(todo & reasons.notna(), "sold_at", reasons)
    return pd.to_datetime(keys.map(parsed), utc=True).astype("datetime64[us, UTC]")


def _check_receipts_agree(frame: pd.DataFrame, problems: Problems) -> None:
    """Reject a line whose register, cashier or time differ from its receipt's first line."""
    ok = frame[problems.ok]
    groups = ok.groupby(["store_id", "receipt_id"], sort=False)
    first_line = groups["line"].transform("first").astype(str)
    for column in RECEIPT_FIELDS:
        differs = ok[column] != groups[column].transform("first")
        reason = "differs from line " + first_line + ", the receipt's first line"
        problems.add(differs.reindex(frame.index, fill_value=False), column, reason)


def build_batch(lines: pd.DataFrame) -> SalesBatch:
    """Group good lines into receipts, number them, and hash each receipt's content."""
    keys = ["store_id", "receipt_id"]
    lines = lines.sort_values([*keys, "line"], kind="stable").reset_index(drop=True)
    groups = lines.groupby(keys, sort=False)
    lines["line_no"] = groups.cumcount() + 1
    receipts = groups.agg(
        register_id=("register_id", "first"),
        cashier_id=("cashier_id", "first"),
        sold_at=("sold_at", "first"),
        has_alcohol=("is_alcohol", "any"),
        line_count=("line", "size"),
        total_cents=("amount_cents", "sum"),
    ).reset_index()
    receipts["content_hash"] = _content_hashes(lines, keys)
    named = lines[lines["cashier_name"] != ""]
    cashiers = (
        lines[["store_id", "cashier_id"]]
        .drop_duplicates()
        .merge(
            named.groupby(["store_id", "cashier_id"], sort=False)["cashier_name"]
            .last()
            .reset_index(),
            how="left",
        )
        .fillna({"cashier_name": ""})
    )
    return SalesBatch(receipts=receipts, lines=lines, cashiers=cashiers)


def _content_hashes(lines: pd.DataFrame, keys: list[str]) -> list[str]:
    if lines.empty:
        return []
    text = lines["register_id"].str.cat(
        [
            lines["cashier_id"],
            lines["sold_at"].astype("int64").astype(str),
            lines["sku"],
            lines["product_name"],
            lines["category"],
            lines["quantity"].astype(str),
            lines["amount_cents"].astype(str),
            lines["is_alcohol"].astype(str),
        ],
        sep="\x1f",
    )
    joined = text.groupby([lines[k] for k in keys], sort=False).agg("\x1e".join)
    return [hashlib.sha256(t.encode()).hexdigest() for t in joined]


# -- load (adapter) ------------------------------------------------------------------------------


def load_sales(
    *,
    session: Session,
    batch: SalesBatch,
    settings: Settings,
    source_file: str,
    progress: Progress | None = None,
) -> int:
    """Upsert the batch's receipts and replace the lines of new or changed ones.

    Runs in the session's transaction. Returns how many receipts were written.
    """
    receipts, lines = batch.receipts, batch.lines
    save_places(
        session=session,
        settings=settings,
        store_ids=receipts["store_id"].unique().tolist(),
        registers=receipts[["store_id", "register_id"]].drop_duplicates(),
        cashiers=batch.cashiers,
    )
    rows = receipts.assign(
        sold_at=receipts["sold_at"].dt.to_pydatetime() if len(receipts) else [],
        source_file=source_file[-1024:],
    ).to_dict("records")
    written = upsert(
        session,
        Sale.__table__,
        rows,
        keys=["store_id", "receipt_id"],
        update=[
            *RECEIPT_FIELDS,
            "has_alcohol",
            "line_count",
            "total_cents",
            "content_hash",
            "source_file",
            "ingested_at",
        ],
        only_if_changed=["content_hash"],
        returning=["id", "store_id", "receipt_id"],
    )
    if not written:
        return 0
    ids = pd.DataFrame(written, columns=["sale_id", "store_id", "receipt_id"])
    delete_where_in(session, SaleLine.__table__, "sale_id", ids["sale_id"].tolist())
    new_lines = lines.merge(ids, on=["store_id", "receipt_id"])
    columns = [
        "sale_id",
        "line_no",
        "source_line",
        "sku",
        "product_name",
        "category",
        "quantity",
        "amount_cents",
        "is_alcohol",
    ]
    new_lines = new_lines.rename(columns={"line": "source_line"})
    values = zip(*(new_lines[c].tolist() for c in columns), strict=True)
    total = len(new_lines)
    advance = (lambda n: progress(n, total)) if progress else None
    insert_rows(session, SaleLine.__table__, columns, values, progress=advance)
    return len(written)


def ingest_sales_file(
    path: Path,
    *,
    settings: Settings,
    session_factory: sessionmaker[Session],
    progress: Progress | None = None,
) -> SalesIngestSummary:
    """Parse ``path``, write its rejects beside it, and load its good lines in one transaction."""
    parsed = parse_sales(
        path, alcohol_categories=settings.alcohol_categories, zone_for=settings.store_zone
    )
    batch = build_batch(parsed.lines)
    rejects_path = write_rejects(rejects_path_for(path), parsed.header, parsed.rejects)
    with database_errors(settings.database_url), session_factory.begin() as session:
        written = load_sales(
            session=session,
            batch=batch,
            settings=settings,
            source_file=str(path.resolve()),
            progress=progress,
        )
    store_ids = batch.receipts["store_id"].unique().tolist()
    return SalesIngestSummary(
        source=parsed.source,
        rows_read=parsed.rows_read,
        lines_loaded=len(batch.lines),
        rejected=len(parsed.rejects),
        receipts=len(batch.receipts),
        receipts_written=written,
        rejects_path=rejects_path,
        rejects=parsed.rejects,
        unknown_stores=sorted(s for s in store_ids if settings.store(s) is None),
    )
