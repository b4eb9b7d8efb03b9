"""Time the review app's flag list and CSV download with 100,000 flags in the database.

    python benchmarks/review.py                 # 100,000 flags, SQLite, PostgreSQL if reachable
    python benchmarks/review.py --flags 20000 --repeat 7 --no-postgresql

The flags are written straight into the tables (as an audit run writes them): 20 stores, each
with 60 audited nights, every sale flagged once (about one in five twice), a mix of kinds, a
probability of a shopper under the legal age on most, a small face crop on the under-age ones,
and a decision on about a third. Timed through the app (Flask's test client, a logged-in
loss-prevention user, who sees every store): the list's first page by risk (the default),
a later page, the list sorted by estimated age, one store-night, and the CSV download of one
store-night and of one store's 60 nights. PostgreSQL is the server at ``AUDITOR_TEST_PG_URL``
(default: user postgres on 127.0.0.1:5432); a database is made for the run and dropped after.

The rows are written with the review state an audit run and the decisions keep
(:func:`auditor.reviews.refresh_review_state`). On PostgreSQL the load is followed by ``VACUUM
ANALYZE``, what autovacuum does soon after a load of new rows; without it (a server with
autovacuum off) the planner has no statistics: ``--no-analyze`` times that case.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' factories

from auditor.db import make_engine  # noqa: E402
from auditor.db.migrations import upgrade  # noqa: E402
from auditor.db.models import (  # noqa: E402
    AuditRun,
    Cashier,
    Flag,
    Register,
    Review,
    Sale,
    SaleVerdict,
    Store,
    User,
)
from auditor.reviews import refresh_review_state  # noqa: E402
from auditor.users import hash_password  # noqa: E402
from auditor.vocabulary import Decision, FlagKind  # noqa: E402
from auditor.web import create_app  # noqa: E402
from tests.factories import jpeg_bytes, make_settings  # noqa: E402

STORES = 20
NIGHTS = 60
FIRST = date(2024, 1, 1)
PASSWORD = "benchmark password"
PG_SERVER_URL = os.environ.get(
    "AUDITOR_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
KINDS = [
    (FlagKind.UNDER_AGE_THRESHOLD, 40),
    (FlagKind.NO_ID_CHECK, 15),
    (FlagKind.NO_FRAME, 15),
    (FlagKind.NO_FACE, 12),
    (FlagKind.OUTSIDE_LEGAL_HOURS, 8),
    (FlagKind.UNREADABLE_FRAME, 5),
    (FlagKind.ID_CONTRADICTS_FACE, 3),
    (FlagKind.BIRTH_DATE_UNDER_AGE, 2),
]


def build(engine: Engine, flags: int, seed: int = 1) -> int:
    """Write the stores, runs, sales, verdicts, flags and reviews; returns the flags written."""
    rng = random.Random(seed)
    crop = jpeg_bytes(3, size=64)
    kinds, weights = zip(*KINDS, strict=True)
    sales_per_night = max(1, round(flags / 1.2 / (STORES * NIGHTS)))
    now = datetime.now(UTC)
    with engine.begin() as connection:
        connection.execute(
            sa.insert(User),
            [
                {
                    "username": "lp",
                    "password_hash": hash_password(PASSWORD),
                    "role": "loss_prevention",
                    "store_id": None,
                    "active": True,
                }
            ],
        )
        reviewer = connection.execute(sa.select(User.id)).scalar_one()
        stores = [f"S{i:02}" for i in range(1, STORES + 1)]
        connection.execute(
            sa.insert(Store),
            [{"id": s, "name": f"Store {s}", "timezone": "Europe/Berlin"} for s in stores],
        )
        connection.execute(
            sa.insert(Register),
            [{"store_id": s, "register_id": f"R{r}"} for s in stores for r in range(1, 5)],
        )
        connection.execute(
            sa.insert(Cashier),
            [
                {"store_id": s, "cashier_id": f"C{c}", "name": f"Cashier {c} of {s}"}
                for s in stores
                for c in range(1, 9)
            ],
        )
        runs = connection.execute(
            sa.insert(AuditRun).returning(AuditRun.id, AuditRun.store_id, AuditRun.business_date),
            [
                {
                    "store_id": s,
                    "business_date": FIRST + timedelta(days=n),
                    "status": "succeeded",
                    "started_at": now,
                    "finished_at": now,
                    "settings": {"audit": {"age_threshold": 25}, "rules": {"legal_age": 18}},
                    "model_version": "bench",
                    "sales_audited": sales_per_night,
                    "flags_count": 0,
                }
                for s in stores
                for n in range(NIGHTS)
            ],
        ).all()
        written = 0
        for run_id, store_id, day in runs:
            if written >= flags:
                break
            start = datetime(day.year, day.month, day.day, 8, tzinfo=UTC)
            sale_rows = [
                {
                    "store_id": store_id,
                    "receipt_id": f"{day:%Y%m%d}-{i:05}",
                    "register_id": f"R{rng.randint(1, 4)}",
                    "cashier_id": f"C{rng.randint(1, 8)}",
                    "sold_at": start + timedelta(seconds=rng.randint(0, 14 * 3600)),
                    "has_alcohol": True,
                    "line_count": 2,
                    "total_cents": 999,
                    "content_hash": f"{store_id}-{day}-{i}",
                    "source_file": "bench.csv",
                }
                for i in range(sales_per_night)
            ]
            sale_ids = (
                connection.execute(
                    sa.insert(Sale).returning(Sale.id, sort_by_parameter_order=True), sale_rows
                )
                .scalars()
                .all()
            )
            verdicts, flag_rows, reviews = [], [], []
            for sale_id in sale_ids:
                chosen = {rng.choices(kinds, weights)[0]}
                if rng.random() < 0.2:
                    chosen.add(rng.choices(kinds, weights)[0])
                age = (
                    None
                    if FlagKind.NO_FRAME in chosen or FlagKind.NO_FACE in chosen
                    else rng.uniform(14, 30)
                )
                p = None if age is None else round(rng.random(), 3)
                verdicts.append(
                    {
                        "run_id": run_id,
                        "sale_id": sale_id,
                        "estimated_age": age,
                        "age_spread": None if age is None else 2.0,
                        "frames_matched": 1,
                        "frames_read": 1,
                        "faces_found": int(age is not None),
                        "flag_kinds": ";".join(k for k in FlagKind if k in chosen),
                        "p_under_legal": p,
                    }
                )
                for kind in chosen:
                    flag_rows.append(
                        {
                            "run_id": run_id,
                            "sale_id": sale_id,
                            "kind": kind,
                            "threshold": 25,
                            "legal_age": 18,
                            "age": age,
                            "spread": None if age is None else 2.0,
                            "p_under_legal": p,
                            "face_crop": crop if kind.is_age and age is not None else None,
                            "created_at": now,
                        }
                    )
                    if rng.random() < 0.33:
                        reviews.append(
                            {
                                "sale_id": sale_id,
                                "flag_kind": kind,
                                "reviewer_id": reviewer,
                                "decision": rng.choice(list(Decision)),
                                "comment": "",
                                "reviewed_at": now,
                            }
                        )
            connection.execute(sa.insert(SaleVerdict), verdicts)
            connection.execute(sa.insert(Flag), flag_rows)
            if reviews:
                connection.execute(sa.insert(Review), reviews)
            refresh_review_state(connection, run_id=run_id)  # as an audit run and decisions do
            written += len(flag_rows)
    return written


def timed(call: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Best and median milliseconds of ``repeat`` calls (after one warm-up call)."""
    call()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append(1000 * (time.perf_counter() - started))
    return min(times), statistics.median(times)


