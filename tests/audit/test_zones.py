"""Business days in the store's zone: daylight-saving nights and a store east of UTC."""

from __future__ import annotations

from datetime import date

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from auditor.audit.export import night_verdicts
from auditor.audit.run import AuditTools, audit_store_night
from auditor.settings import Settings
from tests.audit.night import NightBuilder, verdicts_by_receipt, with_threshold


def audit(engine: Engine, settings: Settings, tools: AuditTools, store_id: str, day: date):
    return audit_store_night(
        engine=engine, settings=settings, tools=tools, store_id=store_id, day=day
    )


def exported(engine: Engine, settings: Settings, store_id: str, day: date) -> dict[str, dict]:
    with Session(engine) as session:
        rows = night_verdicts(session, day=day, settings=settings, store_ids=[store_id]).rows
    return {row["receipt_id"]: row for row in rows}


def test_a_night_when_the_clocks_go_forward(
    night: NightBuilder,
    engine: Engine,
    session_factory: sessionmaker[Session],
    audit_settings: Settings,
    tools: AuditTools,
) -> None:
    """Berlin, 31 March 2024: 23 hours; 01:59:58 CET and 03:00:00 CEST are 2 s apart."""
    night.sale("before-change", "2024-03-31 01:30:00")
    night.sale("after-change", "2024-03-31 03:00:00")
    night.frame("2024-03-31 01:59:58", "face")
    night.sale("last", "2024-03-31 23:59:59")
    night.sale("next-day", "2024-04-01 00:00:30")
    night.sale("day-before", "2024-03-30 23:59:59")
    night.ingest(session_factory)
    summary = audit(engine, with_threshold(audit_settings, 0), tools, "S1", date(2024, 3, 31))
    assert summary.sales_audited == 3
    verdicts = verdicts_by_receipt(engine)
    assert set(verdicts) == {"before-change", "after-change", "last"}
    assert verdicts["after-change"]["matched"] == 1  # the frame 2 s earlier, an hour by the clock
    assert verdicts["before-change"]["matched"] == 0
    rows = exported(engine, audit_settings, "S1", date(2024, 3, 31))
    assert rows["before-change"]["sold_at"] == "2024-03-31T01:30:00+01:00"
    assert rows["after-change"]["sold_at"] == "2024-03-31T03:00:00+02:00"
    assert rows["after-change"]["flags"] == ["outside_legal_hours"]
    assert rows["last"]["sold_at"] == "2024-03-31T23:59:59+02:00"


def test_a_night_when_the_clocks_go_back(
    night: NightBuilder,
    engine: Engine,
    session_factory: sessionmaker[Session],
    audit_settings: Settings,
    tools: AuditTools,
) -> None:
    """Berlin, 27 October 2024: 25 hours, from 22:00 UTC on the 26th to 23:00 UTC."""
    night.sale("first", "2024-10-27 00:00:00")
    night.sale("repeated-hour", "2024-10-27 02:30:00")  # read as the first 02:30 (CEST)
    night.sale("noon", "2024-10-27 12:00:00")
    night.sale("last", "2024-10-27 23:59:59")
    night.sale("next-day", "2024-10-28 00:00:00")
    night.ingest(session_factory)
    summary = audit(engine, audit_settings, tools, "S1", date(2024, 10, 27))
    assert summary.sales_audited == 4
    rows = exported(engine, audit_settings, "S1", date(2024, 10, 27))
    assert rows["repeated-hour"]["sold_at"] == "2024-10-27T02:30:00+02:00"
    assert rows["last"]["sold_at"] == "2024-10-27T23:59:59+01:00"
    assert rows["noon"]["flags"] == ["no_frame"]
    assert rows["first"]["flags"] == ["no_frame", "outside_legal_hours"]


def test_a_store_east_of_utc_spans_two_utc_dates(
    night: NightBuilder,
    engine: Engine,
    session_factory: sessionmaker[Session],
    audit_settings: Settings,
    tools: AuditTools,
) -> None:
    """Tokyo (UTC+9): business day 1 March is 29 Feb 15:00 UTC to 1 March 15:00 UTC."""
    night.sale("early", "2024-03-01 00:30:00", store="S3")  # 29 Feb 15:30 UTC
    night.frame("2024-03-01 00:30:02", "face", store="S3")
    night.sale("evening", "2024-03-01 20:00:00", store="S3")  # 1 March 11:00 UTC
    night.frame("2024-03-01 20:00:01", "no_face", store="S3")
    night.sale("next-day", "2024-03-02 00:10:00", store="S3")  # 1 March 15:10 UTC
    night.sale("day-before", "2024-02-29 23:50:00", store="S3")  # 29 Feb 14:50 UTC
    night.ingest(session_factory)
    settings = with_threshold(audit_settings, 200)
    summary = audit(engine, settings, tools, "S3", date(2024, 3, 1))
    assert summary.sales_audited == 2
    rows = exported(engine, settings, "S3", date(2024, 3, 1))
    assert set(rows) == {"early", "evening"}
    assert rows["early"]["sold_at"] == "2024-03-01T00:30:00+09:00"
    assert rows["early"]["flags"] == ["under_age_threshold", "outside_legal_hours"]
    assert rows["evening"]["flags"] == ["no_face"]
    # the next Tokyo day holds the sale made on the UTC date of 1 March
    audit(engine, settings, tools, "S3", date(2024, 3, 2))
    assert set(exported(engine, settings, "S3", date(2024, 3, 2))) == {"next-day"}
