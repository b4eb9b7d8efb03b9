"""The demo chain's plan: pure, checked without files, model or database."""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from auditor.audit.rules import Rules, age_on
from auditor.demo import chain
from auditor.demo.chain import (
    BORROWED_IDS,
    CAMERA_OUTCOMES,
    CHECKS,
    DAMAGED,
    DST_DAY,
    EMPTY,
    FACE,
    MISSED,
    POS_COLUMNS,
    RARELY_CHECKS,
    STORES,
    TWO_FACES,
    ChainPlan,
    DemoSpec,
    Sale,
    ambiguous,
    birth_date_at,
    clock_change,
    expected_flags,
    nearest_face,
    plan_chain,
    pos_rows,
)
from auditor.ingest.pos import parse_sales
from auditor.ingest.snapshots import parse_layout_path
from auditor.ingest.times import localize
from auditor.vocabulary import AgeCheck

FACES = {age: (f"{age}_a.jpg", f"{age}_b.jpg") for age in (*range(1, 40), 45, 50, 60, 75, 90)}
SMALL = DemoSpec(seed=3, stores=2, days=2, sales_per_day=15)
RULES = Rules(25, time(8), time(23))


@pytest.fixture(scope="module")
def small() -> ChainPlan:
    return plan_chain(SMALL, FACES)


@pytest.fixture(scope="module")
def week() -> ChainPlan:
    return plan_chain(DemoSpec(seed=5), FACES)


def test_same_seed_same_plan(small: ChainPlan) -> None:
    assert plan_chain(SMALL, FACES) == small
    other = plan_chain(DemoSpec(seed=4, stores=2, days=2, sales_per_day=15), FACES)
    assert other.sales != small.sales


def test_another_store_leaves_the_others_alone(small: ChainPlan) -> None:
    bigger = plan_chain(DemoSpec(seed=3, stores=3, days=2, sales_per_day=15), FACES)
    assert [s for s in bigger.sales if s.store_id in ("BER1", "SYD1")] == list(small.sales)


@pytest.mark.parametrize(
    "days,first,last",
    [
        (1, DST_DAY, DST_DAY),
        (2, date(2024, 3, 30), DST_DAY),
        (7, date(2024, 3, 28), date(2024, 4, 3)),
    ],
)
def test_default_dates_hold_the_clock_change(days: int, first: date, last: date) -> None:
    dates = DemoSpec(days=days).dates
    assert (dates[0], dates[-1], len(dates)) == (first, last, days)
    assert DemoSpec(days=3, start=date(2024, 10, 26)).dates[1] == date(2024, 10, 27)


def test_store_zones_and_the_days_that_change() -> None:
    zones = [s.timezone for s in STORES]
    assert zones[:2] == ["Europe/Berlin", "Australia/Sydney"]  # the small demo's two stores
    plan = plan_chain(DemoSpec(stores=5, days=7), FACES)
    assert plan.clock_changes() == {"BER1": [DST_DAY], "LON1": [DST_DAY]}


@pytest.mark.parametrize(
    "zone,day,change",
    [
        ("Europe/Berlin", date(2024, 3, 31), datetime(2024, 3, 31, 1, tzinfo=UTC)),
        ("Europe/London", date(2024, 3, 31), datetime(2024, 3, 31, 1, tzinfo=UTC)),
        ("Europe/Berlin", date(2024, 10, 27), datetime(2024, 10, 27, 1, tzinfo=UTC)),
        ("America/New_York", date(2024, 3, 10), datetime(2024, 3, 10, 7, tzinfo=UTC)),
        ("Australia/Sydney", date(2024, 4, 7), datetime(2024, 4, 6, 16, tzinfo=UTC)),
        ("Europe/Berlin", date(2024, 3, 30), None),
        ("Asia/Tokyo", date(2024, 3, 31), None),
    ],
)
def test_clock_change(zone: str, day: date, change: datetime | None) -> None:
    assert clock_change(day, ZoneInfo(zone)) == change


def test_ambiguous() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    assert ambiguous(datetime(2024, 10, 27, 0, 30, tzinfo=UTC), berlin)  # 02:30, twice
    assert ambiguous(datetime(2024, 10, 27, 1, 30, tzinfo=UTC), berlin)
    assert not ambiguous(datetime(2024, 10, 27, 2, 30, tzinfo=UTC), berlin)
    assert not ambiguous(datetime(2024, 3, 31, 1, 30, tzinfo=UTC), berlin)


def test_nearest_face() -> None:
    rng = np.random.default_rng(0)
    assert nearest_face(rng, FACES, 17).startswith("17_")
    assert nearest_face(rng, FACES, 43).startswith("45_")  # 45 is nearer than 39
    assert nearest_face(rng, FACES, 42).startswith("39_")  # a tie goes to the younger
    assert nearest_face(rng, FACES, 100).startswith("90_")


