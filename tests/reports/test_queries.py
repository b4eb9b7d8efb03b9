"""The report queries that sum in the database, against hand-counted figures (SQLite and
PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from auditor.reports import queries
from auditor.reports.figures import AGE_BANDS
from tests.reports.chain import BEER, BREAD, SPIRITS, WINE, ResultsBuilder, VerdictSpec
from tests.reports.conftest import DAY

LAGER = ("Lager", " Beer", 1.0, 150, True)  # the same category, written otherwise
RETURNED = ("Vodka 0.7 l", "spirits", -1.0, -1299, True)


def spend(engine: Engine, first_night: int = 30) -> dict[tuple[str, str], float]:
    with Session(engine) as session:
        table = queries.alcohol_spend(
            session,
            store_id="S1",
            first=DAY - timedelta(days=first_night),
            day=DAY,
            bands=AGE_BANDS,
        )
    assert set(table["store_id"]) <= {"S1"}
    return {(r.band, r.category): r.spend for r in table.itertuples()}


def test_alcohol_spend_is_summed_per_band_and_category_as_written(engine: Engine) -> None:
    b = ResultsBuilder(engine)
    b.store("S1")
    b.store("S2")
    night = DAY.isoformat()
    before = (DAY - timedelta(days=3)).isoformat()
    ids = {
        "minor": b.sale("S1", "r1", f"{night} 12:00", items=(BEER, BREAD)),  # bread: no alcohol
        "edge": b.sale("S1", "r2", f"{night} 12:05", items=(BEER, LAGER)),
        "young": b.sale("S1", "r3", f"{night} 12:10", items=(SPIRITS, RETURNED)),  # -: nothing
        "old": b.sale("S1", "r4", f"{night} 12:15", items=(WINE,)),
        "no face": b.sale("S1", "r5", f"{night} 12:20", items=(WINE,)),
        "earlier": b.sale("S1", "r6", f"{before} 12:00", items=(WINE,)),
        "too early": b.sale("S1", "r7", "2023-12-01 12:00", items=(WINE,)),
    }
    other = b.sale("S2", "r1", f"{night} 12:00", items=(WINE,))
    b.verdicts(
        b.run("S1", DAY),
        [
            VerdictSpec(ids["minor"], 17.99, 2.0),
            VerdictSpec(ids["edge"], 18.0, 2.0),
            VerdictSpec(ids["young"], 24.9, 2.0),
            VerdictSpec(ids["old"], 65.0, 2.0),
            VerdictSpec(ids["no face"], None, kinds=["no_face"]),
        ],
    )
    b.verdicts(b.run("S1", DAY - timedelta(days=3)), [VerdictSpec(ids["earlier"], 40.0, 2.0)])
    b.verdicts(b.run("S1", DAY - timedelta(days=91)), [VerdictSpec(ids["too early"], 40.0, 2.0)])
    b.verdicts(b.run("S2", DAY), [VerdictSpec(other, 40.0, 2.0)])
    # a failed run of an earlier night does not count: only the current (succeeded) one
    b.verdicts(b.run("S1", DAY - timedelta(days=3), status="failed"), [])

    assert spend(engine) == {
        ("under 18", "beer"): 594.0,
        ("18–24", "beer"): 594.0,
        ("18–24", " Beer"): 150.0,
        ("18–24", "spirits"): 1299.0,
        ("35–49", "wine"): 899.0,
        ("65 and over", "wine"): 899.0,
    }
    assert spend(engine, first_night=0) == {
        k: v for k, v in spend(engine).items() if k != ("35–49", "wine")
    }


def test_no_alcohol_sold_with_a_face_is_no_row(engine: Engine) -> None:
    b = ResultsBuilder(engine)
    b.store("S1")
    sale = b.sale("S1", "r1", f"{DAY.isoformat()} 12:00", items=(BREAD,))
    b.verdicts(b.run("S1", DAY), [VerdictSpec(sale, 30.0, 2.0)])
    with Session(engine) as session:
        table = queries.alcohol_spend(session, store_id="S1", first=DAY, day=DAY, bands=AGE_BANDS)
    assert table.empty and list(table.columns) == queries.SPEND_COLUMNS
