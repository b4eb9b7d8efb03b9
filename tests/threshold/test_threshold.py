"""Threshold figures against hand-computed ones, what they are read from, and the command."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from auditor.db.models import AuditRun
from auditor.threshold.figures import (
    ReviewedSale,
    ThresholdInputs,
    ThresholdRow,
    build_report,
    change_sentence,
    threshold_rows,
)
from auditor.threshold.inputs import load_inputs
from tests.factories import make_settings
from tests.review_data import ChainBuilder

ESTIMATES = [15.0, 16.0, 17.5, 19.9, 24.9, 25.0, 31.0]
REVIEWED = [
    ReviewedSale(15.0, confirmed=True),
    ReviewedSale(17.5, confirmed=False),
    ReviewedSale(24.9, confirmed=True),
    ReviewedSale(25.0, confirmed=False),
]
CARD = [{"threshold": 25, "minors_flagged": 0.772, "adults_flagged": 0.0166}]


@pytest.mark.parametrize(
    ("threshold", "flags", "per_night", "reviewed", "confirmed", "share"),
    [
        (16, 1, 0.5, 1, 1, 1.0),  # 15.0
        (17, 2, 1.0, 1, 1, 1.0),  # 15.0, 16.0 (16.0 not reviewed)
        (18, 3, 1.5, 2, 1, 0.5),  # + 17.5 (reviewed, not confirmed)
        (20, 4, 2.0, 2, 1, 0.5),  # + 19.9
        (25, 5, 2.5, 3, 2, 2 / 3),  # + 24.9; 25.0 is not under 25
        (26, 6, 3.0, 4, 2, 0.5),  # + 25.0
        (30, 6, 3.0, 4, 2, 0.5),  # 31.0 never
    ],
)
def test_rows_against_hand_computed_figures(
    threshold: int, flags: int, per_night: float, reviewed: int, confirmed: int, share: float
) -> None:
    rows = {
        r.threshold: r
        for r in threshold_rows(estimates=ESTIMATES, nights=2, reviewed=REVIEWED, card_table=CARD)
    }
    assert list(rows) == list(range(16, 31))
    row = rows[threshold]
    assert (row.flags, row.reviewed, row.confirmed) == (flags, reviewed, confirmed)
    assert row.flags_per_night == pytest.approx(per_night)
    assert row.confirmed_share == pytest.approx(share)
    expected = CARD[0] if threshold == 25 else {}
    assert row.minors_flagged == expected.get("minors_flagged")
    assert row.adults_flagged == expected.get("adults_flagged")


def test_rows_without_data() -> None:
    rows = threshold_rows(estimates=[], nights=0, reviewed=[])
    assert all(r.flags == 0 and r.flags_per_night is None for r in rows)
    assert all(r.confirmed_share is None for r in rows)


def test_change_sentence() -> None:
    now = ThresholdRow(25, 5, 2.5, 3, 2, 2 / 3, 0.772, 0.0166)
    lower = ThresholdRow(24, 4, 2.0, 2, 1, 0.5, 0.743, 0.0081)
    assert change_sentence(now, lower) == (
        "Lowering the threshold from 25 to 24 would flag 0.5 fewer sales per night "
        "(2.0 instead of 2.5); the model card expects 74.3% of minors to be flagged instead "
        "of 77.2%, and 0.8% of adults 25+ instead of 1.7%."
    )
    assert change_sentence(lower, now).startswith(
        "Raising the threshold from 24 to 25 would flag 0.5 more sales per night"
    )


def test_report_speaks_of_the_configured_threshold() -> None:
    inputs = load_inputs_stub()
    card = {"threshold_table": CARD, "metrics": {"operating_point": {"threshold": 26.8}}}
    report = build_report(inputs, configured=25, card=card)
    assert report.current is not None and report.current.flags == 5
    assert [s.split(" would")[0] for s in report.changes] == [
        "Lowering the threshold from 25 to 23",
        "Lowering the threshold from 25 to 24",
        "Raising the threshold from 25 to 26",
        "Raising the threshold from 25 to 27",
    ]
    assert report.operating_point == {"threshold": 26.8}
    assert build_report(inputs, configured=40, card=None).changes == []


def load_inputs_stub() -> ThresholdInputs:
    return ThresholdInputs(
        date(2024, 3, 1), date(2024, 3, 2), 2, 2, ["S1"], ESTIMATES, REVIEWED, {25: 2}
    )


# -- from the database ---------------------------------------------------------------------------


def at(day: int, hour: int = 20) -> datetime:
    return datetime(2024, 3, day, hour, tzinfo=UTC)


@pytest.fixture
def audited(engine: Engine, tmp_path: Path) -> dict[str, int]:
    """Nights 1-3 March in S1, 2 March in S2, and 10 February (outside a 30-night window)."""
    settings = make_settings(tmp_path)
    with Session(engine) as session:
        build = ChainBuilder(session, settings)
        build.sale("a", at(1), age=16.5)
        build.sale("b", at(1, 21), age=22.0)
        build.sale("c", at(2), age=27.0, threshold=25)  # clean at 25
        build.sale("d", at(3), age=None, kinds=("no_face",), threshold=21)  # no estimate
        build.sale("e", at(3, 21), age=18.0, threshold=21)  # a night audited at 21
        build.sale("f", at(2), store="S2", age=24.0)
        build.sale("old", datetime(2024, 2, 10, 20, tzinfo=UTC), age=15.0)
        reviewer = build.user("lp", "loss_prevention")
        t = datetime(2024, 3, 4, 9, tzinfo=UTC)
        build.review("a", "adult", by=reviewer, at=t)
        build.review("a", "confirmed_violation", by=reviewer, at=t + timedelta(hours=1))
        build.review("b", "confirmed_violation", by=reviewer, at=t)
        build.review("b", "id_checked", by=reviewer, at=t + timedelta(hours=1))  # revised
        build.review("f", "confirmed_violation", by=reviewer, at=t)
        build.review("d", "confirmed_violation", by=reviewer, at=t)  # no estimate: not counted
        build.review("old", "confirmed_violation", by=reviewer, at=t)  # outside the window
        # a replaced run of 1 March in S1 whose verdicts no longer count
        replaced = AuditRun(
            store_id="S1",
            business_date=date(2024, 3, 1),
            status="replaced",
            settings={},
            model_version="",
            sales_audited=0,
            flags_count=0,
        )
        session.add(replaced)
        session.commit()
        return build.made.sales


def test_inputs_from_the_database(engine: Engine, audited: dict[str, int]) -> None:
    with Session(engine) as session:
        inputs = load_inputs(session, nights=30)
    assert (inputs.first_night, inputs.last_night) == (date(2024, 2, 3), date(2024, 3, 3))
    assert (inputs.nights, inputs.store_nights) == (4, 5)  # 10 Feb, 1-3 Mar; S2 on 2 Mar
    assert sorted(inputs.estimates) == [15.0, 16.5, 18.0, 22.0, 24.0, 27.0]
    assert sorted((r.estimated_age, r.confirmed) for r in inputs.reviewed) == [
        (15.0, True),
        (16.5, True),
        (22.0, False),
        (24.0, True),
    ]
    assert inputs.run_thresholds == {21: 1, 25: 4}

    with Session(engine) as session:
        short = load_inputs(session, nights=2, store_ids=["S1"])
    assert (short.first_night, short.last_night, short.nights) == (
        date(2024, 3, 2),
        date(2024, 3, 3),
        2,
    )
    assert sorted(short.estimates) == [18.0, 27.0]
    assert short.reviewed == []
    rows = {r.threshold: r for r in build_report(short, configured=25, card=None).rows}
    assert rows[20].flags == 1 and rows[20].flags_per_night == 0.5


def test_inputs_of_an_empty_database(engine: Engine) -> None:
    with Session(engine) as session:
        inputs = load_inputs(session)
    assert inputs.nights == 0 and inputs.first_night is None


def test_threshold_report_command(
    engine: Engine,
    audited: dict[str, int],
    run_cli,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    result = run_cli("threshold-report", "--until", "2024-03-03", "--nights", "3")
    assert result.exit_code == 0, result.output
    assert "3 nights audited from 2024-03-01 to 2024-03-03" in result.output
    assert " 25 " in result.output and "<- configured" in result.output
    result = run_cli("threshold-report", "--format", "json", "--store", "S1", "--nights", "3")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    row = next(r for r in data["rows"] if r["threshold"] == 23)
    assert row["flags"] == 3 and row["reviewed"] == 2 and row["confirmed"] == 1  # a, b, e
    assert data["configured_threshold"] == 25
    result = run_cli("threshold-report", "--format", "csv", "--nights", "3")
    assert result.output.splitlines()[0].startswith("threshold,flags,flags_per_night")


def test_threshold_report_of_an_unknown_store_names_it(
    engine: Engine,
    audited: dict[str, int],
    run_cli,  # type: ignore[no-untyped-def]
) -> None:
    result = run_cli("threshold-report", "--store", "XXX1")
    assert result.exit_code == 1, result.output
    assert result.stderr == "Error: unknown store 'XXX1'; known: S1, S2\n"
    assert result.stdout == ""
    result = run_cli("threshold-report", "--store", "S1", "--store", "S7", "--store", "s2")
    assert result.exit_code == 1, result.output
    assert "unknown stores 'S7', 's2'; known: S1, S2" in result.stderr


def test_change_sentence_without_a_change_in_load() -> None:
    now = ThresholdRow(25, 6, 3.0, 0, 0, None, 0.772, 0.0166)
    higher = ThresholdRow(26, 6, 3.0, 0, 0, None, 0.816, 0.0464)
    assert change_sentence(now, higher).startswith(
        "Raising the threshold from 25 to 26 would leave the review load as it is "
        "(3.0 flags per night); the model card expects 81.6% of minors"
    )


# -- age checks: ID-checked sales are cleared ----------------------------------------------------


def test_sales_with_an_id_check_are_cleared_from_the_review_load() -> None:
    cleared = [16.0, 24.9, 31.0]  # estimates of sales whose till recorded an ID check
    rows = {
        r.threshold: r
        for r in threshold_rows(estimates=ESTIMATES, nights=2, reviewed=[], cleared=cleared)
    }
    # at 25: five sales under it, two of them (16.0, 24.9) checked: three flags
    assert (rows[25].under_threshold, rows[25].cleared, rows[25].flags) == (5, 2, 3)
    assert rows[25].flags_per_night == pytest.approx(1.5)
    assert (rows[16].under_threshold, rows[16].cleared, rows[16].flags) == (1, 0, 1)
    assert (rows[30].under_threshold, rows[30].cleared, rows[30].flags) == (6, 2, 4)
    without = threshold_rows(estimates=ESTIMATES, nights=2, reviewed=[])
    assert [r.flags for r in without] == [r.under_threshold for r in without]
    assert all(r.cleared == 0 for r in without)


@pytest.fixture
def checked_night(engine: Engine, tmp_path: Path) -> dict[str, int]:
    """S1 on 1 March, its till recording age checks; one sale of a till without them."""
    settings = make_settings(tmp_path)
    with Session(engine) as session:
        build = ChainBuilder(session, settings)
        build.sale("seen", at(1, 10), age=17.0, kinds=(), age_check="id_checked", challenged=True)
        build.sale("born", at(1, 11), age=22.0, kinds=(), birth_date=date(2000, 1, 1))
        build.sale("minor", at(1, 12), age=16.0, kinds=("no_id_check",), age_check="visual")
        build.sale("young", at(1, 13), age=23.0, kinds=("no_id_check",), age_check="none")
        build.sale("adult", at(1, 14), age=40.0, kinds=(), age_check="none")
        build.sale("plain", at(1, 15), age=19.0)  # no age-check column: under_age_threshold
        reviewer = build.user("lp", "loss_prevention")
        t = datetime(2024, 3, 2, 9, tzinfo=UTC)
        build.review("minor", "confirmed_violation", by=reviewer, at=t)
        build.review("young", "adult", by=reviewer, at=t)
        session.commit()
        return build.made.sales


def test_inputs_know_which_sales_had_an_id_check(
    engine: Engine, checked_night: dict[str, int]
) -> None:
    with Session(engine) as session:
        inputs = load_inputs(session, nights=1)
    assert sorted(inputs.estimates) == [16.0, 17.0, 19.0, 22.0, 23.0, 40.0]
    assert sorted(inputs.cleared) == [17.0, 22.0]  # ID checked, and a birth date typed in
    assert inputs.with_checks == 5  # every sale but the one from a till without checks
    # reviews of no_id_check flags count as reviews of the threshold's flags
    assert sorted((r.estimated_age, r.confirmed) for r in inputs.reviewed) == [
        (16.0, True),
        (23.0, False),
    ]
    rows = {r.threshold: r for r in build_report(inputs, configured=25, card=None).rows}
    assert (rows[25].under_threshold, rows[25].cleared, rows[25].flags) == (5, 2, 3)
    assert (rows[25].reviewed, rows[25].confirmed) == (2, 1)
    assert (rows[20].under_threshold, rows[20].cleared, rows[20].flags) == (3, 1, 2)


def test_the_command_marks_a_stores_own_threshold_and_counts_what_checks_clear(
    engine: Engine, checked_night: dict[str, int], db_url: str, tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from auditor.cli import main
    from tests.factories import STORES, write_config

    stores = [{**STORES[0], "age_threshold": 21, "legal_age": 18}, STORES[1]]
    config = write_config(tmp_path / "rules" / "auditor.toml", database_url=db_url, stores=stores)

    def run(*args: str) -> dict:  # type: ignore[type-arg]
        result = CliRunner().invoke(main, ["--config", str(config), "threshold-report", *args])
        assert result.exit_code == 0, result.output
        return json.loads(result.output)

    data = run("--format", "json", "--store", "S1", "--until", "2024-03-01", "--nights", "1")
    assert data["configured_threshold"] == 21  # the store's own
    assert (data["estimated_sales"], data["with_checks"], data["id_checked"]) == (6, 5, 2)
    row = next(r for r in data["rows"] if r["threshold"] == 25)
    assert (row["under_threshold"], row["cleared"], row["flags"]) == (5, 2, 3)
    assert run("--format", "json", "--nights", "1")["configured_threshold"] == 25  # the chain's
    table = CliRunner().invoke(main, ["--config", str(config), "threshold-report", "--nights", "1"])
    assert "age checks recorded on 5 of 6 sales with an estimate; 2 with an ID check" in (
        table.output
    )
    header = next(line for line in table.output.splitlines() if line.split()[:1] == ["T"])
    assert header.split() == [
        "T", "under", "cleared", "flags", "/night", "reviewed", "confirmed", "conf.%",
        "minors%", "adults%",
    ]  # fmt: skip
