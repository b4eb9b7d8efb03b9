"""The report figures (pure): tables in, figures out."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from auditor.reports import figures
from auditor.reports.figures import (
    Baseline,
    MixSpend,
    NightFigures,
    RunState,
    StoreRow,
    age_band,
    current_reviews,
    flagged_sales,
    hourly,
    mix_spend,
    mix_table,
    night_figures,
    nightly_trend,
    rank_stores,
    run_state,
    store_rows,
    wilson_lower,
)
from auditor.reports.queries import (
    CASHIER_COLUMNS,
    FLAG_COLUMNS,
    LINE_COLUMNS,
    REVIEW_COLUMNS,
    RUN_COLUMNS,
    STORE_COLUMNS,
    VERDICT_COLUMNS,
)
from auditor.vocabulary import FlagKind

BERLIN = ZoneInfo("Europe/Berlin")
DAY = date(2024, 3, 1)
UNDER = "under_age_threshold"


def table(
    columns: list[str], rows: list[dict[str, Any]], times: tuple[str, ...] = ()
) -> pd.DataFrame:
    frame = pd.DataFrame([{c: r.get(c) for c in columns} for r in rows], columns=columns)
    for column in times:
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


def verdict(sale_id: int, kinds: str = "", **values: Any) -> dict[str, Any]:
    row = {
        "run_id": 1,
        "business_date": DAY,
        "store_id": "S1",
        "sale_id": sale_id,
        "register_id": "R1",
        "cashier_id": "C1",
        "receipt_id": f"r{sale_id}",
        "sold_at": datetime(2024, 3, 1, 12, 0, tzinfo=UTC) + timedelta(minutes=sale_id),
        "estimated_age": 40.0,
        "age_spread": 3.0,
        "frames_matched": 1,
        "frames_read": 1,
        "faces_found": 1,
        "flag_kinds": kinds,
    }
    row.update(values)
    return row


def verdicts(*rows: dict[str, Any]) -> pd.DataFrame:
    return table(VERDICT_COLUMNS, list(rows), ("sold_at",))


def review(sale_id: int, kind: str, decision: str, minute: int, review_id: int = 0) -> dict:
    return {
        "review_id": review_id or minute,
        "sale_id": sale_id,
        "flag_kind": kind,
        "decision": decision,
        "comment": "",
        "reviewed_at": datetime(2024, 3, 2, 9, minute, tzinfo=UTC),
        "reviewer": "lp",
    }


def reviews(*rows: dict[str, Any]) -> pd.DataFrame:
    return table(REVIEW_COLUMNS, list(rows), ("reviewed_at",))


# -- rates and bounds ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "flagged,total,expected",
    [
        (0, 0, 0.0),
        (0, 10, 0.0),
        (1, 2, 0.0945),
        (30, 100, 0.2189),
        (10, 10, 0.7225),
        (40, 500, 0.0593),
    ],
)
def test_wilson_lower_bound(flagged: int, total: int, expected: float) -> None:
    assert wilson_lower(flagged, total) == pytest.approx(expected, abs=5e-4)


def test_night_figures_count_sales_frames_faces_and_each_kind() -> None:
    night = night_figures(
        verdicts(
            verdict(1),
            verdict(2, UNDER, estimated_age=19.0),
            verdict(3, "no_frame", frames_matched=0, faces_found=0, estimated_age=None),
            verdict(4, f"{UNDER};outside_legal_hours", estimated_age=17.0),
            verdict(5, "no_face", faces_found=0, estimated_age=None),
            verdict(6, "no_id_check", estimated_age=21.0),
            verdict(7, "birth_date_under_age;outside_legal_hours", estimated_age=30.0),
            verdict(8, "id_contradicts_face", estimated_age=15.0),
            verdict(9, estimated_age=20.0, challenged=True),  # ID checked: no flag
            verdict(10, "pos_error", estimated_age=22.0, challenged=True),
        )
    )
    assert (night.alcohol_sales, night.sales_with_frames, night.sales_with_face) == (10, 9, 8)
    # every kind of AGE_KINDS counts as an under-age flag
    assert (night.flagged_sales, night.under_age, night.flags) == (8, 5, 10)
    assert night.flags_by_kind == {
        "birth_date_under_age": 1,
        "id_contradicts_face": 1,
        "no_id_check": 1,
        UNDER: 2,
        "no_frame": 1,
        "no_face": 1,
        "unreadable_frame": 0,
        "outside_legal_hours": 2,
        "pos_error": 1,
    }
    assert night.flag_rate == pytest.approx(0.8)
    assert night.frame_coverage == pytest.approx(0.9)
    # challenged: 9 and 10; due: those and the sale without an ID check (6)
    assert night.challenges == figures.Challenges(challenged=2, due=3)
    assert night.challenges.rate == pytest.approx(2 / 3)


def test_an_empty_night_has_no_rates() -> None:
    night = night_figures(verdicts())
    assert night.alcohol_sales == 0
    assert night.flag_rate is None and night.frame_coverage is None


# -- run states ----------------------------------------------------------------------------------


def run(run_id: int, status: str, minute: int, error: str | None = None) -> dict[str, Any]:
    return {
        "id": run_id,
        "store_id": "S1",
        "business_date": DAY,
        "status": status,
        "started_at": datetime(2024, 3, 2, 1, minute, tzinfo=UTC),
        "error": error,
        "settings": {},
    }


@pytest.mark.parametrize(
    "attempts,state,current,later",
    [
        ([], "not_audited", None, None),
        ([run(1, "succeeded", 0)], "audited", 1, None),
        ([run(1, "failed", 0, "disk full")], "failed", None, None),
        ([run(1, "running", 0)], "running", None, None),
        ([run(1, "failed", 0), run(2, "succeeded", 5)], "audited", 2, None),
        ([run(1, "succeeded", 0), run(2, "failed", 5, "boom")], "audited", 1, 2),
        ([run(1, "replaced", 0), run(2, "succeeded", 5), run(3, "running", 9)], "audited", 2, 3),
    ],
)
def test_run_state(
    attempts: list[dict], state: str, current: int | None, later: int | None
) -> None:
    got = run_state(table(RUN_COLUMNS, attempts, ("started_at",)))
    assert got.state == state
    assert (got.current or {}).get("id") == current
    assert (got.later_attempt or {}).get("id") == later


# -- ranking -------------------------------------------------------------------------------------


def row(
    store_id: str, sales: int, flagged: int, under: int = 0, state: str = "audited"
) -> StoreRow:
    current = {"id": 1} if state == "audited" else None
    kinds = dict.fromkeys(FlagKind, 0) | {UNDER: under}
    return StoreRow(
        store_id=store_id,
        name="",
        timezone="Europe/Berlin",
        run=RunState(state, current, current),
        night=NightFigures(sales, sales, sales, flagged, kinds, under_age=under),
        baseline=Baseline(),
    )


@pytest.mark.parametrize(
    "rows,order",
    [
        # a store without results heads the list, whatever the others' figures
        ([row("A", 100, 50), row("B", 0, 0, state="failed")], ["B", "A"]),
        ([row("A", 100, 50), row("B", 0, 0, state="not_audited")], ["B", "A"]),
        # the rate is discounted for few sales: 1 in 2 ranks below 30 in 100
        ([row("A", 2, 1), row("B", 100, 30)], ["B", "A"]),
        ([row("A", 500, 40), row("B", 100, 30)], ["B", "A"]),
        # equal bounds: more under-age flags first, then more flagged sales, then the id
        ([row("A", 100, 30, under=1), row("B", 100, 30, under=5)], ["B", "A"]),
        ([row("B", 0, 0), row("A", 0, 0)], ["A", "B"]),
        # cameras off: every sale flagged, so it ranks first among audited stores
        ([row("A", 200, 40, under=20), row("B", 150, 150)], ["B", "A"]),
    ],
)
def test_rank_stores(rows: list[StoreRow], order: list[str]) -> None:
    ranked = rank_stores(rows)
    assert [r.store_id for r in ranked] == order
    assert [r.rank for r in ranked] == list(range(1, len(order) + 1))


def test_store_rows_use_the_night_and_the_nights_before_only() -> None:
    stores = table(STORE_COLUMNS, [{"id": "S1", "name": "One", "timezone": "Europe/Berlin"}])
    runs = table(
        RUN_COLUMNS,
        [
            {**run(n, "succeeded", 0), "business_date": DAY - timedelta(days=n)}
            for n in (0, 1, 2, 40)
        ],
        ("started_at",),
    )
    rows = [
        verdict(1, UNDER),
        verdict(2),
        verdict(3, UNDER, business_date=DAY - timedelta(days=1)),
        verdict(4, business_date=DAY - timedelta(days=2)),
        verdict(5, business_date=DAY - timedelta(days=2)),
        verdict(6, business_date=DAY - timedelta(days=2)),
        verdict(7, UNDER, business_date=DAY - timedelta(days=40)),  # outside the window
    ]
    (got,) = store_rows(stores=stores, runs=runs, verdicts=verdicts(*rows), day=DAY, nights=30)
    assert got.night.alcohol_sales == 2 and got.night.flagged_sales == 1
    assert got.baseline == Baseline(nights=2, alcohol_sales=4, flagged_sales=1, under_age=1)
    assert got.change == pytest.approx(0.5 - 0.25)


# -- reviews and cashiers ------------------------------------------------------------------------


def test_the_latest_review_of_a_sale_and_kind_is_current() -> None:
    current = current_reviews(
        reviews(
            review(1, UNDER, "confirmed_violation", 1),
            review(1, UNDER, "id_checked", 5),
            review(1, "outside_legal_hours", "confirmed_violation", 2),
            review(2, UNDER, "adult", 3),
            review(2, UNDER, "confirmed_violation", 3, review_id=99),  # same time: later id wins
        )
    )
    got = {(r.sale_id, r.flag_kind): r.decision for r in current.itertuples()}
    assert got == {
        (1, UNDER): "id_checked",
        (1, "outside_legal_hours"): "confirmed_violation",
        (2, UNDER): "confirmed_violation",
    }
    assert figures.confirmed_sales(current) == {1, 2}


def flag(sale_id: int, kind: str, crop: bytes | None = None, purged: bool = False) -> dict:
    return {
        "flag_id": sale_id * 10,
        "run_id": 1,
        "sale_id": sale_id,
        "kind": kind,
        "face_crop": crop,
        "evidence_purged_at": datetime(2025, 1, 1, tzinfo=UTC) if purged else None,
    }


def line(sale_id: int, no: int, product: str, quantity: float, alcohol: bool, cat: str = "beer"):
    return {
        "sale_id": sale_id,
        "line_no": no,
        "product_name": product,
        "category": cat,
        "quantity": quantity,
        "amount_cents": 100,
        "is_alcohol": alcohol,
    }


def test_flagged_sales_carry_evidence_items_reviews_and_local_time() -> None:
    night = verdicts(
        verdict(1),  # clean: not listed
        verdict(2, UNDER, estimated_age=19.25, age_spread=2.5, cashier_id="C7"),
        verdict(3, UNDER),
        verdict(4, UNDER),
        verdict(5, "no_frame;outside_legal_hours", estimated_age=None, age_spread=None),
    )
    flags = table(
        FLAG_COLUMNS,
        [
            flag(2, UNDER, crop=b"\xff\xd8crop"),
            flag(3, UNDER, purged=True),
            flag(4, UNDER),
            flag(5, "no_frame"),
            flag(5, "outside_legal_hours"),
        ],
        ("evidence_purged_at",),
    )
    lines = table(
        LINE_COLUMNS,
        [
            line(2, 2, "Vodka", 1, True, "spirits"),
            line(2, 1, "Pils", 6, True),
            line(2, 3, "Bread", 1, False, "bakery"),
            line(5, 1, "Cider", 0.5, True, "cider"),
        ],
    )
    got = flagged_sales(
        verdicts=night,
        flags=flags,
        lines=lines,
        reviews=reviews(review(2, UNDER, "adult", 1), review(2, UNDER, "confirmed_violation", 2)),
        cashiers=table(CASHIER_COLUMNS, [{"cashier_id": "C7", "name": "<b>Bo</b>"}]),
        zone=BERLIN,
    )
    assert [s.receipt_id for s in got] == ["r5", "r4", "r3", "r2"]  # equal risk: newest first
    got = got[::-1]  # oldest first from here
    first = got[0]
    assert first.sold_at == datetime(2024, 3, 1, 13, 2, tzinfo=BERLIN)
    assert first.cashier_name == "<b>Bo</b>"
    assert first.alcohol_items == ["6 × Pils", "1 × Vodka"]
    assert (first.estimated_age, first.age_spread) == (19.25, 2.5)
    assert (first.evidence, first.face_crop) == ("crop", b"\xff\xd8crop")
    assert first.reviews[UNDER] is not None
    assert first.reviews[UNDER].decision == "confirmed_violation"
    assert [s.evidence for s in got[1:]] == ["removed", "missing", "none"]
    last = got[-1]
    assert last.kinds == ["no_frame", "outside_legal_hours"]
    assert last.alcohol_items == ["0.5 × Cider"]
    assert last.open_kinds == ["no_frame", "outside_legal_hours"]
    assert last.estimated_age is None


def test_flagged_sales_open_by_risk_with_every_under_age_kind_keeping_its_face() -> None:
    night = verdicts(
        verdict(1, "no_frame", estimated_age=None, age_spread=None),  # no P: after every P
        verdict(2, UNDER, estimated_age=23.0, p_under_legal=0.05),
        verdict(3, "no_id_check", estimated_age=16.0, p_under_legal=0.93),
        verdict(4, "birth_date_under_age", estimated_age=29.0, p_under_legal=0.01),
        verdict(5, "outside_legal_hours", estimated_age=40.0, p_under_legal=0.0),
        verdict(6, "id_contradicts_face", estimated_age=15.0, p_under_legal=0.97),
        verdict(7, "no_id_check", estimated_age=19.0, p_under_legal=0.93),  # a tie: newest first
        verdict(8, "no_face", estimated_age=None, age_spread=None),
    )
    flags = table(
        FLAG_COLUMNS,
        [
            flag(1, "no_frame"),
            {**flag(2, UNDER, crop=b"\xff\xd8two"), "legal_age": 18},
            {**flag(3, "no_id_check", crop=b"\xff\xd8three"), "legal_age": 21},
            {**flag(4, "birth_date_under_age", crop=b"\xff\xd8four"), "legal_age": 21},
            flag(5, "outside_legal_hours"),
            flag(6, "id_contradicts_face", purged=True),
            flag(7, "no_id_check"),
            flag(8, "no_face"),
        ],
        ("evidence_purged_at",),
    )
    got = flagged_sales(
        verdicts=night,
        flags=flags,
        lines=table(LINE_COLUMNS, []),
        reviews=reviews(),
        cashiers=table(CASHIER_COLUMNS, []),
        zone=BERLIN,
    )
    # violations first (by P), then P highest first (ties by time), then no P (by time)
    assert [s.sale_id for s in got] == [6, 4, 7, 3, 2, 5, 8, 1]
    by_id = {s.sale_id: s for s in got}
    assert [by_id[i].violation for i in (6, 4, 3)] == [True, True, False]
    assert [s.sale_id for s in got if s.under_age] == [6, 4, 7, 3, 2]
    assert (by_id[3].evidence, by_id[3].face_crop, by_id[3].evidence_kind) == (
        "crop",
        b"\xff\xd8three",
        "no_id_check",
    )
    assert (by_id[4].evidence, by_id[4].evidence_kind) == ("crop", "birth_date_under_age")
    assert [by_id[i].evidence for i in (6, 7, 5)] == ["removed", "missing", "none"]
    assert (by_id[3].p_under_legal, by_id[3].legal_age) == (0.93, 21)
    assert by_id[1].p_under_legal is None
    assert by_id[6].legal_age == 18  # no legal age recorded with the flag: the rules of old


def test_risk_order_is_the_same_whatever_order_the_sales_come_in() -> None:
    sales = [
        figures.FlaggedSale(
            sale_id=n,
            receipt_id=f"r{n}",
            register_id="R1",
            cashier_id="C1",
            cashier_name="",
            sold_at=datetime(2024, 3, 1, 20, n, tzinfo=BERLIN),
            alcohol_items=[],
            estimated_age=None,
            age_spread=None,
            kinds=kinds,
            reviews={},
            evidence=figures.Evidence.NONE,
            p_under_legal=p,
        )
        for n, (kinds, p) in enumerate(
            [
                (["no_frame"], None),
                (["no_id_check"], 0.5),
                (["id_contradicts_face"], 0.9),
                ([UNDER], 0.0),
                (["birth_date_under_age"], None),
                (["no_id_check"], 0.5),
            ]
        )
    ]
    expected = [2, 4, 5, 1, 3, 0]  # equal risk: newest first, as in the review app
    assert [s.sale_id for s in figures.risk_order(sales)] == expected
    assert [s.sale_id for s in figures.risk_order(reversed(sales))] == expected


def test_riskiest_takes_each_cashiers_first_sales_in_risk_order() -> None:
    noon = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
    rows = [
        # (kinds, p, minutes after noon, receipt, cashier)
        ("no_id_check", 0.5, 5, "r1", "C1"),
        ("no_id_check", 0.5, 5, "r2", "C1"),  # same time: the later receipt first
        ("no_id_check", 0.5, 9, "r3", "C1"),  # same risk, newer: before both
        ("birth_date_under_age", None, 1, "r4", "C1"),  # a violation: first, p or not
        ("id_contradicts_face;no_frame", 0.2, 0, "r5", "C1"),
        ("outside_legal_hours", None, 30, "r6", "C1"),  # no probability: last
        (UNDER, 0.0, 2, "r7", "C1"),
        (UNDER, 0.95, 3, "r8", "C2"),
        ("no_id_check", 0.4, 4, "r9", "C2"),
        ("outside_legal_hours", None, 6, "r10", "C2"),
    ]
    frame = verdicts(
        *(
            verdict(
                n,
                kinds,
                p_under_legal=p,
                sold_at=noon + timedelta(minutes=minutes),
                receipt_id=receipt,
                cashier_id=cashier,
            )
            for n, (kinds, p, minutes, receipt, cashier) in enumerate(rows, start=1)
        )
    )

    def receipts(chosen: pd.DataFrame, cashier: str) -> list[str]:
        """The cashier's receipts among ``chosen``, as the pages list them (in risk order)."""
        listed = figures.flagged_sales(
            verdicts=chosen,
            flags=table(FLAG_COLUMNS, []),
            lines=table(LINE_COLUMNS, []),
            reviews=reviews(),
            cashiers=table(CASHIER_COLUMNS, []),
            zone=BERLIN,
        )
        return [s.receipt_id for s in figures.risk_order(listed) if s.cashier_id == cashier]

    assert receipts(frame, "C1") == ["r5", "r4", "r3", "r2", "r1", "r7", "r6"]
    for limit in (1, 2, 4, 7, 50):
        shown = figures.riskiest(frame, limit)
        for cashier in ("C1", "C2"):
            assert receipts(shown, cashier) == receipts(frame, cashier)[:limit]
    assert figures.riskiest(frame.iloc[:0], 5).empty