def test_every_store_shows_every_camera_outcome(small: ChainPlan) -> None:
    for store in small.stores:
        cameras = Counter(s.camera for s in small.alcohol_sales if s.store_id == store.id)
        assert set(cameras) == set(CAMERA_OUTCOMES), store.id
        assert cameras[DAMAGED] == 1


def test_frames_follow_the_camera(week: ChainPlan) -> None:
    for sale in week.sales:
        counts = {MISSED: (0,), EMPTY: (1,), DAMAGED: (1,), FACE: (1, 2), TWO_FACES: (1, 2)}
        assert len(sale.frames) in counts[sale.camera]
        for frame in sale.frames:
            assert -4 <= (frame.taken_at - sale.sold_at).total_seconds() <= 8
            shown = {EMPTY: 0, FACE: 1, TWO_FACES: 2}.get(sale.camera)
            if shown is not None:
                assert len(frame.faces) == shown and frame.damage == ""
                assert frame.faces[:1] == (sale.face_file,)[:shown]
            if sale.camera == DAMAGED:
                assert frame.damage in ("truncated", "not_image")


def test_frame_paths_follow_the_layout(week: ChainPlan) -> None:
    paths = [f.path for f in week.frames]
    assert len(set(paths)) == len(paths)
    zones = {s.id: s.zone for s in week.stores}
    for sale in week.sales:
        for frame in sale.frames:
            store, register, local = parse_layout_path(frame.path)
            assert (store, register) == (sale.store_id, sale.register_id)
            assert localize(local, zones[store]) == frame.taken_at


def test_sales_of_a_register_lie_apart(week: ChainPlan) -> None:
    """Another sale's frames never fall within a sale's window (5 s before, 10 s after)."""
    by_register: dict[tuple[str, str], list[Sale]] = {}
    for sale in week.sales:
        by_register.setdefault((sale.store_id, sale.register_id), []).append(sale)
    for sales in by_register.values():
        sales.sort(key=lambda s: s.sold_at)
        for before, after in zip(sales, sales[1:], strict=False):
            assert after.sold_at - before.sold_at >= timedelta(seconds=60)


def test_sales_fall_in_their_business_day(week: ChainPlan) -> None:
    for sale in week.sales:
        local = sale.sold_at.astimezone(
            ZoneInfo(next(s.timezone for s in STORES if s.id == sale.store_id))
        )
        assert local == sale.local_time and local.date() == sale.business_date
        assert sale.sold_at.microsecond == 0


def test_night_sales_on_both_sides_of_the_clock_change(small: ChainPlan) -> None:
    night = [
        s
        for s in small.alcohol_sales
        if s.store_id == "BER1" and s.business_date == DST_DAY and s.night
    ]
    offsets = {s.local_time.utcoffset() for s in night}
    assert offsets == {timedelta(hours=1), timedelta(hours=2)}
    assert all(
        s.local_time.hour < 8 for s in night if s.local_time.utcoffset() == timedelta(hours=1)
    )


def test_east_of_utc_sales_start_on_the_utc_date_before(small: ChainPlan) -> None:
    sydney = [s for s in small.sales if s.store_id == "SYD1"]
    assert any(s.sold_at.date() < s.business_date for s in sydney)
    assert any(s.sold_at.date() == s.business_date for s in sydney)


def test_a_few_night_sales(week: ChainPlan) -> None:
    alcohol = week.alcohol_sales
    share = sum(s.night for s in alcohol) / len(alcohol)
    assert 0.01 <= share <= 0.08
    assert not any(s.night for s in week.sales if not s.alcohol)


def test_minors_gather_at_the_lax_cashiers(week: ChainPlan) -> None:
    minors = [s for s in week.alcohol_sales if s.shopper_age < 18]
    lax = [s for s in minors if s.cashier.lax]
    assert len(minors) >= 10
    assert len(lax) / len(minors) >= 0.6
    assert len({(s.store_id, s.cashier.id) for s in lax}) == 2
    ages = [s.shopper_age for s in week.alcohol_sales]
    assert sum(a >= 25 for a in ages) / len(ages) >= 0.6  # mostly adults


