"""The nightly job and its schedule: the job on a real database, the trigger, SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from auditor import nightly as nightly_module
from auditor.audit.run import AuditTools
from auditor.audit.summary import RunSummary
from auditor.cron import cron_weekdays
from auditor.nightly import nightly
from auditor.schedule import (
    JOB_ID,
    MISFIRE_GRACE_S,
    NightlyJob,
    build_scheduler,
    next_run,
)
from auditor.settings import Settings
from tests.audit.night import NightBuilder, verdicts_by_receipt
from tests.factories import make_settings


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    "now,cron,zone,expected",
    [
        # the default: 02:30 in the chain's zone (Europe/Berlin in the tests)
        ("2024-03-01 12:00", None, None, "2024-03-02 01:30"),
        ("2024-03-02 01:29", None, None, "2024-03-02 01:30"),
        ("2024-03-02 01:30:01", None, None, "2024-03-03 01:30"),
        # summer time
        ("2024-07-01 12:00", None, None, "2024-07-02 00:30"),
        # the night the clocks go forward, 02:30 does not exist: it runs an hour later
        ("2024-03-30 12:00", None, None, "2024-03-31 01:30"),
        # weekdays as cron counts them: 1-5 is Monday to Friday (1 March 2024 is a Friday)
        ("2024-03-01 12:00", "15 4 * * 1-5", "Asia/Tokyo", "2024-03-03 19:15"),
        ("2024-03-01 12:00", "0 3 * * 0", None, "2024-03-03 02:00"),
    ],
)
def test_next_run(tmp_path: Path, now: str, cron: str | None, zone: str | None, expected: str):
    schedule = {k: v for k, v in (("cron", cron), ("timezone", zone)) if v}
    settings = make_settings(tmp_path, schedule=schedule)
    found = next_run(settings, utc(now))
    assert found is not None and found.astimezone(UTC) == utc(expected)


@pytest.mark.parametrize(
    "field,expected",
    [
        ("*", "*"),
        ("1-5", "0,1,2,3,4"),  # Monday to Friday
        ("0", "6"),
        ("7", "6"),
        ("0,6", "6,5"),
        ("0-7", "6,0,1,2,3,4,5"),
        ("*/2", "6,1,3,5"),  # Sunday, Tuesday, Thursday, Saturday
        ("1-5/2", "0,2,4"),
        ("mon-fri", "0,1,2,3,4"),
        ("sun,3", "6,2"),
        ("sun-tue", "6,0,1"),  # cron's week starts on Sunday
        ("Sat", "5"),
        ("1/2", "0,2,4,6"),  # from Monday, every other day to the week's end: Sunday too
        ("0/3", "6,2,5"),
    ],
)
def test_cron_weekdays(field: str, expected: str) -> None:
    assert cron_weekdays(field) == expected


def test_scheduler_wiring(settings: Settings) -> None:
    scheduler = build_scheduler(settings, lambda: None)
    job = scheduler.get_job(JOB_ID)
    assert job is not None
    assert (job.coalesce, job.max_instances, job.misfire_grace_time) == (
        True,
        1,
        MISFIRE_GRACE_S,
    )
    assert str(job.trigger.timezone) == "Europe/Berlin"
    fire = job.trigger.get_next_fire_time(None, utc("2024-03-01 12:00"))
    assert fire.astimezone(UTC) == utc("2024-03-02 01:30")


def runs_of_job(firings: list[str], **schedule: str) -> list[datetime]:
    """The times the nightly job ran as, fired at each of ``firings`` (UTC)."""
    calls: list[datetime] = []
    times = iter(utc(t) for t in firings)

    def record(*, now: datetime, **_: Any) -> None:
        calls.append(now)

    job = NightlyJob(
        make_settings(Path("/nonexistent"), schedule=schedule),
        None,  # type: ignore[arg-type]
        stop=threading.Event(),
        run=record,
        clock=lambda: next(times),
    )
    for _ in firings:
        job()
    return calls


def test_the_job_runs_once_per_local_date() -> None:
    """When the clocks go back, 02:30 comes twice: the second firing does nothing."""
    calls = runs_of_job(["2024-10-27 00:30", "2024-10-27 01:30", "2024-10-28 01:30"])
    assert calls == [utc("2024-10-27 00:30"), utc("2024-10-28 01:30")]


def test_a_late_firing_runs_as_at_its_cron_time() -> None:
    """23:30 in Berlin, fired 40 minutes late (after midnight): still the night it was due
    for, and the next evening's firing on time is not taken for a second one that day."""
    calls = runs_of_job(["2024-03-02 23:10", "2024-03-03 22:30"], cron="30 23 * * *")
    assert calls == [utc("2024-03-02 22:30"), utc("2024-03-03 22:30")]