# -- challenge rates -----------------------------------------------------------------------------


def test_cashiers_by_challenge_rate_lowest_first_over_the_night_and_the_nights_before() -> None:
    def sales(cashier: str, start: int, checked: int, unchecked: int, **extra: Any) -> list:
        rows = [
            verdict(start + n, estimated_age=20.0, challenged=True, cashier_id=cashier, **extra)
            for n in range(checked)
        ]
        rows += [
            verdict(start + checked + n, "no_id_check", estimated_age=20.0, cashier_id=cashier)
            for n in range(unchecked)
        ]
        return rows

    tonight = verdicts(
        *sales("A", 100, 3, 1),  # 3 of 4 tonight
        *sales("B", 200, 1, 3),  # 1 of 4
        *sales("C", 300, 2, 0),  # 2 of 2, too few even with the nights before
        verdict(400, UNDER, estimated_age=19.0, cashier_id="D"),  # no checks recorded
        verdict(401, cashier_id="D"),
    )
    before = verdicts(
        *sales("A", 1000, 2, 4, business_date=DAY - timedelta(days=1)),  # 2 of 6 before
        *sales("B", 2000, 5, 1, business_date=DAY - timedelta(days=3)),  # 5 of 6 before
        *sales("C", 3000, 1, 0),
        *sales("E", 4000, 0, 9),  # no sale tonight: not listed
    )
    got = figures.challenge_rows(
        tonight=tonight,
        before=before,
        cashiers=table(CASHIER_COLUMNS, [{"cashier_id": "B", "name": "Bea"}]),
        min_sales=8,
        store_id="S1",
    )
    assert [(c.cashier_id, c.rank) for c in got] == [("A", 1), ("B", 2), ("C", None), ("D", None)]
    a, b, c, d = got
    assert (a.tonight, a.before, a.window) == (
        figures.Challenges(3, 4),
        figures.Challenges(2, 6),
        figures.Challenges(5, 10),
    )
    assert a.change == pytest.approx(0.75 - 2 / 6)
    assert (b.name, b.window.rate, b.store_id) == ("Bea", pytest.approx(0.6), "S1")
    assert (c.ranked, c.window.due) == (False, 3)
    assert (d.tonight.due, d.tonight.rate, d.change) == (0, None, None)