def test_spoilt_lines_are_rejected_and_the_rest_reads_back(
    small: ChainPlan, tmp_path: Path
) -> None:
    """The POS rows of each store-day through the real parser: exactly the spoilt lines are
    rejected, and every good line comes back with its sale's UTC time."""
    zones = {s.id: s.zone for s in small.stores}
    spoilt_kinds: Counter[str] = Counter()
    for store in small.stores:
        for day in small.dates:
            sales = [s for s in small.sales if s.store_id == store.id and s.business_date == day]
            path = tmp_path / f"{store.id}-{day}.csv"
            with path.open("w", newline="", encoding="utf-8") as f:
                writer = csv.DictWriter(f, fieldnames=list(POS_COLUMNS), lineterminator="\n")
                writer.writeheader()
                writer.writerows(pos_rows(sales))
            parsed = parse_sales(
                path,
                alcohol_categories=frozenset(
                    ["beer", "wine", "sparkling wine", "spirits", "cider"]
                ),
                zone_for=zones.__getitem__,
            )
            spoilt = [line for s in sales for line in s.lines if line.spoilt]
            spoilt_kinds.update(line.spoilt for line in spoilt)
            assert len(parsed.rejects) == len(spoilt)
            assert {r.field for r in parsed.rejects} <= {"amount", "sold_at", "sku"}
            by_receipt = {s.receipt_id: s for s in sales}
            for receipt_id, sold_at, is_alcohol, check, born in parsed.lines[
                ["receipt_id", "sold_at", "is_alcohol", "age_check", "birth_date"]
            ].itertuples(index=False):
                sale = by_receipt[receipt_id]
                assert sold_at.to_pydatetime() == sale.sold_at
                assert not is_alcohol or sale.alcohol
                assert check == (sale.age_check or AgeCheck.NONE)  # blank: none
                assert born == sale.birth_date
            alcohol_receipts = set(parsed.lines.loc[parsed.lines["is_alcohol"], "receipt_id"])
            assert alcohol_receipts == {s.receipt_id for s in sales if s.alcohol}
    assert {"bad_number", "bad_time"} <= set(spoilt_kinds)  # the first day of each store


NO_CHECKS = "-"  # a POS export without the age-check columns
BORN_ADULT = date(2000, 1, 1)  # 24 on the test sale's day
BORN_MINOR = date(2008, 1, 1)  # 16


@pytest.mark.parametrize(
    "camera,age,hour,threshold,check,born,expected",
    [
        (FACE, 16, 12, 25, NO_CHECKS, None, "under_age_threshold"),
        (FACE, 30, 12, 25, NO_CHECKS, None, ""),
        (FACE, 30, 12, 31, NO_CHECKS, None, "under_age_threshold"),
        (TWO_FACES, 24, 23, 25, NO_CHECKS, None, "under_age_threshold;outside_legal_hours"),
        (FACE, 40, 7, 25, NO_CHECKS, None, "outside_legal_hours"),
        (MISSED, 16, 12, 25, NO_CHECKS, None, "no_frame"),
        (DAMAGED, 16, 2, 25, NO_CHECKS, None, "unreadable_frame;outside_legal_hours"),
        (EMPTY, 16, 12, 25, NO_CHECKS, None, "no_face"),
        # the till records age checks
        (FACE, 22, 12, 25, "none", None, "no_id_check"),
        (FACE, 22, 12, 25, "visual", None, "no_id_check"),
        (FACE, 30, 12, 25, "none", None, ""),
        (FACE, 24, 12, 25, "id_scanned", BORN_ADULT, ""),  # challenged
        (FACE, 24, 12, 25, "id_checked", None, ""),
        (FACE, 16, 12, 25, "id_scanned", BORN_MINOR, "birth_date_under_age"),
        (MISSED, 16, 12, 25, "id_checked", BORN_MINOR, "birth_date_under_age;no_frame"),
        (FACE, 16, 12, 25, "id_scanned", BORN_ADULT, "id_contradicts_face"),  # borrowed
        (EMPTY, 16, 12, 25, "id_scanned", BORN_ADULT, "no_face"),  # no face to contradict
        (FACE, 16, 12, 25, "none", None, "no_id_check"),
        (TWO_FACES, 16, 2, 25, "visual", None, "no_id_check;outside_legal_hours"),
    ],
)
def test_expected_flags(
    small: ChainPlan,
    camera: str,
    age: int,
    hour: int,
    threshold: int,
    check: str,
    born: date | None,
    expected: str,
) -> None:
    sale = small.alcohol_sales[0]
    local = datetime.combine(date(2024, 3, 30), time(hour, 30), tzinfo=ZoneInfo("Europe/Berlin"))
    sale = replace(
        sale,
        camera=camera,
        shopper_age=age,
        local_time=local,
        age_check=None if check == NO_CHECKS else AgeCheck(check),
        birth_date=born,
    )
    rules = Rules(threshold, RULES.legal_hours_start, RULES.legal_hours_end)
    assert ";".join(expected_flags(sale, rules)) == expected


