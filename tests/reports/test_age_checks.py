"""Reports of stores whose tills record age checks, on SQLite and PostgreSQL: the rules each run
used, flagged sales by risk with their probability, and challenge rates checked against the
database's own rows."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from auditor.db.models import AuditRun, Sale, SaleVerdict
from auditor.reports import write_night_reports
from auditor.settings import Settings
from tests.factories import make_settings
from tests.reports.chain import (
    AUDIT_SETTINGS,
    ResultsBuilder,
    VerdictSpec,
    crop_jpeg,
    generated_night,
)
from tests.reports.html import Element, read

DAY = date(2024, 3, 1)
NOW = datetime(2024, 3, 2, 12, 0, tzinfo=UTC)
NY_RULES = {
    "legal_age": 21,
    "age_threshold": 25,
    "legal_hours_start": "10:00:00",
    "legal_hours_end": "22:00:00",
}
NY_SETTINGS = {**AUDIT_SETTINGS, "rules": NY_RULES}
OLD_SETTINGS = {"audit": {**AUDIT_SETTINGS["audit"], "age_threshold": 21}}  # before rules
HABITS = {"C1": 0.15, "C2": 0.9, "C3": 0.55}  # how often each cashier checks a young shopper
MIN_SALES = 6


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    # The settings give NY no legal age of its own: the reports must show what the runs used.
    return make_settings(
        tmp_path,
        database_url=db_url,
        stores=[
            {"id": "NY", "name": "New York 5th Ave", "timezone": "America/New_York"},
            {"id": "B", "name": "Berlin", "timezone": "Europe/Berlin"},
        ],
        reports={"min_sales_to_rank": MIN_SALES},
    )


def build(engine: Engine) -> dict[str, int]:
    """NY: four nights before with age checks (each cashier with a habit), and tonight's
    hand-made sales; B: a run recorded before stores had rules (threshold 21), whose POS has no
    age checks."""
    b = ResultsBuilder(engine)
    b.store("NY", "New York 5th Ave", "America/New_York")
    b.store("B", "Berlin")
    for n in range(1, 5):
        night = DAY - timedelta(days=n)
        generated_night(b, "NY", night, 80, seed=n, cashiers=3, checks=HABITS, settings=NY_SETTINGS)
    d = DAY.isoformat()
    minor, adult = date(2005, 6, 1), date(1990, 1, 1)

    def sale(receipt: str, hour: str, cashier: str = "C1", **till: Any) -> int:
        return b.sale("NY", receipt, f"{d} {hour}", cashier_id=cashier, **till)

    sales = {
        "birth": sale("r-birth", "10:00", age_check="id_scanned", birth_date=minor),
        "borrowed": sale("r-borrowed", "20:00", "C2", birth_date=adult),
        "young": sale("r-young", "12:00", age_check="visual"),
        "maybe": sale("r-maybe", "09:00", "C3", age_check="none"),
        "late": sale("r-late", "21:30", age_check="visual"),
        "noframe": sale("r-noframe", "08:30", age_check="none"),
        "checked": sale("r-checked", "15:00", "C2", age_check="id_checked"),
        "old": sale("r-old", "16:00", "C3", age_check="visual"),
    }
    crop = crop_jpeg(1)

    def verdict(name: str, age: float | None, p: float | None, *kinds: str, **more: Any):
        spread = 2.0 if age is not None else None
        p_threshold = None if p is None else min(1.0, p + 0.3)
        extra = {"crop": crop, **more} if kinds and kinds[0] != "outside_legal_hours" else more
        return VerdictSpec(
            sales[name], age, spread, kinds=list(kinds), p_under_legal=p,
            p_under_threshold=p_threshold, legal_age=21, **extra,
        )  # fmt: skip

    b.verdicts(
        b.run("NY", DAY, settings=NY_SETTINGS),
        [
            verdict("birth", 29.0, 0.02, "birth_date_under_age"),
            verdict("borrowed", 16.0, 0.97, "id_contradicts_face", challenged=True),
            verdict("young", 17.5, 0.953, "no_id_check"),
            verdict("maybe", 22.0, 0.4, "no_id_check", "outside_legal_hours"),
            verdict("late", 40.0, 0.0, "outside_legal_hours"),
            verdict("noframe", None, None, "no_frame", "outside_legal_hours", frames=0),
            verdict("checked", 19.0, 0.84, challenged=True),
            verdict("old", 45.0, 0.0),
        ],
    )
    berlin = b.sale("B", "b-young", f"{d} 19:00", cashier_id="K1")
    b.verdicts(
        b.run("B", DAY, settings=OLD_SETTINGS),
        [VerdictSpec(berlin, 19.0, 2.0, kinds=["under_age_threshold"], crop=crop, legal_age=None)],
        threshold=21,
    )
    return sales


def db_challenges(engine: Engine, store_id: str, first: date, last: date) -> dict[str, list]:
    """Per cashier: [ID checked, due] worked out from the sales' own columns: estimated under the
    run's threshold (25), at a till that records checks, and whether it recorded an ID check."""
    query = (
        sa.select(Sale.cashier_id, Sale.age_check, Sale.birth_date, SaleVerdict.estimated_age)
        .join(SaleVerdict, SaleVerdict.sale_id == Sale.id)
        .join(AuditRun, AuditRun.id == SaleVerdict.run_id)
        .where(
            AuditRun.store_id == store_id,
            AuditRun.status == "succeeded",
            AuditRun.business_date.between(first, last),
        )
    )
    counts: dict[str, list] = {}
    with engine.connect() as c:
        for cashier, check, born, age in c.execute(query):
            known = check is not None or born is not None
            if age is None or age >= 25 or not known:
                continue
            saw_id = born is not None or check in ("id_checked", "id_scanned")
            mine = counts.setdefault(cashier, [0, 0])
            mine[0] += saw_id
            mine[1] += 1
    return counts


def pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f} %" if whole else "–"


def rows_of(table: Element, attribute: str = "data-cashier") -> list[Element]:
    return [tr for tr in table.find("tbody").find_all("tr") if attribute in tr.attrs]


def test_the_store_page_opens_likely_minors_first_with_the_rules_the_run_used(
    engine: Engine, settings: Settings
) -> None:
    sale = build(engine)
    report = write_night_reports(engine=engine, settings=settings, day=DAY, now=NOW)
    page = read(report.store_pages["NY"])

    rows = rows_of(page.find("table", id="flagged-sales"), "data-receipt")
    # hard violations first (by P), then P(<21) highest first, then no P
    assert [r.attrs["data-receipt"] for r in rows] == [
        "r-borrowed",
        "r-birth",
        "r-young",
        "r-maybe",
        "r-late",
        "r-noframe",
    ]
    by_receipt = {r.attrs["data-receipt"]: r for r in rows}
    assert "data-violation" in by_receipt["r-borrowed"].attrs
    assert "data-violation" in by_receipt["r-birth"].attrs
    assert "data-violation" not in by_receipt["r-young"].attrs
    assert by_receipt["r-young"].field("p_under_legal") == "P(<21) 0.95"
    assert by_receipt["r-borrowed"].field("p_under_legal") == "P(<21) 0.97"
    assert not by_receipt["r-noframe"].has(data_field="p_under_legal")
    # every under-age kind is highlighted and shows its face; the others show none
    for receipt in ("r-borrowed", "r-birth", "r-young", "r-maybe"):
        assert "attention" in by_receipt[receipt].classes, receipt
        assert by_receipt[receipt].has("img"), receipt
    for receipt in ("r-late", "r-noframe"):
        assert "attention" not in by_receipt[receipt].classes
        assert not by_receipt[receipt].has("img")
    labels = {t.attrs["data-kind"]: t.text for t in by_receipt["r-maybe"].find_all(data_kind=True)}
    assert labels == {"no_id_check": "no ID check", "outside_legal_hours": "outside legal hours"}

    headline = page.find(id="headline")
    assert headline.find(data_figure="under_age").text == "4"
    # tonight: r-checked and r-borrowed were challenged; r-young and r-maybe were not
    assert headline.find(data_figure="challenge_rate").text == "50.0 %"
    used = page.find(id="settings-used")
    assert used.field("legal_age") == "21 years"
    assert used.field("age_threshold") == "25 years"
    assert used.field("legal_hours") == "10:00–22:00"
    assert page.field("rules") == "legal age 21, threshold 25"
    assert page.find("figure", data_chart="challenges").has("svg")
    kinds = {e.attrs["data-kind-count"]: e.text for e in page.find_all(data_kind_count=True)}
    assert kinds["birth_date_under_age"] == "birth date under legal age: 1"
    assert kinds["no_id_check"] == "no ID check: 2"
    assert len(sale) == 8