def test_the_trend_carries_each_nights_challenges() -> None:
    runs = table(
        RUN_COLUMNS,
        [
            {**run(1, "succeeded", 0), "business_date": DAY},
            {**run(2, "succeeded", 0), "business_date": DAY - timedelta(days=1)},
        ],
        ("started_at",),
    )
    night = verdicts(
        verdict(1, challenged=True, estimated_age=19.0),
        verdict(2, "no_id_check", estimated_age=19.0),
        verdict(3, UNDER, estimated_age=19.0, business_date=DAY - timedelta(days=1)),
    )
    points = nightly_trend(night, runs, day=DAY, nights=2)
    assert [p.challenges for p in points] == [
        None,
        figures.Challenges(0, 0),  # no checks recorded that night: no rate
        figures.Challenges(1, 2),
    ]
    assert [p.under_age_rate for p in points] == [None, 1.0, 0.5]


# -- charts' data --------------------------------------------------------------------------------


def test_hours_are_store_local_across_a_clock_change() -> None:
    # 31 March 2024, Berlin: 02:00 CET becomes 03:00 CEST
    night = verdicts(
        verdict(1, sold_at=datetime(2024, 3, 31, 0, 30, tzinfo=UTC)),  # 01:30 CET
        verdict(2, UNDER, sold_at=datetime(2024, 3, 31, 1, 30, tzinfo=UTC)),  # 03:30 CEST
        verdict(3, "no_face", sold_at=datetime(2024, 3, 31, 20, 0, tzinfo=UTC)),  # 22:00 CEST
        verdict(4, "no_id_check", sold_at=datetime(2024, 3, 31, 21, 0, tzinfo=UTC)),  # 23:00
    )
    got = hourly(night, BERLIN)
    assert [h for h, n in enumerate(got.sales) if n] == [1, 3, 22, 23]
    assert [h for h, n in enumerate(got.flagged) if n] == [3, 22, 23]
    assert [h for h, n in enumerate(got.under_age) if n] == [3, 23]


