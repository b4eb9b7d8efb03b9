"""POS sales: parse line-level exports (CSV or Parquet), check every row, upsert by receipt.

The parse is pure: a file goes in, a frame of good lines and a list of rejects come out. A
receipt is all the lines of one ``(store_id, receipt_id)`` in a file, numbered in file order;
when it comes again with other content it replaces the stored one (same sale id, new lines),
and when it comes again unchanged nothing is written.

The optional receipt-level columns ``age_check`` (``none``, ``visual``, ``id_checked``,
``id_scanned``, any case; blank is ``none``) and ``birth_date`` (an ISO date, typed or
scanned at the till) say what the till recorded of the shopper's age check; every line of a
receipt must give the same. A file without them stores none (the audit then knows nothing of
checks).

A rejected line does not hide its receipt (:mod:`auditor.ingest.rejected`): the receipt keeps
the problem in ``pos_errors`` and is an alcohol sale when the rejected line is alcohol, so the
audit still sees it (and flags it ``pos_error``); a corrected file replaces it and clears them.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from itertools import repeat
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session, sessionmaker

from auditor.db.bulk import columns_of, dialect_insert, insert_rows, timestamp_texts
from auditor.db.engine import database_errors
from auditor.db.models import ID_LENGTH, NAME_LENGTH, PATH_LENGTH, Sale, SaleLine, utcnow
from auditor.db.types import UTCDateTime
from auditor.ingest import Progress
from auditor.ingest.checks import Problems
from auditor.ingest.places import save_places
from auditor.ingest.rejected import BOOLEANS, RECEIPT_PROBLEM_COLUMNS, receipt_problems
from auditor.ingest.rejects import Reject, rejects_path_for, write_rejects
from auditor.ingest.tables import read_table
from auditor.ingest.times import parse_local_time
from auditor.settings import Settings
from auditor.vocabulary import AgeCheck

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
OPTIONAL_COLUMNS = ("is_alcohol", "age_check", "birth_date")
CHECK_COLUMNS = ("age_check", "birth_date")
EARLIEST_BIRTH = date(1900, 1, 1)
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
    **dict.fromkeys(("sold_at", "quantity", "amount", "is_alcohol", *CHECK_COLUMNS), 40),
}
MAX_QUANTITY = 1e9
MAX_AMOUNT = 1e12
RECEIPT_FIELDS = ("register_id", "cashier_id", "sold_at")
_LOCAL_TIME = r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?"
_OFFSET = r"(?:Z|[+-]\d{2}:\d{2})"
EARLIEST, LATEST = pd.Timestamp("1970-01-01", tz="UTC"), pd.Timestamp("2100-01-01", tz="UTC")


@dataclass
class ParsedSales:
    """Good lines of one file (times in UTC, amounts in cents), its rejects, and the receipts
    those name (:func:`~auditor.ingest.rejected.receipt_problems`)."""

    source: str
    header: list[str]
    lines: pd.DataFrame
    rejects: list[Reject]
    rows_read: int
    receipt_problems: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=RECEIPT_PROBLEM_COLUMNS)
    )


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
    receipts_with_errors: int = 0  # receipts stored with rejected lines (pos_errors)

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
    problems.check_text(
        raw.columns,
        REQUIRED_VALUES,
        LENGTHS,
        control_characters=raw.may_hold_control_characters,
    )

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
    age_check, birth_date = _age_checks(frame, problems, sold_at, zone_for)
    # Compared as the till wrote them (age_check case-folded, blank as none).
    as_written = {"age_check": age_check.fillna(""), "birth_date": frame.get("birth_date")}
    more = [c for c in CHECK_COLUMNS if c in frame]
    _check_receipts_agree(
        frame.assign(sold_at=sold_at, **{c: as_written[c] for c in more}), problems, more
    )

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
            "amount_cents": cents.where(np.isfinite(cents), 0).astype("int64"),
            "is_alcohol": is_alcohol.fillna(False).astype(bool),
            "age_check": age_check,
            "birth_date": birth_date,
        }
    )[good].reset_index(drop=True)
    rejects = sorted(
        raw.rejects + problems.rejects(raw.source, frame, raw.header), key=lambda r: r.line or 0
    )
    logger.info("%s: %d good lines, %d rejected", raw.source, len(lines), len(rejects))
    problems_of = receipt_problems(
        rejects,
        alcohol_categories=alcohol_categories,
        zone_for=zone_for,
        source=str(path.resolve()),
    )
    return ParsedSales(raw.source, raw.header, lines, rejects, raw.rows_read, problems_of)


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
    """``sold_at`` as UTC, by the rule of :func:`parse_local_time`.

    The usual shapes are converted a column at a time (a repeated local time is taken as its
    first, daylight-saving occurrence, as ``fold=0`` does); everything else, including local
    times skipped by a clock change, goes through ``parse_local_time`` one value at a time.
    """
    text = frame["sold_at"]
    todo = problems.ok & (text != "")
    result = pd.Series(pd.NaT, index=frame.index, dtype="datetime64[us, UTC]")
    aware = todo & text.str.fullmatch(_LOCAL_TIME + _OFFSET)
    if aware.any():
        result[aware] = pd.to_datetime(text[aware], format="ISO8601", utc=True, errors="coerce")
    naive = todo & text.str.fullmatch(_LOCAL_TIME)
    for store, index in frame[naive].groupby("store_id").groups.items():
        local = pd.to_datetime(text[index], format="ISO8601", errors="coerce")
        result[index] = local.dt.tz_localize(
            zone_for(str(store)), ambiguous=np.ones(len(index), dtype=bool), nonexistent="NaT"
        ).dt.tz_convert("UTC")
    parsed: dict[int, datetime] = {}
    found: dict[object, tuple[str, str]] = {}
    rest = frame.loc[todo & result.isna(), ["sold_at", "store_id"]]
    for index, value, store in rest.itertuples():
        try:
            parsed[index] = parse_local_time(value, zone_for(store))
        except ValueError as e:
            found[index] = ("sold_at", str(e))
    if parsed:
        result[list(parsed)] = pd.to_datetime(list(parsed.values()), utc=True)
    problems.add_each(found)
    out_of_range = result.notna() & ((result < EARLIEST) | (result >= LATEST))
    problems.add(out_of_range, "sold_at", "time out of range: '" + text.str.slice(0, 40) + "'")
    return result


def _age_checks(
    frame: pd.DataFrame,
    problems: Problems,
    sold_at: pd.Series,
    zone_for: Callable[[str], ZoneInfo],
) -> tuple[pd.Series, pd.Series]:
    """``age_check`` (an :class:`AgeCheck` name, or None without the column) and
    ``birth_date`` (a date or None), checked."""
    nothing = pd.Series([None] * len(frame), index=frame.index, dtype="object")
    age_check = nothing.copy()
    if "age_check" in frame:
        text = frame["age_check"].str.casefold().replace("", AgeCheck.NONE.value)
        known = text.isin([c.value for c in AgeCheck])
        problems.add(
            ~known,
            "age_check",
            "not one of "
            + ", ".join(c.value for c in AgeCheck)
            + ": '"
            + frame["age_check"].str.slice(0, 20)
            + "'",
        )
        age_check = text.where(known, None).astype("object")
    birth_date = nothing.copy()
    if "birth_date" in frame:
        text = frame["birth_date"]
        given = text != ""
        parsed = pd.to_datetime(text.where(given), format="%Y-%m-%d", errors="coerce")
        bad = given & parsed.isna()
        problems.add(bad, "birth_date", "not a date (YYYY-MM-DD): '" + text.str.slice(0, 20) + "'")
        days = pd.Series([None] * len(frame), index=frame.index, dtype="object")
        ok = given & parsed.notna()
        days[ok] = [d.date() for d in parsed[ok]]
        local_days = pd.Series([None] * len(frame), index=frame.index, dtype="object")
        timed = ok & sold_at.notna()
        for store, index in frame[timed].groupby("store_id").groups.items():
            local = sold_at[index].dt.tz_convert(zone_for(str(store)))
            local_days[index] = list(local.dt.date)
        after_sale = pd.Series(
            [
                b is not None and d is not None and b > d
                for b, d in zip(days, local_days, strict=True)
            ],
            index=frame.index,
        )
        problems.add(after_sale, "birth_date", "after the day of the sale")
        too_early = pd.Series(
            [b is not None and b < EARLIEST_BIRTH for b in days], index=frame.index
        )
        problems.add(too_early, "birth_date", f"before {EARLIEST_BIRTH.isoformat()}")
        birth_date = days
    return age_check, birth_date


def _check_receipts_agree(
    frame: pd.DataFrame, problems: Problems, more: list[str] | None = None
) -> None:
    """Reject a line whose register, cashier, time (or age check) differ from its receipt's
    first line."""
    ok = frame[problems.ok]
    groups = ok.groupby(["store_id", "receipt_id"], sort=False)
    first_line = groups["line"].transform("first").astype(str)
    for column in [*RECEIPT_FIELDS, *(more or [])]:
        differs = ok[column] != groups[column].transform("first")
        reason = "differs from line " + first_line + ", the receipt's first line"
        problems.add(differs.reindex(frame.index, fill_value=False), column, reason)


def build_batch(lines: pd.DataFrame, problems: pd.DataFrame | None = None) -> SalesBatch:
    """Group good lines into receipts, number them in file order, and hash each receipt.

    ``problems`` (:func:`~auditor.ingest.rejected.receipt_problems`) gives the receipts their
    ``pos_errors``, makes those with a rejected alcohol line alcohol sales, and adds the alcohol
    receipts whose every line was rejected, without lines, when their time is known.
    """
    keys = lines["store_id"] + "\x1f" + lines["receipt_id"]
    codes, _ = pd.factorize(keys)
    order = np.argsort(codes, kind="stable")
    lines = lines.take(order).reset_index(drop=True)
    codes = codes[order]
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]]) if len(codes) else codes
    sizes = np.diff(np.r_[starts, len(codes)]).astype("int64")
    lines["line_no"] = np.arange(len(lines)) - np.repeat(starts, sizes) + 1
    for column in CHECK_COLUMNS:
        if column not in lines:
            lines[column] = pd.Series([None] * len(lines), index=lines.index, dtype="object")
    receipts = lines.iloc[starts][["store_id", "receipt_id", *RECEIPT_FIELDS, *CHECK_COLUMNS]]
    receipts = receipts.reset_index(drop=True)
    if len(lines):
        receipts["has_alcohol"] = np.logical_or.reduceat(lines["is_alcohol"].to_numpy(), starts)
        receipts["total_cents"] = np.add.reduceat(lines["amount_cents"].to_numpy(), starts)
    else:
        receipts["has_alcohol"] = pd.Series(dtype=bool)
        receipts["total_cents"] = pd.Series(dtype="int64")
    receipts["line_count"] = sizes
    receipts["content_hash"] = [
        _check_hash(kind, born, h)
        for kind, born, h in zip(
            receipts["age_check"],
            receipts["birth_date"],
            _content_hashes(lines, starts),
            strict=True,
        )
    ]
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
    receipts["pos_errors"] = pd.Series([None] * len(receipts), dtype="object")
    if problems is not None and not problems.empty:
        receipts, cashiers = _with_problems(receipts, cashiers, problems)
    return SalesBatch(receipts=receipts, lines=lines, cashiers=cashiers)


def _with_problems(
    receipts: pd.DataFrame, cashiers: pd.DataFrame, problems: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    keys = ["store_id", "receipt_id"]
    known = receipts[keys].merge(problems, on=keys, how="left")
    named = known["pos_errors"].notna().to_numpy()
    receipts = receipts.copy()
    receipts["has_alcohol"] = receipts["has_alcohol"].to_numpy() | (
        named & known["alcohol"].fillna(False).astype(bool).to_numpy()
    )
    receipts["pos_errors"] = [
        e if n else None for e, n in zip(known["pos_errors"], named, strict=True)
    ]
    receipts["content_hash"] = [
        _errors_hash(errors, h)
        for h, errors in zip(receipts["content_hash"], receipts["pos_errors"], strict=True)
    ]
    stored = pd.MultiIndex.from_frame(receipts[keys])
    alone = problems[
        ~pd.MultiIndex.from_frame(problems[keys]).isin(stored)
        & problems["alcohol"]
        & problems["sold_at"].notna()
    ]
    if alone.empty:
        return receipts, cashiers
    lineless = alone[[*keys, *RECEIPT_FIELDS, "pos_errors"]].assign(
        age_check=None,
        birth_date=None,
        has_alcohol=True,
        total_cents=0,
        line_count=0,
        content_hash=[_errors_hash(errors) for errors in alone["pos_errors"]],
    )
    receipts = pd.concat([receipts, lineless[receipts.columns]], ignore_index=True)
    receipts["total_cents"] = receipts["total_cents"].astype("int64")
    receipts["line_count"] = receipts["line_count"].astype("int64")
    receipts["has_alcohol"] = receipts["has_alcohol"].astype(bool)
    more = alone[["store_id", "cashier_id", "cashier_name"]].drop_duplicates(
        ["store_id", "cashier_id"]
    )
    seen = pd.MultiIndex.from_frame(cashiers[["store_id", "cashier_id"]])
    more = more[~pd.MultiIndex.from_frame(more[["store_id", "cashier_id"]]).isin(seen)]
    return receipts, pd.concat([cashiers, more], ignore_index=True)


def _errors_hash(errors: list[str] | None, lines_hash: str = "") -> str:
    """A receipt's hash with its POS problems folded in (unchanged when it has none)."""
    if not errors:
        return lines_hash
    text = "\n".join([lines_hash, *errors])
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