def measure(name: str, url: str, flags: int, repeat: int, folder: Path, analyze: bool) -> None:
    upgrade(url)
    engine = make_engine(url)
    started = time.perf_counter()
    written = build(engine, flags)
    print(f"{name}: built {written:,} flags in {time.perf_counter() - started:.1f} s")
    if analyze and engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM ANALYZE")
    settings = make_settings(folder / name, database_url=url, web={"secret_key": "b" * 40})
    app = create_app(settings, engine, TESTING=True, WTF_CSRF_ENABLED=False)
    client = app.test_client()
    response = client.post("/login", data={"username": "lp", "password": PASSWORD})
    assert response.status_code == 302, response.get_data(as_text=True)
    night = (FIRST + timedelta(days=NIGHTS // 2)).isoformat()
    pages = [
        ("list, page 1 by risk (open)", "/flags"),
        ("list, page 40 by risk (open)", "/flags?page=40"),
        ("list, every sale, by estimated age", "/flags?status=all&sort=age"),
        ("list, one store-night", f"/flags?store=S01&date={night}&status=all"),
        ("CSV, one store-night", f"/flags.csv?store=S01&date={night}&status=all"),
        ("CSV, one store's 60 nights", "/flags.csv?store=S01&status=all"),
    ]
    for label, path in pages:

        def get(path: str = path) -> object:
            response = client.get(path)
            assert response.status_code == 200, (path, response.status_code)
            return response.data

        best, median = timed(get, repeat)
        size = len(client.get(path).data)
        print(
            f"{name}: {label}: best {best:.0f} ms, median {median:.0f} ms ({size / 1024:.0f} KiB)"
        )
    engine.dispose()


def _postgresql() -> str | None:
    """A new database on the PostgreSQL server, or None when it cannot be reached."""
    name = f"auditor_bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_SERVER_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except sa.exc.OperationalError as e:
        print(f"PostgreSQL not reachable, skipped: {str(e.orig).strip().splitlines()[0]}")
        return None
    finally:
        admin.dispose()
    return sa.make_url(PG_SERVER_URL).set(database=name).render_as_string(hide_password=False)


def _drop(url: str) -> None:
    admin = sa.create_engine(PG_SERVER_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(
            f'DROP DATABASE IF EXISTS "{sa.make_url(url).database}" WITH (FORCE)'
        )
    admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flags", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-postgresql", action="store_true")
    parser.add_argument(
        "--no-analyze", action="store_true", help="PostgreSQL without statistics after the load"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        measure(
            "SQLite",
            f"sqlite:///{Path(folder) / 'auditor.db'}",
            args.flags,
            args.repeat,
            Path(folder),
            analyze=False,
        )
        if not args.no_postgresql and (url := _postgresql()) is not None:
            try:
                measure(
                    "PostgreSQL",
                    url,
                    args.flags,
                    args.repeat,
                    Path(folder),
                    analyze=not args.no_analyze,
                )
            finally:
                _drop(url)


if __name__ == "__main__":
    main()