def test_trend_has_a_point_per_night_and_gaps_without_results() -> None:
    runs = table(
        RUN_COLUMNS,
        [
            {**run(1, "succeeded", 0), "business_date": DAY},
            {**run(2, "failed", 0), "business_date": DAY - timedelta(days=1)},
            {**run(3, "succeeded", 0), "business_date": DAY - timedelta(days=2)},
        ],
        ("started_at",),
    )
    night = verdicts(
        verdict(1, UNDER),
        verdict(2),
        verdict(3, "no_face", business_date=DAY - timedelta(days=2)),
    )
    points = nightly_trend(night, runs, day=DAY, nights=3)
    assert [p.day for p in points] == [DAY - timedelta(days=n) for n in (3, 2, 1, 0)]
    assert [p.alcohol_sales for p in points] == [None, 1, None, 2]
    assert [p.flag_rate for p in points] == [None, 1.0, None, 0.5]
    assert [p.under_age_rate for p in points] == [None, 0.0, None, 0.5]


@pytest.mark.parametrize(
    "age,band",
    [
        (12.0, "under 18"),
        (17.99, "under 18"),
        (18.0, "18–24"),
        (24.9, "18–24"),
        (25.0, "25–34"),
        (49.5, "35–49"),
        (64.99, "50–64"),
        (65.0, "65 and over"),
        (101.0, "65 and over"),
    ],
)
def test_age_bands(age: float, band: str) -> None:
    assert age_band(age) == band


