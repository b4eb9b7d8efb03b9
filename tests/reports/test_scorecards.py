"""Cashier scorecards over the window, camera problems per register, review counts and the
chain's nights: the figures from hand-built tables, then the pages written for a chain."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from auditor.db.models import AuditRun, Sale, SaleVerdict
from auditor.flag_filters import FlagFilter
from auditor.reports import queries, write_night_reports
from auditor.reports.figures import (
    NightTotals,
    Tally,
    camera_rows,
    chain_trend,
    review_counts,
    scorecard,
    tally,
    week_spans,
    wilson_interval,
)
from auditor.reports.queries import CASHIER_COLUMNS
from auditor.vocabulary import AGE_KINDS, CAMERA_KINDS, FlagKind, ReviewFilter
from tests.reports.conftest import DAY, ScorecardChain
from tests.reports.html import Element, read
from tests.reports.test_figures import review, reviews, table, verdict, verdicts

NOW = datetime(2024, 3, 2, 6, 0, tzinfo=UTC)
NO_CASHIERS = table(CASHIER_COLUMNS, [])


def night(day: date, cashier: str, n: int, under: int, first_id: int, **values: Any) -> list[dict]:
    """``n`` sales of ``cashier`` on ``day``, the first ``under`` flagged under age."""
    return [
        verdict(
            first_id + i,
            "no_id_check" if i < under else "",
            business_date=day,
            cashier_id=cashier,
            **values,
        )
        for i in range(n)
    ]


# -- the figures ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "part,whole,expected",
    [
        (0, 0, None),
        (0, 10, (0.0, 0.2775)),
        (1, 2, (0.0945, 0.9055)),
        (3, 200, (0.0051, 0.0432)),
        (10, 10, (0.7225, 1.0)),
    ],
)
def test_wilson_interval(part: int, whole: int, expected: tuple[float, float] | None) -> None:
    found = wilson_interval(part, whole)
    if expected is None:
        assert found is None
    else:
        assert found == pytest.approx(expected, abs=5e-4)


@pytest.mark.parametrize(
    "kinds,faces,checked,under_age",
    [
        ("", 1, 1, 0),  # a clean sale with a face: checked
        ("under_age_threshold", 1, 1, 1),
        ("no_frame", 0, 0, 0),  # a camera problem: not checked, not against the cashier
        ("no_face", 0, 0, 0),
        ("unreadable_frame", 0, 0, 0),
        ("no_frame;birth_date_under_age", 0, 1, 1),  # the till's birth date judges it anyway
        ("outside_legal_hours", 1, 1, 0),
    ],
)
def test_a_sale_counts_as_checked_when_the_age_rules_could_judge_it(
    kinds: str, faces: int, checked: int, under_age: int
) -> None:
    assert tally(verdicts(verdict(1, kinds, faces_found=faces)), set()) == Tally(
        1, checked, under_age, 0
    )


@pytest.mark.parametrize(
    "day,nights,spans",
    [
        (date(2024, 3, 1), 6, [(date(2024, 2, 24), date(2024, 3, 1))]),
        (
            date(2024, 3, 1),
            9,
            [(date(2024, 2, 21), date(2024, 2, 23)), (date(2024, 2, 24), date(2024, 3, 1))],
        ),
        (date(2024, 3, 1), 0, [(date(2024, 3, 1), date(2024, 3, 1))]),
    ],
)
def test_weeks_end_tonight_and_the_oldest_is_cut_at_the_window(
    day: date, nights: int, spans: list[tuple[date, date]]
) -> None:
    assert week_spans(day, nights) == spans
    assert len(week_spans(day, 30)) == 5


def test_scorecard_ranks_by_the_window_with_the_interval_and_tonight_beside() -> None:
    before = DAY - timedelta(days=3)
    rows = [
        # A: 4 of 40 under age over the window, 1 of 2 tonight (a quiet night)
        *night(before, "A", 38, 3, 1),
        *night(DAY, "A", 2, 1, 100),
        # B: 12 of 100, busy tonight (25 sales, 5 under age)
        *night(before, "B", 75, 7, 200),
        *night(DAY, "B", 25, 5, 300),
        # C: 3 of 5 under age, but five sales are too few to rank
        *night(DAY, "C", 5, 3, 400),
        # D: 30 sales, half with the camera off: 15 checked, under 20, not ranked
        *night(before, "D", 15, 0, 500),
        *night(before, "D", 15, 0, 600, flag_kinds="no_frame", faces_found=0),
    ]
    confirmed = reviews(review(1, "no_id_check", "confirmed_violation", 1))
    cards = scorecard(
        verdicts=verdicts(*rows),
        reviews=confirmed,
        cashiers=table(CASHIER_COLUMNS, [{"cashier_id": "A", "name": "Ann"}]),
        day=DAY,
        nights=30,
        min_sales=20,
        store_id="S1",
    )
    table_of = {
        c.cashier_id: (c.rank, c.window.sales, c.window.checked, c.window.under_age) for c in cards
    }
    # B (12/100, lower bound 7.0 %) ranks above A (4/40, 4.0 %) though A's rate is lower
    assert [c.cashier_id for c in cards] == ["B", "A", "C", "D"]
    assert table_of == {
        "B": (1, 100, 100, 12),
        "A": (2, 40, 40, 4),
        "C": (None, 5, 5, 3),
        "D": (None, 30, 15, 0),
    }
    b, a = cards[0], cards[1]
    assert b.window.interval == pytest.approx((0.0700, 0.1981), abs=5e-4)
    assert a.name == "Ann" and a.window.confirmed == 1 and a.tonight.confirmed == 0
    assert (a.tonight.sales, a.tonight.under_age, a.quiet) == (2, 1, True)
    assert (b.tonight.sales, b.tonight.under_age, b.quiet) == (25, 5, False)
    assert b.change == pytest.approx(5 / 25 - 7 / 75)
    assert [w.tally.sales for w in a.weeks] == [0, 0, 0, 0, 40]  # both nights in the last week
    assert not cards[2].ranked and cards[2].window.rate == pytest.approx(0.6)


def test_camera_problems_count_per_register_not_against_the_cashier() -> None:
    before = DAY - timedelta(days=1)
    rows = verdicts(
        verdict(1, "no_frame", register_id="R1", business_date=before, faces_found=0),
        verdict(2, "no_frame", register_id="R1", faces_found=0),
        verdict(3, "unreadable_frame", register_id="R1", faces_found=0),
        verdict(4, "no_face;outside_legal_hours", register_id="R2", faces_found=0),
        verdict(5, "", register_id="R2"),
        verdict(6, "under_age_threshold", register_id="R2"),
        verdict(7, "", register_id="R3", business_date=before),
    )
    registers = camera_rows(verdicts=rows, day=DAY, min_sales=3)
    found = {
        r.register_id: (
            r.window.sales,
            r.window.problems,
            {k: r.window.by_kind[k] for k in sorted(CAMERA_KINDS)},
            r.tonight.sales,
            r.tonight.problems,
            r.enough,
        )
        for r in registers
    }
    assert [r.register_id for r in registers] == ["R1", "R2", "R3"]  # worst first
    assert found == {
        "R1": (3, 3, {"no_face": 0, "no_frame": 2, "unreadable_frame": 1}, 2, 2, True),
        "R2": (3, 1, {"no_face": 1, "no_frame": 0, "unreadable_frame": 0}, 3, 1, True),
        "R3": (1, 0, {"no_face": 0, "no_frame": 0, "unreadable_frame": 0}, 0, 0, False),
    }
    # the cashier on duty: one under-age sale of the three checked, the four camera faults aside
    (card,) = scorecard(
        verdicts=rows, reviews=reviews(), cashiers=NO_CASHIERS, day=DAY, nights=30, min_sales=1
    )
    assert (card.window.sales, card.window.checked, card.window.under_age) == (7, 3, 1)


def test_review_counts_count_sales_open_and_confirmed() -> None:
    rows = verdicts(
        verdict(1, "under_age_threshold;outside_legal_hours"),  # one kind decided: open
        verdict(2, "under_age_threshold"),  # confirmed, then revised to adult
        verdict(3, "no_frame"),  # decided
        verdict(4, "no_id_check"),  # confirmed
        verdict(5, ""),  # not flagged
    )
    decisions = reviews(
        review(1, "under_age_threshold", "adult", 1),
        review(2, "under_age_threshold", "confirmed_violation", 2),
        review(2, "under_age_threshold", "adult", 3),
        review(3, "no_frame", "not_valid_frame", 4),
        review(4, "no_id_check", "confirmed_violation", 5),
    )
    counts = review_counts(rows, decisions)
    assert (counts.open, counts.confirmed) == (1, 1)


def test_the_chain_trend_pools_the_stores_and_leaves_gaps() -> None:
    totals = {
        DAY: NightTotals(DAY, stores=2, alcohol_sales=200, flagged_sales=30, under_age=10),
        DAY - timedelta(days=2): NightTotals(DAY, stores=1, alcohol_sales=50, flagged_sales=5),
    }
    points = chain_trend(totals, day=DAY, nights=2)
    assert [p.day for p in points] == [DAY - timedelta(days=n) for n in (2, 1, 0)]
    assert [p.flag_rate for p in points] == [0.1, None, 0.15]
    assert points[-1].under_age_rate == pytest.approx(0.05)


# -- the pages -----------------------------------------------------------------------------------


def db_window(engine: Engine, store_id: str, first: date, last: date) -> pd.DataFrame:
    query = (
        sa.select(
            Sale.id.label("sale_id"),
            Sale.cashier_id,
            Sale.register_id,
            AuditRun.business_date,
            SaleVerdict.flag_kinds,
            SaleVerdict.faces_found,
            SaleVerdict.p_under_legal,
            Sale.sold_at,
            Sale.receipt_id,
        )
        .join(SaleVerdict, SaleVerdict.sale_id == Sale.id)
        .join(AuditRun, AuditRun.id == SaleVerdict.run_id)
        .where(
            AuditRun.store_id == store_id,
            AuditRun.status == "succeeded",
            AuditRun.business_date >= first,
            AuditRun.business_date <= last,
        )
    )
    with engine.connect() as c:
        return pd.DataFrame([dict(r._mapping) for r in c.execute(query)])


def kinds(value: str) -> set[str]:
    return {k for k in value.split(";") if k}


def rows_by(element: Element, attribute: str) -> dict[str, Element]:
    return {tr.attrs[attribute]: tr for tr in element.find("tbody").find_all("tr")}


def test_store_page_scorecard_and_cameras_match_the_database(
    engine: Engine, scorecard_chain: ScorecardChain
) -> None:
    settings = scorecard_chain.settings
    report = write_night_reports(engine=engine, settings=settings, day=DAY, now=NOW)
    page = read(report.store_pages["S1"])
    window = db_window(engine, "S1", DAY - timedelta(days=30), DAY)
    window["under"] = [bool(kinds(k) & set(AGE_KINDS)) for k in window["flag_kinds"]]
    window["camera"] = [bool(kinds(k) & set(CAMERA_KINDS)) for k in window["flag_kinds"]]
    window["checked"] = (window["faces_found"] > 0) | window["under"]

    cards = rows_by(page.find("table", id="scorecard"), "data-cashier")
    assert list(cards)[0] == "C1"  # checks one young-looking shopper in ten
    assert [c.field("rank") for c in cards.values()] == ["1", "2", "3", "4"]
    for cashier_id, row in cards.items():
        mine = window[window["cashier_id"] == cashier_id]
        tonight = mine[mine["business_date"] == DAY]
        assert row.field("sales") == str(len(mine))
        assert row.field("checked") == str(int(mine["checked"].sum()))
        assert row.field("under_age") == str(int(mine["under"].sum()))
        rate = 100 * mine["under"].sum() / mine["checked"].sum()
        assert row.field("rate") == f"{rate:.1f} %"
        assert row.field("tonight_sales") == str(len(tonight))
        assert len(row.find(data_field="weeks").find_all("span", data_week=True)) == 5
    assert cards["C1"].field("confirmed") == "3"

    registers = rows_by(page.find("table", id="cameras"), "data-register")
    assert set(registers) == {"R1", "R2", "R3", "R4"}
    for register_id, row in registers.items():
        mine = window[window["register_id"] == register_id]
        assert row.field("sales") == str(len(mine))
        for kind in CAMERA_KINDS:
            count = sum(kind in kinds(k) for k in mine["flag_kinds"])
            assert row.field(kind).split()[0] == str(count)
        assert row.field("rate") == f"{100 * mine['camera'].sum() / len(mine):.1f} %"
        tonight = mine[mine["business_date"] == DAY]
        assert row.field("tonight_problems") == str(int(tonight["camera"].sum()))

    # the trends are drawn with the chain's average beside the store's
    trend = page.find("figure", data_chart="trend")
    assert trend.has("svg") and "flag rate, chain" in trend.text and "tonight" in trend.text


def test_cashier_page_shows_the_weeks_and_the_flagged_sales_of_the_window(
    engine: Engine, scorecard_chain: ScorecardChain
) -> None:
    settings = scorecard_chain.settings
    report = write_night_reports(engine=engine, settings=settings, day=DAY, now=NOW)
    path = report.cashier_pages["S1"]["C1"]
    assert path == settings.report_dir / "2024-03-01" / "S1" / "C1.html"
    page = read(path)
    window = db_window(engine, "S1", DAY - timedelta(days=30), DAY)
    mine = window[window["cashier_id"] == "C1"]
    under = [bool(kinds(k) & set(AGE_KINDS)) for k in mine["flag_kinds"]]
    assert page.find(data_figure="sales").text == str(len(mine))
    assert page.find(data_figure="under_age").text == str(sum(under))
    assert page.find(data_figure="confirmed").text == "3"
    assert page.find(data_figure="rank").text == "1"

    weeks = rows_by(page.find("table", id="cashier-weeks"), "data-week")
    assert sum(int(w.field("sales")) for w in weeks.values()) == len(mine)
    assert list(weeks)[-1] == DAY.isoformat()

    # flagged sales of the window, camera problems alone left out; dates with the times
    listed = rows_by(page.find("table", id="flagged-sales"), "data-sale")
    expected = {
        str(s)
        for s, k in zip(mine["sale_id"], mine["flag_kinds"], strict=True)
        if kinds(k) - set(CAMERA_KINDS)
    }
    assert set(listed) == expected
    assert all(r.has(data_field="date") for r in listed.values())
    for sale_id in scorecard_chain.confirmed:
        assert listed[str(sale_id)].has(data_decision="confirmed_violation")
    assert page.find("nav").find(data_nav="store").attrs["href"] == "../S1.html"


def test_a_cashier_page_embeds_the_faces_of_its_own_night_only(
    engine: Engine, scorecard_chain: ScorecardChain
) -> None:
    # a page keeps the window's flagged sales, but the faces of earlier nights stay on their
    # own night's pages, so the purge of a night's crops leaves no copy on a later page
    report = write_night_reports(engine=engine, settings=scorecard_chain.settings, day=DAY, now=NOW)
    window = db_window(engine, "S1", DAY - timedelta(days=30), DAY)
    night_of = dict(zip(window["sale_id"].astype(str), window["business_date"], strict=True))
    rows = rows_by(
        read(report.cashier_pages["S1"]["C1"]).find("table", id="flagged-sales"), "data-sale"
    )
    with_face = {sale for sale, row in rows.items() if "data:image/jpeg" in str(row)}
    assert with_face and {night_of[sale] for sale in with_face} == {DAY}
    assert {night_of[sale] for sale in rows} - {DAY}  # earlier nights' sales still listed


def test_a_cashier_off_the_scorecard_keeps_no_page(
    engine: Engine, scorecard_chain: ScorecardChain
) -> None:
    settings = scorecard_chain.settings
    report = write_night_reports(engine=engine, settings=settings, day=DAY, now=NOW)
    folder = report.cashier_pages["S1"]["C1"].parent
    gone = folder / "C9.html"  # a page of a cashier the night's run no longer has
    gone.write_text("<img src='data:image/jpeg;base64,AAAA'>")
    write_night_reports(engine=engine, settings=settings, day=DAY, now=NOW)
    assert not gone.exists()
    assert sorted(p.name for p in folder.glob("*.html")) == sorted(
        f"{c}.html" for c in report.cashier_pages["S1"]
    )


def test_cashier_page_lists_the_riskiest_flagged_sales_and_links_the_rest(
    engine: Engine, scorecard_chain: ScorecardChain, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(queries, "EVIDENCE_CHUNK", 2)  # the evidence read in several queries
    base = scorecard_chain.settings
    settings = base.model_copy(
        update={
            "reports": base.reports.model_copy(update={"cashier_sales": 5}),
            "web": base.web.model_copy(update={"base_url": "https://review.example/app"}),
        }
    )
    report = write_night_reports(engine=engine, settings=settings, day=DAY, now=NOW)
    page = read(report.cashier_pages["S1"]["C1"])
    window = db_window(engine, "S1", DAY - timedelta(days=30), DAY)
    mine = window[window["cashier_id"] == "C1"]
    mine = mine[[bool(kinds(k) - set(CAMERA_KINDS)) for k in mine["flag_kinds"]]].copy()
    assert len(mine) > 5
    # the review app's order: violations, then P(under the legal age), then newest first
    mine["violation"] = [
        any(FlagKind(k).is_violation for k in kinds(v)) for v in mine["flag_kinds"]
    ]
    mine["p"] = mine["p_under_legal"].fillna(-1.0)
    expected = mine.sort_values(
        ["violation", "p", "sold_at", "receipt_id"], ascending=False, kind="stable"
    )
    rows = page.find("table", id="flagged-sales").find("tbody").find_all("tr")
    assert [r.attrs["data-sale"] for r in rows] == [str(s) for s in expected["sale_id"][:5]]
    assert page.find(data_figure="flagged_total").text == str(len(mine))
    notice = page.find(data_notice="more_flagged")
    assert f"The 5 highest in risk of {len(mine)} flagged sales" in notice.text
    # every listed sale's evidence was read, across the chunks
    for row in rows:
        assert row.find(data_field="items").text.strip() not in ("", "–")
    href = notice.find("a", data_link="all_flagged").attrs["href"]
    address, query = href.split("?")
    assert address == "https://review.example/app/flags"
    asked = FlagFilter.from_args(dict(parse_qsl(query)))
    assert asked == FlagFilter(
        first=DAY - timedelta(days=30),
        last=DAY,
        store="S1",
        cashier="C1",
        status=ReviewFilter.ALL,
    )


def test_nights_list_counts_sales_as_the_chain_index(
    engine: Engine, scorecard_chain: ScorecardChain
) -> None:
    settings = scorecard_chain.settings
    earlier = DAY - timedelta(days=1)
    write_night_reports(engine=engine, settings=settings, day=earlier, now=NOW)
    report = write_night_reports(engine=engine, settings=settings, day=DAY, now=NOW)
    nights = rows_by(
        read(settings.report_dir / "index.html").find("table", id="nights"), "data-night"
    )
    assert list(nights) == [DAY.isoformat(), earlier.isoformat()]
    for day, row in ((DAY, nights[DAY.isoformat()]), (earlier, nights[earlier.isoformat()])):
        sales = pd.concat([db_window(engine, s, day, day) for s in ("S1", "S2")])
        flagged = [bool(kinds(k)) for k in sales["flag_kinds"]]
        under = [bool(kinds(k) & set(AGE_KINDS)) for k in sales["flag_kinds"]]
        assert row.field("stores") == "2"
        assert row.field("alcohol_sales") == str(len(sales))
        assert row.field("flagged_sales") == str(sum(flagged))
        assert row.field("flag_rate") == f"{100 * sum(flagged) / len(sales):.1f} %"
        assert row.field("under_age") == str(sum(under))
        confirmed = scorecard_chain.confirmed
        still_open = [
            bool(kinds(k)) and (s not in confirmed or bool(kinds(k) - {"no_id_check"}))
            for s, k in zip(sales["sale_id"], sales["flag_kinds"], strict=True)
        ]
        assert row.field("open_reviews") == str(sum(still_open))
        assert row.field("confirmed") == str(sum(s in confirmed for s in sales["sale_id"]))
    # the chain index of tonight shows the same counts as its line in the list
    index = read(report.index)
    tonight = nights[DAY.isoformat()]
    assert index.find("tfoot").field("alcohol_sales") == tonight.field("alcohol_sales")
    assert index.find("tfoot").field("flagged_sales") == tonight.field("flagged_sales")
    assert index.find("tfoot").field("open_reviews") == tonight.field("open_reviews")
    assert index.find(data_figure="under_age").text == tonight.field("under_age")
