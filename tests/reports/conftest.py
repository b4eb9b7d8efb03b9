"""The demo chain of the report tests: one night of five stores, each a case a report must show."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from auditor.db.models import Sale, SaleVerdict
from auditor.settings import Settings
from tests.factories import jpeg_bytes, make_settings
from tests.reports.chain import (
    BEER,
    BREAD,
    SPIRITS,
    WINE,
    NightTruth,
    ResultsBuilder,
    VerdictSpec,
    generated_night,
)

DAY = date(2024, 3, 1)
UNDER = "under_age_threshold"
SCRIPT_NAME = "<script>alert('cashier')</script>"
ODD_ID = "../x y"  # a store id that is no file name

CHAIN_STORES = [
    {"id": "S1", "name": "Berlin Mitte", "timezone": "Europe/Berlin"},
    {"id": "S2", "name": "New York 5th Ave", "timezone": "America/New_York"},
    {"id": "S3", "name": "Tokyo Ginza", "timezone": "Asia/Tokyo"},
    {"id": "S4", "name": "Quiet corner", "timezone": "Europe/Berlin"},
    {"id": ODD_ID, "name": "", "timezone": "Europe/Berlin"},
]


@dataclass
class DemoChain:
    settings: Settings
    builder: ResultsBuilder
    day: date
    young_crop: bytes
    young_sale: int
    failed_error: str


def reports_settings(tmp_path: Path, db_url: str, **sections: object) -> Settings:
    return make_settings(tmp_path, database_url=db_url, stores=CHAIN_STORES, **sections)


def build_demo_chain(engine: Engine, settings: Settings, day: date = DAY) -> DemoChain:
    """The night ``day`` of the demo chain.

    - S1 Berlin: six hand-made sales (clean, under-age with a face crop and two reviews, under-age
      whose crop was purged, after hours, no frame, no face) by three cashiers, one called
      ``<script>``, and two generated nights of 40 sales before it;
    - S2 New York: its cameras were off, every sale flagged ``no_frame``;
    - S3 Tokyo: the audit failed;
    - S4: audited, no alcohol sales, then a re-run that failed;
    - ``../x y``: never audited.
    """
    b = ResultsBuilder(engine)
    for store in CHAIN_STORES:
        b.store(store["id"], store["name"], store["timezone"])
    b.cashier("S1", "C1", SCRIPT_NAME)
    b.cashier("S1", "C2", "Bea Berg")
    for n in (1, 2):
        generated_night(b, "S1", day - timedelta(days=n), 40, seed=n, cashiers=3)

    d = day.isoformat()
    sales = {
        "clean": b.sale("S1", "r-clean", f"{d} 10:00", cashier_id="C2", items=(WINE, BREAD)),
        "young": b.sale("S1", "r-young", f"{d} 21:15:07", cashier_id="C1", items=(BEER, SPIRITS)),
        "purged": b.sale("S1", "r-purged", f"{d} 18:00", cashier_id="C2"),
        "late": b.sale("S1", "r-late", f"{d} 23:30", cashier_id="C1", items=(WINE,)),
        "no-frame": b.sale("S1", "r-noframe", f"{d} 12:00", cashier_id="C2"),
        "no-face": b.sale("S1", "r-noface", f"{d} 13:00", cashier_id="C3"),
    }
    crop = jpeg_bytes(7, size=112)
    run = b.run("S1", day)
    b.verdicts(
        run,
        [
            VerdictSpec(sales["clean"], 41.0, 3.0),
            VerdictSpec(sales["young"], 19.44, 2.06, frames=3, faces=2, kinds=[UNDER], crop=crop),
            VerdictSpec(sales["purged"], 21.0, 4.0, kinds=[UNDER], purged=True),
            VerdictSpec(sales["late"], 30.0, 3.5, kinds=["outside_legal_hours"]),
            VerdictSpec(sales["no-frame"], frames=0, kinds=["no_frame"]),
            VerdictSpec(sales["no-face"], faces=0, kinds=["no_face"]),
        ],
    )
    morning = datetime.combine(day + timedelta(days=1), datetime.min.time(), UTC)
    b.review(sales["young"], UNDER, "adult", morning + timedelta(hours=8))
    b.review(sales["young"], UNDER, "confirmed_violation", morning + timedelta(hours=9), "no ID")
    b.review(sales["late"], "outside_legal_hours", "id_checked", morning + timedelta(hours=9))

    ny = [
        b.sale("S2", f"ny-{n}", f"{d} {10 + n}:00", cashier_id="N1", items=(BEER,))
        for n in range(5)
    ]
    b.verdicts(b.run("S2", day), [VerdictSpec(s, frames=0, kinds=["no_frame"]) for s in ny])

    error = "OSError: snapshot share /srv/snapshots is not mounted"
    b.run("S3", day, status="failed", error=error)

    b.verdicts(b.run("S4", day), [])
    b.run(
        "S4",
        day,
        status="failed",
        error="interrupted",
        started_at=datetime.combine(day + timedelta(days=1), datetime.min.time(), UTC)
        + timedelta(hours=5),
    )
    return DemoChain(settings, b, day, crop, sales["young"], error)


@pytest.fixture
def chain_settings(tmp_path: Path, db_url: str) -> Settings:
    return reports_settings(tmp_path, db_url)


@pytest.fixture
def demo_chain(engine: Engine, chain_settings: Settings) -> DemoChain:
    return build_demo_chain(engine, chain_settings)


@dataclass
class ScorecardChain:
    """Two weeks and tonight of two stores, for the scorecards (:func:`build_scorecard_chain`)."""

    settings: Settings
    builder: ResultsBuilder
    day: date
    nights: dict[tuple[str, date], NightTruth]
    confirmed: list[int]  # sale ids whose review confirms a violation


def build_scorecard_chain(engine: Engine, settings: Settings, day: date = DAY) -> ScorecardChain:
    """S1 Berlin: 60 generated sales a night by four cashiers at four registers, tonight and the
    14 nights before, ID checks recorded (C1 checks one young-looking shopper in ten, the
    others nine in ten); the first three under-age sales of C1 are confirmed violations. S2
    New York: 30 sales a night, its cameras off four nights in the window."""
    b = ResultsBuilder(engine)
    b.store("S1", "Berlin Mitte", "Europe/Berlin")
    b.store("S2", "New York 5th Ave", "America/New_York")
    for cashier, name in (("C1", "Carl Quick"), ("C2", "Dana Careful"), ("C3", "Eve Even")):
        b.cashier("S1", cashier, name)
    checks = {"C1": 0.1, "C2": 0.9, "C3": 0.9, "C4": 0.9}
    nights: dict[tuple[str, date], NightTruth] = {}
    for n in range(14, -1, -1):
        d = day - timedelta(days=n)
        nights["S1", d] = generated_night(b, "S1", d, 60, seed=100 + n, cashiers=4, checks=checks)
        nights["S2", d] = generated_night(b, "S2", d, 30, seed=200 + n, camera_off=n % 4 == 1)
    with engine.connect() as c:
        rows = c.execute(
            sa.select(Sale.id)
            .join(SaleVerdict, SaleVerdict.sale_id == Sale.id)
            .where(
                Sale.store_id == "S1",
                Sale.cashier_id == "C1",
                SaleVerdict.flag_kinds.like("%no_id_check%"),
            )
            .order_by(Sale.sold_at)
            .limit(3)
        ).all()
    confirmed = [int(r[0]) for r in rows]
    at = datetime.combine(day + timedelta(days=1), datetime.min.time(), UTC) + timedelta(hours=9)
    for sale_id in confirmed:
        b.review(sale_id, "no_id_check", "confirmed_violation", at)
    return ScorecardChain(settings, b, day, nights, confirmed)


@pytest.fixture
def scorecard_chain(engine: Engine, chain_settings: Settings) -> ScorecardChain:
    return build_scorecard_chain(engine, chain_settings)