def spend_of(night: pd.DataFrame, lines: pd.DataFrame) -> pd.DataFrame:
    """What :func:`queries.alcohol_spend` reads for ``night``'s sales: alcohol spend of the
    sales with a face, a return as nothing, per store, band and category as written."""
    faced = night.dropna(subset=["estimated_age"])
    bands = pd.DataFrame(
        {
            "sale_id": faced["sale_id"],
            "store_id": faced["store_id"],
            "band": [age_band(a) for a in faced["estimated_age"]],
        }
    )
    alcohol = lines[lines["is_alcohol"].astype(bool)].merge(bands, on="sale_id")
    alcohol = alcohol.assign(spend=alcohol["amount_cents"].clip(lower=0).astype(float))
    return alcohol.groupby(["store_id", "band", "category"])["spend"].sum().reset_index()


def mix_night() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two stores' window: S1 three buyers of 18-24 and one of 35-49, S2 two of 18-24."""
    night = verdicts(
        verdict(1, estimated_age=20.0),
        verdict(2, estimated_age=23.0),
        verdict(3, estimated_age=24.9, business_date=date(2024, 2, 20)),  # earlier in the window
        verdict(4, estimated_age=40.0),
        verdict(5, estimated_age=22.0, store_id="S2"),
        verdict(6, estimated_age=19.0, store_id="S2"),
        verdict(7, "no_face", estimated_age=None, store_id="S2"),  # no face: not in the mix
    )
    rows = [{**line(n, 1, "Pils", 6, True, "Beer "), "amount_cents": 300} for n in (1, 2, 3)] + [
        {**line(n, 2, "Riesling", 1, True, "wine"), "amount_cents": 100} for n in (1, 2, 3)
    ]
    rows += [
        {**line(1, 3, "Crisps", 1, False, "snacks"), "amount_cents": 5000},  # not alcohol
        {**line(4, 1, "Riesling", 1, True, "wine"), "amount_cents": 900},
        {**line(5, 1, "Vodka", 1, True, "spirits"), "amount_cents": 500},
        {**line(6, 1, "Vodka", 1, True, "spirits"), "amount_cents": 500},
        {**line(6, 2, "Vodka", 1, True, "spirits"), "amount_cents": -200},  # a return: nothing
        {**line(7, 1, "Gin", 1, True, "spirits"), "amount_cents": 9000},
    ]
    return night, table(LINE_COLUMNS, rows)


