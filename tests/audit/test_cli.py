"""``auditor audit`` and ``auditor flags`` through the CLI runner, on both databases."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from auditor.audit.lock import store_night_lock
from auditor.cli import main
from auditor.db.models import AuditRun
from auditor.settings import Settings
from tests.audit.night import NightBuilder, run_statuses
from tests.factories import write_config

DAY = "2024-03-01"


@pytest.fixture
def cli(audit_settings: Settings, tmp_path: Path):
    """Run ``auditor --config <the audit settings file> ARGS...``."""

    def run(*args: str) -> Result:
        return CliRunner().invoke(main, ["--config", str(tmp_path / "auditor.toml"), *args])

    return run


@pytest.fixture
def ingested(night: NightBuilder, session_factory: sessionmaker[Session]) -> NightBuilder:
    night.sale("1001", f"{DAY} 12:00:00")
    night.frame(f"{DAY} 12:00:02", "face")
    night.sale("1002", f"{DAY} 13:00:00", register="R2")
    night.sale("1003", f"{DAY} 23:30:00")
    night.frame(f"{DAY} 23:29:58", "no_face")
    night.sale("1004", f"{DAY} 14:00:00")
    night.frame(f"{DAY} 14:00:01", "truncated")
    night.sale("1005", f"{DAY} 15:00:00", alcohol=False)
    night.sale("2001", f"{DAY} 10:00:00", store="S3")
    night.sale("1006", "2024-03-02 12:00:00")
    night.ingest(session_factory)
    return night


def test_audit_then_export_csv(ingested: NightBuilder, cli) -> None:
    result = cli("audit", "--date", DAY, "--store", "S1")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("S1 2024-03-01: 4 alcohol sales, ")
    assert "no_frame 1" in result.output and "unreadable_frame 1" in result.output

    result = cli("flags", "--date", DAY, "--store", "S1")
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(io.StringIO(result.output)))
    assert rows[0] == [
        "store_id",
        "register_id",
        "cashier_id",
        "receipt_id",
        "sold_at",
        "estimated_age",
        "age_spread",
        "legal_age",
        "age_threshold",
        "p_under_legal",
        "p_under_threshold",
        "challenged",
        "flags",
    ]
    by_receipt = {row[3]: row for row in rows[1:]}
    assert list(by_receipt) == ["1001", "1002", "1004", "1003"]  # in order of sale
    assert by_receipt["1002"] == [
        "S1", "R2", "C1", "1002", "2024-03-01T13:00:00+01:00", "", "", "18", "25", "", "",
        "false", "no_frame",
    ]  # fmt: skip
    assert by_receipt["1003"][5:] == [
        "", "", "18", "25", "", "", "false", "no_face;outside_legal_hours"
    ]  # fmt: skip
    assert by_receipt["1004"][12] == "unreadable_frame"
    age, spread = by_receipt["1001"][5:7]
    assert float(age) == round(float(age), 1) and float(spread) >= 1.0
    p_legal, p_threshold = (float(p) for p in by_receipt["1001"][9:11])
    assert 0.0 <= p_legal <= p_threshold <= 1.0  # under 18 is less likely than under 25
    # the age threshold of the settings (25) against the tiny model's estimate
    assert by_receipt["1001"][12] == ("under_age_threshold" if float(age) < 25 else "")


def test_export_json(ingested: NightBuilder, cli) -> None:
    assert cli("audit", "--date", DAY).exit_code == 0
    result = cli("flags", "--date", DAY, "--format", "json", "--store", "S1")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [r["receipt_id"] for r in rows] == ["1001", "1002", "1004", "1003"]
    assert rows[1] == {
        "store_id": "S1",
        "register_id": "R2",
        "cashier_id": "C1",
        "receipt_id": "1002",
        "sold_at": "2024-03-01T13:00:00+01:00",
        "estimated_age": None,
        "age_spread": None,
        "legal_age": 18,
        "age_threshold": 25,
        "p_under_legal": None,
        "p_under_threshold": None,
        "challenged": False,
        "flags": ["no_frame"],
    }
    assert isinstance(rows[0]["estimated_age"], float)


def test_every_store_by_default_and_the_tokyo_store_in_its_own_time(
    ingested: NightBuilder, cli
) -> None:
    result = cli("audit", "--date", DAY)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert [line.split(":")[0] for line in lines] == ["S1 2024-03-01", "S3 2024-03-01"]
    result = cli("flags", "--date", DAY)
    rows = list(csv.reader(io.StringIO(result.output)))[1:]
    assert [r[0] for r in rows] == ["S1"] * 4 + ["S3"]
    assert rows[-1][4] == "2024-03-01T10:00:00+09:00"


def test_backfill_with_since(ingested: NightBuilder, cli) -> None:
    result = cli(
        "audit", "--since", "2024-02-29", "--date", "2024-03-02", "--store", "S1", "--allow-empty"
    )
    assert result.exit_code == 0, result.output
    assert [line[:13] for line in result.output.splitlines()] == [
        "S1 2024-02-29",
        "S1 2024-03-01",
        "S1 2024-03-02",
    ]
    assert "S1 2024-03-02: 1 alcohol sales" in result.output


def audit_runs(engine: Engine) -> list[tuple[str, str, str]]:
    with Session(engine) as session:
        rows = session.execute(
            sa.select(AuditRun.store_id, AuditRun.business_date, AuditRun.status).order_by(
                AuditRun.id
            )
        ).all()
    return [(store_id, str(day), status) for store_id, day, status in rows]


def test_a_date_without_sales_or_frames_records_nothing(
    ingested: NightBuilder, cli, engine: Engine
) -> None:
    result = cli("audit", "--date", "2020-01-01")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "S1 2020-01-01: no sales and no frames; nothing recorded "
        "(--allow-empty to record an empty night)",
        "S3 2020-01-01: no sales and no frames; nothing recorded "
        "(--allow-empty to record an empty night)",
        "Error: nothing audited: no store-night has sales or frames",
    ]
    assert audit_runs(engine) == []


def test_a_database_without_stores_is_nothing_to_audit(cli, engine: Engine) -> None:
    result = cli("audit", "--date", "2024-03-01")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: nothing to audit: no store in the database (ingest a POS export first)\n"
    )
    result = cli("audit", "--date", "2024-03-01", "--allow-empty")
    assert result.exit_code == 0, result.output
    assert result.stderr == "nothing to audit: no store in the database\n"
    assert audit_runs(engine) == []


def test_allow_empty_records_an_empty_night(ingested: NightBuilder, cli, engine: Engine) -> None:
    result = cli("audit", "--date", "2020-01-01", "--store", "S1", "--allow-empty")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("S1 2020-01-01: 0 alcohol sales, 0 flagged in ")
    assert audit_runs(engine) == [("S1", "2020-01-01", "succeeded")]


def test_backfill_skips_the_empty_nights_and_audits_the_others(
    ingested: NightBuilder, cli, engine: Engine
) -> None:
    result = cli("audit", "--since", "2024-02-29", "--date", "2024-03-02", "--store", "S1")
    assert result.exit_code == 0, result.output
    assert result.stderr == (
        "S1 2024-02-29: no sales and no frames; nothing recorded "
        "(--allow-empty to record an empty night)\n"
    )
    assert [line[:13] for line in result.stdout.splitlines()] == [
        "S1 2024-03-01",
        "S1 2024-03-02",
    ]
    assert audit_runs(engine) == [
        ("S1", "2024-03-01", "succeeded"),
        ("S1", "2024-03-02", "succeeded"),
    ]


def test_a_second_concurrent_run_is_refused(ingested: NightBuilder, cli, engine: Engine) -> None:
    with store_night_lock(engine, "S1", date(2024, 3, 1)):
        result = cli("audit", "--date", DAY, "--store", "S1")
    assert result.exit_code == 1
    assert "S1 2024-03-01: refused: another audit of this store-night is running" in result.output
    assert "1 of 1 store-nights not audited" in result.output
    assert run_statuses(engine) == []  # refused before it started


@pytest.mark.parametrize(
    "args,message",
    [
        (["audit", "--date", DAY, "--store", "S9"], "unknown store 'S9'; known: S1, S3"),
        (["flags", "--date", DAY, "--store", "XXX1"], "unknown store 'XXX1'; known: S1, S3"),
        (["flags", "--date", DAY, "--store", "S1"], "no audit result for 2024-03-01 at store S1"),
        (["flags", "--date", DAY], "no audit result for 2024-03-01"),
    ],
)
def test_domain_errors_are_one_line(ingested: NightBuilder, cli, args, message) -> None:
    result = cli(*args)
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output


def test_an_unknown_store_among_known_ones_stops_before_any_audit(
    ingested: NightBuilder, cli, engine: Engine
) -> None:
    result = cli("audit", "--date", DAY, "--store", "S1", "--store", "XXX1")
    assert result.exit_code == 1
    assert result.output == "Error: unknown store 'XXX1'; known: S1, S3\n"
    assert run_statuses(engine) == []


@pytest.mark.parametrize(
    "args", [["audit", "--date", "01.03.2024"], ["audit", "--since", "2024-03-02", "--date", DAY]]
)
def test_usage_errors(ingested: NightBuilder, cli, args) -> None:
    assert cli(*args).exit_code == 2


def test_a_missing_model_directory_is_named(
    ingested: NightBuilder, tmp_path: Path, db_url: str
) -> None:
    missing = tmp_path / "no-model-here"
    (tmp_path / "other").mkdir()
    config = write_config(
        tmp_path / "other" / "auditor.toml", database_url=db_url, model={"path": str(missing)}
    )
    result = CliRunner().invoke(main, ["--config", str(config), "audit", "--date", DAY])
    assert result.exit_code == 1
    assert f"age model directory {missing} not found" in result.output


def test_a_night_audited_again_gets_its_written_pages_again(
    ingested: NightBuilder, cli, audit_settings: Settings
) -> None:
    assert cli("audit", "--date", DAY, "--store", "S1").exit_code == 0
    first = cli("audit", "--date", DAY, "--store", "S1")  # no page yet: none written
    assert first.exit_code == 0 and "report pages" not in first.output
    assert cli("report", "--date", DAY).exit_code == 0
    page = audit_settings.report_dir / DAY / "S1.html"
    written = page.read_text()

    again = cli("audit", "--date", DAY, "--store", "S1")
    assert again.exit_code == 0, again.output
    assert again.output.splitlines()[-1] == (
        f"report pages written again: {audit_settings.report_dir / DAY}"
    )
    assert page.read_text() != written  # the new run's page