@pytest.fixture
def two_nights(night: NightBuilder, session_factory: sessionmaker[Session]) -> NightBuilder:
    night.sale("berlin", "2024-03-01 12:00:00")
    night.frame("2024-03-01 12:00:02", "face")
    night.sale("tokyo", "2024-03-02 12:00:00", store="S3")
    night.ingest(session_factory)
    return night


def test_nightly_audits_each_stores_previous_day_then_reports(
    two_nights: NightBuilder,
    engine: Engine,
    audit_settings: Settings,
    tools: AuditTools,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reported: list[list[RunSummary]] = []

    def failing_step(settings: Settings, engine: Engine, summaries: list[RunSummary]) -> None:
        raise RuntimeError("no disk")

    def step(settings: Settings, engine: Engine, summaries: list[RunSummary]) -> None:
        reported.append(summaries)

    monkeypatch.setattr(nightly_module, "REPORT_STEPS", [failing_step, step])
    # 02:30 in Berlin on 2 March is 10:30 in Tokyo: Tokyo's last full day is 1 March too
    summaries = nightly(
        settings=audit_settings, engine=engine, now=utc("2024-03-02 01:30"), tools=tools
    )
    assert [(s.store_id, s.business_date, s.status) for s in summaries] == [
        ("S1", date(2024, 3, 1), "succeeded"),
        ("S3", date(2024, 3, 1), "succeeded"),
    ]
    assert reported == [summaries]  # a failing step does not stop the next
    assert set(verdicts_by_receipt(engine)) == {"berlin"}
    # the next day, Tokyo's 2 March holds its sale
    summaries = nightly(
        settings=audit_settings, engine=engine, now=utc("2024-03-03 01:30"), tools=tools
    )
    assert set(verdicts_by_receipt(engine)) == {"berlin", "tokyo"}


def test_nightly_stops_when_asked(
    two_nights: NightBuilder, engine: Engine, audit_settings: Settings, tools: AuditTools
) -> None:
    stop = threading.Event()
    stop.set()
    summaries = nightly(
        settings=audit_settings, engine=engine, now=utc("2024-03-02 01:30"), tools=tools, stop=stop
    )
    assert [(s.store_id, s.status, s.error) for s in summaries] == [
        ("S1", "failed", nightly_module.NOT_AUDITED),
        ("S3", "failed", nightly_module.NOT_AUDITED),
    ]
    assert verdicts_by_receipt(engine) == {}


def test_a_model_that_cannot_be_loaded_fails_every_night_and_the_steps_still_run(
    two_nights: NightBuilder,
    engine: Engine,
    audit_settings: Settings,
    tmp_path: Path,
    reported: list[list[RunSummary]],
) -> None:
    missing = tmp_path / "no-model"
    settings = audit_settings.model_copy(
        update={"model": audit_settings.model.model_copy(update={"path": missing})}
    )
    summaries = nightly(settings=settings, engine=engine, now=utc("2024-03-02 01:30"))
    assert [(s.store_id, s.business_date, s.status) for s in summaries] == [
        ("S1", date(2024, 3, 1), "failed"),
        ("S3", date(2024, 3, 1), "failed"),
    ]
    assert all(str(missing) in (s.error or "") for s in summaries)
    assert reported == [summaries]  # the summary and the purge still run


def test_schedule_command_stops_cleanly_on_sigterm(
    audit_settings: Settings, tmp_path: Path
) -> None:
    auditor = Path(sys.executable).parent / "auditor"  # the console script beside python
    command = [str(auditor), "--config", str(tmp_path / "auditor.toml")]
    process = subprocess.Popen(
        [*command, "schedule"], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True
    )
    try:
        assert process.stderr is not None
        deadline = time.monotonic() + 120
        line = ""
        while "nightly audit scheduled" not in line and time.monotonic() < deadline:
            line = process.stderr.readline()
            if not line and process.poll() is not None:
                break
        assert "next run" in line, line
        time.sleep(0.5)
        process.send_signal(signal.SIGTERM)
        started = time.monotonic()
        assert process.wait(timeout=10) == 0
        assert time.monotonic() - started < 5
        assert "scheduler stopped" in process.stderr.read()
    finally:
        process.kill()
        process.wait(timeout=10)
        if process.stderr is not None:
            process.stderr.close()