# shares in the chain's column order: wine (1200), spirits (1000), beer (900)
S1_YOUNG = [0.25, 0.0, 0.75]
S1_MIDDLE = [1.0, 0.0, 0.0]
S2_YOUNG = [0.0, 1.0, 0.0]
CHAIN_YOUNG = [300 / 2200, 1000 / 2200, 900 / 2200]


@pytest.mark.parametrize(
    "min_receipts,expected",
    [
        (
            1,
            {
                ("chain", "18–24"): (5, CHAIN_YOUNG),
                ("chain", "35–49"): (1, S1_MIDDLE),
                ("S1", "18–24"): (3, S1_YOUNG),
                ("S1", "35–49"): (1, S1_MIDDLE),
                ("S2", "18–24"): (2, S2_YOUNG),
            },
        ),
        (
            3,
            {
                ("chain", "18–24"): (5, CHAIN_YOUNG),
                ("chain", "35–49"): (1, None),
                ("S1", "18–24"): (3, S1_YOUNG),
                ("S1", "35–49"): (1, None),
                ("S2", "18–24"): (2, None),
            },
        ),
        (
            6,
            {
                ("chain", "18–24"): (5, None),
                ("chain", "35–49"): (1, None),
                ("S1", "18–24"): (3, None),
                ("S1", "35–49"): (1, None),
                ("S2", "18–24"): (2, None),
            },
        ),
    ],
)
def test_mix_table_shows_a_group_only_with_enough_receipts(
    min_receipts: int, expected: dict[tuple[str, str], tuple[int, list[float] | None]]
) -> None:
    night, lines = mix_night()
    parts = [
        mix_spend(night[night["store_id"] == s], spend_of(night, lines[lines["sale_id"].isin(ids)]))
        for s, ids in (("S1", [1, 2, 3, 4]), ("S2", [5, 6, 7]))
    ]
    mix = mix_table(
        MixSpend.combine(parts),
        names={"S1": "Berlin", "S2": "New York", "S3": "Quiet"},
        min_receipts=min_receipts,
    )
    # alcohol categories only, case-folded and trimmed, by the chain's spend
    assert mix.categories == ["wine", "spirits", "beer"]
    assert [s.store_id for s in mix.stores] == ["S1", "S2", "S3"]
    assert mix.stores[2].groups == []  # no sale with a face
    shown = {
        (scope.store_id or "chain", g.band): (g.receipts, g.shares)
        for scope in [mix.chain, *mix.stores]
        for g in scope.groups
    }
    assert shown.keys() == expected.keys()
    for key, (receipts, shares) in expected.items():
        assert shown[key][0] == receipts, key
        if shares is None:
            assert shown[key][1] is None, key
        else:
            assert shown[key][1] == pytest.approx(shares), key


def test_mix_table_folds_small_categories_into_other() -> None:
    night = verdicts(verdict(1, estimated_age=30.0))
    lines = table(
        LINE_COLUMNS,
        [
            {**line(1, n, f"p{n}", 1, True, f"cat{n}"), "amount_cents": 100 * (10 - n)}
            for n in range(1, 10)
        ],
    )
    mix = mix_table(
        mix_spend(night, spend_of(night, lines)), names={"S1": "S1"}, min_receipts=1, top=3
    )
    assert mix.categories == ["cat1", "cat2", "cat3", "other"]
    (group,) = mix.stores[0].groups
    assert group.shares is not None
    assert sum(group.shares) == pytest.approx(1.0)


def test_mix_without_faces_is_empty() -> None:
    night = verdicts(verdict(1, "no_face", estimated_age=None))
    nothing = spend_of(night, table(LINE_COLUMNS, []))
    mix = mix_table(mix_spend(night, nothing), names={"S1": "S1"}, min_receipts=1)
    assert mix.categories == []
    assert mix.chain.groups == [] and mix.stores[0].groups == []