def _check_hash(kind: str | None, born: date | None, lines_hash: str) -> str:
    """A receipt's hash with its age check folded in (unchanged when none is recorded, so a
    file without the columns hashes as it always did)."""
    if kind is None and born is None:
        return lines_hash
    text = "\n".join([lines_hash, kind or "", born.isoformat() if born else ""])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


HASHED_COLUMNS = [
    *RECEIPT_FIELDS,
    "sku",
    "product_name",
    "category",
    "quantity",
    "amount_cents",
    "is_alcohol",
]


def _content_hashes(lines: pd.DataFrame, starts: np.ndarray) -> list[str]:
    """SHA-256 over each receipt's line hashes, in line order.

    Line hashes are pandas' fixed-key 64-bit hashes; should a pandas release ever change them,
    each receipt is rewritten once on its next ingest, with the same content.
    """
    if lines.empty:
        return []
    row_hashes = pd.util.hash_pandas_object(lines[HASHED_COLUMNS], index=False).to_numpy()
    bounds = [*starts.tolist(), len(row_hashes)]
    return [
        hashlib.sha256(row_hashes[a:b].tobytes()).hexdigest()
        for a, b in zip(bounds, bounds[1:], strict=False)
    ]


# -- load (adapter) ------------------------------------------------------------------------------