def test_cashiers_are_ranked_by_challenge_rate_from_the_databases_rows(
    engine: Engine, settings: Settings
) -> None:
    build(engine)
    report = write_night_reports(engine=engine, settings=settings, day=DAY, now=NOW)
    page = read(report.store_pages["NY"])
    tonight = db_challenges(engine, "NY", DAY, DAY)
    before = db_challenges(engine, "NY", DAY - timedelta(days=30), DAY - timedelta(days=1))
    rows = rows_of(page.find("table", id="challenges"))
    assert {r.attrs["data-cashier"] for r in rows} == {"C1", "C2", "C3"}
    windows = []
    for row in rows:
        cashier = row.attrs["data-cashier"]
        checked, due = tonight.get(cashier, [0, 0])
        assert row.field("challenged") == f"{checked} of {due}", cashier
        assert row.field("challenge_rate") == pct(checked, due), cashier
        past_checked, past_due = before.get(cashier, [0, 0])
        assert row.field("before_rate") == pct(past_checked, past_due), cashier
        window = (checked + past_checked, due + past_due)
        assert row.field("window_rate") == pct(*window), cashier
        assert window[1] >= MIN_SALES  # enough young-looking shoppers: every one is ranked
        windows.append(window[0] / window[1])
        # a change on a night of few young-looking shoppers is no signal: shown without colour
        change = row.find(data_field="change")
        quiet = change.has(data_quiet=True)
        assert quiet == (due < MIN_SALES), cashier
        if quiet:
            assert not any({"up", "down"} & e.classes for e in change.iter()), cashier
    assert [r.field("rank") for r in rows] == ["1", "2", "3"]
    assert windows == sorted(windows)  # lowest challenge rate first
    # the cashier who rarely checks heads the list, the one who nearly always does ends it
    assert [rows[0].attrs["data-cashier"], rows[-1].attrs["data-cashier"]] == ["C1", "C2"]
    assert not page.has(data_caution="few_checks")


def test_the_chain_index_shows_each_stores_rules_and_ranks_the_chains_cashiers(
    engine: Engine, settings: Settings
) -> None:
    build(engine)
    report = write_night_reports(engine=engine, settings=settings, day=DAY, now=NOW)
    index = read(report.index)
    stores = {
        tr.attrs["data-store"]: tr for tr in rows_of(index.find("table", id="stores"), "data-store")
    }
    assert (stores["NY"].field("legal_age"), stores["NY"].field("age_threshold")) == ("21", "25")
    # a run recorded before stores had rules: its [audit] threshold and the legal age 18
    assert (stores["B"].field("legal_age"), stores["B"].field("age_threshold")) == ("18", "21")
    checked = sum(c for c, _ in db_challenges(engine, "NY", DAY, DAY).values())
    due = sum(d for _, d in db_challenges(engine, "NY", DAY, DAY).values())
    assert stores["NY"].field("challenge_rate") == pct(checked, due) == "50.0 %"
    assert stores["B"].field("challenge_rate") == "–"  # no age checks at its tills
    past = db_challenges(engine, "NY", DAY - timedelta(days=30), DAY - timedelta(days=1))
    assert stores["NY"].field("before_challenge_rate") == pct(
        sum(c for c, _ in past.values()), sum(d for _, d in past.values())
    )
    # under-age flags of every kind count: NY 4 sales, B 1
    assert index.find(data_figure="under_age").text == "5"
    assert "warn" in stores["NY"].find(data_field="no_id_check").classes

    cashiers = rows_of(index.find("table", id="challenges"))
    assert [(r.attrs["data-store"], r.attrs["data-cashier"]) for r in cashiers] == [
        ("NY", "C1"),
        ("NY", "C3"),
        ("NY", "C2"),
    ]
    assert [r.field("rank") for r in cashiers] == ["1", "2", "3"]
    assert cashiers[0].field("store").startswith("New York 5th Ave")
    # B's cashier has no sale at a till that records checks: not ranked, and said so
    caution = index.find(data_caution="few_checks").text
    assert caution.startswith("⚠ 1 cashier with fewer than 6")


def _flagged_receipts(page: Element) -> list[str]:
    return [
        r.attrs["data-receipt"]
        for r in rows_of(page.find("table", id="flagged-sales"), "data-receipt")
    ]


def test_a_store_without_age_checks_keeps_its_page_as_before(
    engine: Engine, settings: Settings
) -> None:
    build(engine)
    report = write_night_reports(engine=engine, settings=settings, day=DAY, now=NOW)
    page = read(report.store_pages["B"])
    assert _flagged_receipts(page) == ["b-young"]
    row = page.find("tr", data_receipt="b-young")
    assert "attention" in row.classes and row.has("img")
    assert not row.has(data_field="p_under_legal")  # no probability recorded by an old run
    assert page.find(data_figure="challenge_rate").text == "–"
    used = page.find(id="settings-used")
    assert (used.field("legal_age"), used.field("age_threshold")) == ("18 years", "21 years")
    assert page.find(data_empty_chart="challenges")