def test_expected_flags_by_the_stores_legal_age(small: ChainPlan) -> None:
    """A birth date of someone 20 is under the legal age in New York, not in Berlin."""
    local = datetime(2024, 3, 30, 12, 30, tzinfo=ZoneInfo("America/New_York"))
    sale = replace(
        small.alcohol_sales[0],
        camera=FACE,
        shopper_age=20,
        local_time=local,
        age_check=AgeCheck.ID_SCANNED,
        birth_date=date(2003, 6, 1),
    )
    new_york = Rules(25, RULES.legal_hours_start, RULES.legal_hours_end, legal_age=21)
    assert expected_flags(sale, new_york) == ("birth_date_under_age",)
    assert expected_flags(sale, RULES) == ()


@pytest.mark.parametrize("day", [date(2024, 3, 30), date(2024, 2, 29), date(2023, 3, 1)])
@pytest.mark.parametrize("age", [0, 16, 17, 18, 21, 44])
def test_birth_date_at(day: date, age: int) -> None:
    births = [birth_date_at(age, day, n) for n in range(365)]
    assert all(age_on(birth, day) == age for birth in births)
    assert len(set(births)) == 365


def test_stores_use_their_countrys_legal_age() -> None:
    plan = plan_chain(DemoSpec(stores=5, days=1, sales_per_day=5), FACES)
    assert {s.id: s.legal_age for s in plan.stores} == {
        "BER1": 18,
        "SYD1": 18,
        "NYC1": 21,
        "LON1": 18,
        "TYO1": 20,
    }
    for sale in plan.alcohol_sales:  # adults start at the legal age; minors are 13 to 17
        legal = 21 if sale.store_id == "NYC1" else 20 if sale.store_id == "TYO1" else 18
        assert sale.shopper_age < 18 or sale.shopper_age >= legal


def test_cashiers_check_age_by_habit(week: ChainPlan) -> None:
    """Most check the ID of young shoppers with their true birth date; the first store's lax
    cashier rarely checks; the second's takes borrowed adult IDs from minors."""
    habits = {(s.id, c.id): c.habit for s in week.stores for c in s.cashiers}
    assert habits[("BER1", "C03")] == RARELY_CHECKS and habits[("SYD1", "C02")] == BORROWED_IDS
    assert habits[("NYC1", "C05")] == BORROWED_IDS
    assert Counter(habits.values())[CHECKS] == len(habits) - 4
    legal = {s.id: s.legal_age for s in week.stores}
    young: Counter[tuple[str, bool]] = Counter()
    checked: Counter[tuple[str, bool]] = Counter()
    for sale in week.alcohol_sales:
        assert sale.age_check is not None
        saw_id = sale.age_check.saw_id
        assert saw_id == (sale.birth_date is not None)
        if saw_id and not sale.borrowed_id:
            assert age_on(sale.birth_date, sale.local_time.date()) == sale.shopper_age
        if sale.borrowed_id:
            assert sale.cashier.habit == BORROWED_IDS and sale.shopper_age < legal[sale.store_id]
            assert age_on(sale.birth_date, sale.local_time.date()) >= legal[sale.store_id] + 3
        key = (sale.cashier.habit, sale.shopper_age < 21)
        young[key] += 1
        checked[key] += saw_id
    assert checked[(CHECKS, True)] >= 0.75 * young[(CHECKS, True)]
    assert checked[(CHECKS, False)] <= 0.3 * young[(CHECKS, False)]
    assert checked[(RARELY_CHECKS, True)] <= 0.2 * young[(RARELY_CHECKS, True)]
    borrowed = [s for s in week.alcohol_sales if s.borrowed_id]
    assert len(borrowed) >= 5
    kinds = Counter(s.age_check for s in week.alcohol_sales)
    assert set(kinds) == set(AgeCheck)
    assert not any(s.age_check or s.birth_date for s in week.sales if not s.alcohol)


def test_age_checks_leave_the_rest_of_the_plan_alone(
    small: ChainPlan, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The checks come from a stream of their own: other habits, the same shoppers, faces and
    frames."""
    monkeypatch.setattr(chain, "CHECK_RATES", dict.fromkeys(chain.CHECK_RATES, (1.0, 1.0)))
    always = plan_chain(SMALL, FACES)
    assert all(
        s.age_check in (AgeCheck.ID_CHECKED, AgeCheck.ID_SCANNED) for s in always.alcohol_sales
    )

    def plain(plan: ChainPlan) -> list[Sale]:
        return [replace(s, age_check=None, birth_date=None, borrowed_id=False) for s in plan.sales]

    assert plain(always) == plain(small)