_staging = sa.MetaData()
STAGE_SALES = sa.Table(
    "stage_sales",
    _staging,
    sa.Column("store_id", sa.String(ID_LENGTH), primary_key=True),
    sa.Column("receipt_id", sa.String(ID_LENGTH), primary_key=True),
    sa.Column("register_id", sa.String(ID_LENGTH)),
    sa.Column("cashier_id", sa.String(ID_LENGTH)),
    sa.Column("sold_at", sa.DateTime(timezone=True)),
    sa.Column("has_alcohol", sa.Boolean),
    sa.Column("line_count", sa.Integer),
    sa.Column("total_cents", sa.BigInteger),
    sa.Column("content_hash", sa.String(64)),
    sa.Column("pos_errors", sa.Text),  # JSON text
    sa.Column("age_check", sa.String(16)),
    sa.Column("birth_date", sa.Date),
    sa.Column("changed", sa.Boolean),
    prefixes=["TEMPORARY"],
)
RECEIPT_COLUMNS = [c.name for c in STAGE_SALES.c if c.name != "changed"]
LINE_COLUMNS = [
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


def load_sales(
    *,
    session: Session,
    batch: SalesBatch,
    settings: Settings,
    source_file: str,
    progress: Progress | None = None,
) -> int:
    """Upsert the batch's receipts and replace the lines of new or changed ones.

    The receipts are bulk-copied into a temporary table; set-based statements find the new or
    changed ones, drop their old lines and upsert them into ``sales``; then their lines are
    bulk-inserted. Runs in the session's transaction. Returns how many receipts were written.
    """
    receipts = batch.receipts
    if receipts.empty:
        return 0
    save_places(
        session=session,
        settings=settings,
        store_ids=receipts["store_id"].unique().tolist(),
        registers=receipts[["store_id", "register_id"]].drop_duplicates(),
        cashiers=batch.cashiers,
    )
    connection = session.connection()
    STAGE_SALES.drop(connection, checkfirst=True)
    STAGE_SALES.create(connection)
    staged = receipts.assign(
        sold_at=timestamp_texts(receipts["sold_at"], connection.dialect.name),
        pos_errors=pd.Series(
            [json.dumps(e) if isinstance(e, list) else None for e in receipts["pos_errors"]],
            index=receipts.index,
            dtype="object",
        ),
    )
    insert_rows(
        session,
        STAGE_SALES,
        [*RECEIPT_COLUMNS, "changed"],
        zip(*columns_of(staged, RECEIPT_COLUMNS), repeat(True)),
    )
    ids = _upsert_staged_sales(session, source_file=source_file[-PATH_LENGTH:])
    STAGE_SALES.drop(connection)
    if ids.empty:
        return 0
    lines = batch.lines.merge(ids, on=["store_id", "receipt_id"])
    lines = lines.rename(columns={"line": "source_line"})
    total = len(lines)
    insert_rows(
        session,
        SaleLine.__table__,
        LINE_COLUMNS,
        zip(*columns_of(lines, LINE_COLUMNS), strict=True),
        progress=(lambda n: progress(n, total)) if progress else None,
    )
    return len(ids)


def _upsert_staged_sales(session: Session, *, source_file: str) -> pd.DataFrame:
    """Write the staged receipts that are new or changed; give their ids and keys."""
    sales, lines, staged = Sale.__table__, SaleLine.__table__, STAGE_SALES
    same_receipt = (sales.c.store_id == staged.c.store_id) & (
        sales.c.receipt_id == staged.c.receipt_id
    )
    unchanged = sa.select(1).where(same_receipt, sales.c.content_hash == staged.c.content_hash)
    session.execute(sa.update(staged).where(unchanged.exists()).values(changed=False))
    replaced = sa.select(sales.c.id).join(staged, same_receipt).where(staged.c.changed)
    session.execute(sa.delete(lines).where(lines.c.sale_id.in_(replaced)))

    as_json = session.get_bind().dialect.name == "postgresql"
    changed = sa.select(
        *(
            sa.cast(staged.c[c], postgresql.JSONB).label(c)
            if c == "pos_errors" and as_json
            else staged.c[c]
            for c in RECEIPT_COLUMNS
        ),
        sa.literal(source_file, sa.String).label("source_file"),
        sa.literal(utcnow(), UTCDateTime()).label("ingested_at"),
    ).where(staged.c.changed)
    insert = dialect_insert(session, sales).from_select(
        [*RECEIPT_COLUMNS, "source_file", "ingested_at"], changed
    )
    updated = [*RECEIPT_COLUMNS[2:], "source_file", "ingested_at"]
    session.execute(
        insert.on_conflict_do_update(
            index_elements=["store_id", "receipt_id"],
            set_={c: insert.excluded[c] for c in updated},
        )
    )
    written = session.execute(
        sa.select(sales.c.id, sales.c.store_id, sales.c.receipt_id)
        .join(staged, same_receipt)
        .where(staged.c.changed)
    )
    rows = list(map(tuple, written))
    return pd.DataFrame(rows, columns=["sale_id", "store_id", "receipt_id"])


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
    batch = build_batch(parsed.lines, parsed.receipt_problems)
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
        receipts_with_errors=int(batch.receipts["pos_errors"].notna().sum()),
    )
