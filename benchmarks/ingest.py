"""Sale lines ingested per second, on SQLite and PostgreSQL, for a generated POS export.

    python benchmarks/ingest.py                  # 1,000,000 lines, both databases
    python benchmarks/ingest.py --lines 100000 --backend sqlite

Each database is new and migrated. Timed: ``ingest_sales_file`` end to end (read, check, write
rejects, one transaction of upserts and bulk line inserts), first on an empty database, then
again with the same file (every receipt unchanged). PostgreSQL gets a throwaway database on the
server at --pg-url, dropped afterwards.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

from auditor.db import make_engine, make_session_factory
from auditor.db.migrations import upgrade
from auditor.ingest.pos import ingest_sales_file
from auditor.settings import load_settings

CATEGORIES = ["beer", "wine", "spirits", "bakery", "dairy", "produce", "snacks", "household"]


def generate(path: Path, lines: int, seed: int = 0) -> None:
    """A POS export of about ``lines`` lines: 20 stores, receipts of 1 to 7 lines, one day."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 8, size=lines)
    sizes = sizes[np.cumsum(sizes) <= lines]
    sizes = np.append(sizes, lines - sizes.sum()) if sizes.sum() < lines else sizes
    receipts = len(sizes)
    receipt_of_line = np.repeat(np.arange(receipts), sizes)
    store = rng.integers(1, 21, size=receipts)
    seconds = np.sort(rng.integers(8 * 3600, 23 * 3600, size=receipts))
    sold_at = pd.Timestamp("2024-03-01") + pd.to_timedelta(seconds, unit="s")
    frame = pd.DataFrame(
        {
            "store_id": pd.Series(store).map("S{:02d}".format).to_numpy()[receipt_of_line],
            "register_id": rng.integers(1, 9, size=receipts).astype(str)[receipt_of_line],
            "cashier_id": rng.integers(100, 160, size=receipts).astype(str)[receipt_of_line],
            "cashier_name": "Cashier",
            "receipt_id": np.char.add("R", np.arange(receipts).astype(str))[receipt_of_line],
            "sold_at": sold_at.strftime("%Y-%m-%dT%H:%M:%S").to_numpy()[receipt_of_line],
            "sku": rng.integers(10_000, 99_999, size=lines).astype(str),
            "product_name": "Product",
            "category": np.array(CATEGORIES)[rng.integers(0, len(CATEGORIES), size=lines)],
            "quantity": rng.integers(1, 6, size=lines),
            "amount": (rng.integers(49, 4999, size=lines) / 100).round(2),
        }
    )
    frame.to_csv(path, index=False)


@contextmanager
def sqlite_url(workdir: Path) -> Iterator[str]:
    yield f"sqlite:///{workdir / 'bench.db'}"


@contextmanager
def postgresql_url(server_url: str) -> Iterator[str]:
    name = f"auditor_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield sa.make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def run(backend: str, url: str, path: Path, lines: int) -> None:
    upgrade(url)
    settings = load_settings().model_copy()
    settings = settings.model_copy(
        update={"database": settings.database.model_copy(update={"url": url})}
    )
    engine = make_engine(url)
    try:
        for label in ("empty database", "same file again"):
            started = time.perf_counter()
            summary = ingest_sales_file(
                path, settings=settings, session_factory=make_session_factory(engine)
            )
            seconds = time.perf_counter() - started
            assert summary.lines_loaded == lines and summary.rejected == 0, summary
            print(
                f"{backend:<10} {label:<16} {lines:>9,} lines  {seconds:6.1f} s  "
                f"{lines / seconds:>9,.0f} lines/s",
                flush=True,
            )
    finally:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        path = workdir / "sales.csv"
        generate(path, args.lines)
        print(f"generated {args.lines:,} lines ({path.stat().st_size / 1e6:.0f} MB CSV)")
        if args.backend in ("sqlite", "both"):
            with sqlite_url(workdir) as url:
                run("SQLite", url, path, args.lines)
        if args.backend in ("postgresql", "both"):
            with postgresql_url(args.pg_url) as url:
                run("PostgreSQL", url, path, args.lines)


if __name__ == "__main__":
    main()
