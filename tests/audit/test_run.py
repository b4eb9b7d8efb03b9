"""The audit of a store-night on real databases, real frames and a real (tiny) age model."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from auditor.audit.lock import AuditInProgress
from auditor.audit.run import AuditTools, audit_nights, audit_store_night
from auditor.audit.store import INTERRUPTED, UnknownStore
from auditor.db.models import AgeEstimate, AuditRun, Flag, Sale
from auditor.db.queries import current_run
from auditor.ingest.pos import SALES_COLUMNS, ingest_sales_file
from auditor.ingest.snapshots import ingest_snapshots
from auditor.settings import Settings
from tests.audit.night import (
    NightBuilder,
    result_state,
    run_statuses,
    verdicts_by_receipt,
    with_threshold,
)
from tests.factories import sale_row, write_sales_csv
from tests.reports.html import read

DAY = date(2024, 3, 1)


def build_night(night: NightBuilder) -> None:
    """Store S1 (Berlin), 1 March 2024: one sale for each case the audit must tell apart."""
    night.sale("face", "2024-03-01 12:00:00")
    night.frame("2024-03-01 12:00:02", "face")
    night.sale("no-frame", "2024-03-01 13:00:00")
    night.frame("2024-03-01 13:00:30", "face")  # outside the window (10 s after)
    night.sale("no-face", "2024-03-01 14:00:00")
    night.frame("2024-03-01 13:59:58", "no_face")
    for minute, kind in enumerate(("truncated", "empty", "not_image", "huge", "missing")):
        night.sale(kind, f"2024-03-01 15:{minute:02d}:00")
        night.frame(f"2024-03-01 15:{minute:02d}:01", kind)
    night.sale("late", "2024-03-01 23:30:00")
    night.frame("2024-03-01 23:30:01", "face")
    # one bad and one good frame: judged on the good one
    night.sale("mixed", "2024-03-01 16:30:00", register="R2")
    night.frame("2024-03-01 16:30:01", "truncated", register="R2")
    night.frame("2024-03-01 16:30:03", "face", register="R2")
    # not audited: no alcohol, another register's frame, other days
    night.sale("bread", "2024-03-01 17:00:00", alcohol=False)
    night.frame("2024-03-01 17:00:01", "face")
    night.sale("other-register", "2024-03-01 18:00:00", register="R3")
    night.frame("2024-03-01 18:00:01", "face", register="R2")
    night.sale("day-before", "2024-02-29 23:59:00")
    night.sale("day-after", "2024-03-02 00:01:00")
    # a sale just before midnight matches a frame just after it
    night.sale("midnight", "2024-03-01 23:59:58", register="R2")
    night.frame("2024-03-02 00:00:03", "face", register="R2")


EXPECTED_FLAGS = {
    "face": "under_age_threshold",
    "no-frame": "no_frame",
    "no-face": "no_face",
    "truncated": "unreadable_frame",
    "empty": "unreadable_frame",
    "not_image": "unreadable_frame",
    "huge": "unreadable_frame",
    "missing": "unreadable_frame",
    "late": "under_age_threshold;outside_legal_hours",
    "mixed": "under_age_threshold",
    "other-register": "no_frame",
    "midnight": "under_age_threshold;outside_legal_hours",
}


def audit(engine: Engine, settings: Settings, tools: AuditTools, day: date = DAY, **kwargs):
    return audit_store_night(
        engine=engine, settings=settings, tools=tools, store_id="S1", day=day, **kwargs
    )


@pytest.fixture
def built(
    night: NightBuilder, session_factory: sessionmaker[Session], engine: Engine
) -> NightBuilder:
    build_night(night)
    night.ingest(session_factory)
    return night


def test_every_case_gets_its_flags(
    built: NightBuilder, engine: Engine, audit_settings: Settings, tools: AuditTools
) -> None:
    settings = with_threshold(audit_settings, 200)  # every face is under 200
    summary = audit(engine, settings, tools)
    assert summary.status == "succeeded"
    assert summary.sales_audited == len(EXPECTED_FLAGS)
    verdicts = verdicts_by_receipt(engine)
    assert {r: v["flags"] for r, v in verdicts.items()} == EXPECTED_FLAGS
    assert summary.flagged_sales == len(EXPECTED_FLAGS)

    face, mixed, no_face = verdicts["face"], verdicts["mixed"], verdicts["no-face"]
    assert 0 < face["age"] < 120 and face["spread"] >= 1
    assert (face["matched"], face["read"], face["faces"]) == (1, 1, 1)
    assert (mixed["matched"], mixed["read"], mixed["faces"]) == (2, 1, 1)
    assert (no_face["matched"], no_face["read"], no_face["faces"]) == (1, 1, 0)
    assert no_face["age"] is None
    assert verdicts["no-frame"]["matched"] == 0
    assert verdicts["truncated"]["read"] == 0

    with Session(engine) as session:
        run = current_run(session, store_id="S1", day=DAY)
        assert run is not None and run.model_version == tools.model.version
        assert run.settings["audit"]["age_threshold"] == 200
        assert run.sales_audited == 12 and run.flags_count == 14
        assert run.stats["counts"]["frames_unreadable"] == 6
        assert set(run.stats["seconds"]) >= {"query", "match", "read", "detect", "estimate"}
        flags = session.execute(sa.select(Flag).where(Flag.run_id == run.id)).scalars().all()
        under = [f for f in flags if f.kind == "under_age_threshold"]
        assert len(under) == 4
        for flag in under:  # the evidence: frame, face box, estimate, crop, model, threshold
            assert flag.snapshot_id is not None and flag.age_estimate_id is not None
            assert None not in (flag.face_x, flag.face_y, flag.face_w, flag.face_h)
            assert flag.age is not None and flag.spread is not None
            assert flag.face_crop is not None and flag.face_crop[:3] == b"\xff\xd8\xff"
            assert flag.model_version == tools.model.version and flag.threshold == 200
        for flag in flags:
            if flag.kind != "under_age_threshold":
                assert flag.face_crop is None  # no face kept without cause
            if flag.kind in ("no_face", "unreadable_frame"):
                assert flag.snapshot_id is not None and flag.age is None
            if flag.kind == "no_frame":
                assert flag.snapshot_id is None
        crops = session.execute(
            sa.select(sa.func.count()).where(AgeEstimate.face_crop.is_not(None))
        ).scalar_one()
        assert crops == 0


def test_threshold_zero_flags_no_face_as_under_age(
    built: NightBuilder, engine: Engine, audit_settings: Settings, tools: AuditTools
) -> None:
    audit(engine, with_threshold(audit_settings, 0), tools)
    verdicts = verdicts_by_receipt(engine)
    assert all("under_age_threshold" not in v["flags"] for v in verdicts.values())
    assert verdicts["face"]["flags"] == ""
    assert verdicts["late"]["flags"] == "outside_legal_hours"
    with Session(engine) as session:
        assert (
            session.execute(
                sa.select(sa.func.count()).where(Flag.face_crop.is_not(None))
            ).scalar_one()
            == 0
        )


def test_rerun_replaces_the_results_with_identical_ones(
    built: NightBuilder, engine: Engine, audit_settings: Settings, tools: AuditTools
) -> None:
    settings = with_threshold(audit_settings, 200)
    first = audit(engine, settings, tools)
    state = result_state(engine)
    second = audit(engine, settings, tools)
    assert result_state(engine) == state
    assert second.run_id != first.run_id
    assert run_statuses(engine) == [("replaced", None), ("succeeded", None)]
    with Session(engine) as session:
        old = session.execute(
            sa.select(sa.func.count()).where(Flag.run_id == first.run_id)
        ).scalar_one()
        assert old == 0  # the replaced run's results are gone


def test_a_failure_mid_run_keeps_the_previous_result_and_a_rerun_completes(
    built: NightBuilder, engine: Engine, audit_settings: Settings, tools: AuditTools
) -> None:
    settings = with_threshold(audit_settings, 200)
    audit(engine, settings, tools)
    complete = result_state(engine)

    def fail_after_three(done: int, total: int) -> None:
        if done == 3:
            raise RuntimeError("disk gone")

    with pytest.raises(RuntimeError, match="disk gone"):
        audit(engine, with_threshold(audit_settings, 0), tools, progress=fail_after_three)
    assert result_state(engine) == complete
    assert run_statuses(engine) == [
        ("succeeded", None),
        ("failed", "RuntimeError: disk gone"),
    ]
    audit(engine, settings, tools)
    assert result_state(engine) == complete


def test_a_failure_on_the_first_run_leaves_no_result(
    built: NightBuilder, engine: Engine, audit_settings: Settings, tools: AuditTools
) -> None:
    def fail(done: int, total: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        audit(engine, audit_settings, tools, progress=fail)
    assert verdicts_by_receipt(engine) == {}
    assert run_statuses(engine) == [("failed", INTERRUPTED)]


@pytest.mark.parametrize("detector", ["blazeface", "haar-alt2"])
def test_the_configured_detector_runs_the_audit(
    built: NightBuilder, engine: Engine, audit_settings: Settings, detector: str
) -> None:
    default = AuditTools.load(audit_settings)
    assert default.detector.name == "blazeface-short"
    audit_section = audit_settings.audit.model_copy(update={"detector": detector})
    settings = with_threshold(audit_settings.model_copy(update={"audit": audit_section}), 200)
    tools = AuditTools.load(settings)
    assert tools.detector.name == detector
    assert audit(engine, settings, tools).status == "succeeded"
    verdicts = verdicts_by_receipt(engine)
    assert {r: v["flags"] for r, v in verdicts.items()} == EXPECTED_FLAGS
    with Session(engine) as session:
        run = current_run(session, store_id="S1", day=DAY)
        assert run is not None
        assert run.stats["detector"] == detector
        assert run.settings["audit"]["detector"] == detector


KILLED_RUN = """
import os, sys, time
from datetime import date
from auditor.audit.run import AuditTools, audit_store_night
from auditor.db import make_engine
from auditor.settings import load_settings
from tests.audit.night import with_threshold

settings = with_threshold(load_settings(sys.argv[1]), 200)
tools = AuditTools.load(settings)

def stall(done, total):
    if done == 4:
        print("frame 4 of", total, flush=True)
        time.sleep(600)

audit_store_night(engine=make_engine(settings.database_url), settings=settings, tools=tools,
                  store_id="S1", day=date(2024, 3, 1), progress=stall)
"""


@pytest.mark.parametrize("earlier_result", [False, True])
def test_a_killed_run_then_a_rerun_ends_as_an_uninterrupted_run(
    built: NightBuilder,
    engine: Engine,
    audit_settings: Settings,
    tools: AuditTools,
    tmp_path: Path,
    earlier_result: bool,
) -> None:
    settings = with_threshold(audit_settings, 200)
    audit(engine, settings, tools)
    uninterrupted = result_state(engine)
    if not earlier_result:
        with engine.begin() as connection:
            for table in ("sale_verdicts", "flags", "age_estimates", "audit_runs"):
                connection.exec_driver_sql(f"DELETE FROM {table}")

    worker = subprocess.Popen(
        [sys.executable, "-c", KILLED_RUN, str(tmp_path / "auditor.toml")],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert worker.stdout is not None
        line = worker.stdout.readline()
        assert line.startswith("frame 4 of"), line
        worker.kill()  # SIGKILL in the middle of the frames: no cleanup of any kind
        worker.wait(timeout=30)
    finally:
        worker.kill()
        worker.wait(timeout=30)
        if worker.stdout is not None:
            worker.stdout.close()

    # the store-night shows its previous complete result, or none
    assert result_state(engine) == (
        uninterrupted
        if earlier_result
        else {"sale_verdicts": [], "age_estimates": [], "flags": [], "audit_runs": []}
    )
    assert run_statuses(engine)[-1] == ("running", None)

    audit(engine, settings, tools)
    assert result_state(engine) == uninterrupted
    statuses = run_statuses(engine)
    assert statuses[-2:] == [("failed", INTERRUPTED), ("succeeded", None)]


def test_a_second_run_of_the_same_night_is_refused(
    built: NightBuilder, engine: Engine, audit_settings: Settings, tools: AuditTools
) -> None:
    inside = threading.Event()
    release = threading.Event()
    errors: list[BaseException] = []

    def hold(done: int, total: int) -> None:
        inside.set()
        release.wait(timeout=60)

    def first_run() -> None:
        try:
            audit(engine, audit_settings, tools, progress=hold)
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    thread = threading.Thread(target=first_run)
    thread.start()
    try:
        assert inside.wait(timeout=120)
        with pytest.raises(AuditInProgress, match="another audit of this store-night"):
            audit(engine, audit_settings, tools)
        # another store-night of the same store is not held up
        other = audit(engine, audit_settings, tools, day=date(2024, 3, 2))
        assert other.status == "succeeded"
    finally:
        release.set()
        thread.join(timeout=120)
    assert errors == []
    with Session(engine) as session:
        runs = session.execute(
            sa.select(AuditRun.business_date, AuditRun.status).order_by(AuditRun.id)
        ).all()
    # the refused run left no trace; the first one finished
    assert [tuple(r) for r in runs] == [(DAY, "succeeded"), (date(2024, 3, 2), "succeeded")]


def test_unknown_store(engine: Engine, audit_settings: Settings, tools: AuditTools) -> None:
    with pytest.raises(UnknownStore, match="'S9' is not in the database"):
        audit_store_night(
            engine=engine, settings=audit_settings, tools=tools, store_id="S9", day=DAY
        )


def test_a_night_without_sales(
    built: NightBuilder, engine: Engine, audit_settings: Settings, tools: AuditTools
) -> None:
    summary = audit(engine, audit_settings, tools, day=date(2024, 3, 5))
    assert (summary.status, summary.sales_audited, summary.flagged_sales) == ("succeeded", 0, 0)
    assert "0 alcohol sales, 0 flagged" in str(summary)


def test_audit_nights_reports_failures_and_goes_on(
    built: NightBuilder, engine: Engine, audit_settings: Settings, tools: AuditTools
) -> None:
    summaries = audit_nights(
        engine=engine,
        settings=audit_settings,
        tools=tools,
        nights=[("S9", DAY), ("S1", DAY)],
    )
    assert [s.status for s in summaries] == ["failed", "succeeded"]
    assert "S9 2024-03-01: failed: store 'S9'" in str(summaries[0])


def _basket(receipt_id: str, local: str, **vodka: str) -> list[dict[str, str]]:
    """Bread, then a vodka line with ``vodka`` overriding its fields."""
    when = local.replace(" ", "T")
    bread = sale_row(
        receipt_id=receipt_id,
        sold_at=when,
        sku="9001",
        product_name="Bread",
        category="bakery",
        quantity="1",
        amount="2.49",
    )
    spirit = sale_row(
        receipt_id=receipt_id,
        sold_at=when,
        sku="5001",
        product_name="Vodka 0.7 l",
        category="spirits",
        quantity="1",
        amount="12.99",
    )
    return [bread, {**spirit, **vodka}]


POS_CASES = {
    # receipt: the vodka line's bad fields (the rest of its receipt is good)
    "bad-quantity": {"quantity": "1,0"},
    "other-register": {"register_id": "R2"},
    "flagged-by-column": {"category": "", "is_alcohol": "true", "amount": "x"},
}


def test_a_receipt_with_a_rejected_alcohol_line_is_audited_and_flagged_pos_error(
    night: NightBuilder,
    session_factory: sessionmaker[Session],
    engine: Engine,
    audit_settings: Settings,
    tools: AuditTools,
) -> None:
    """The hole: bread plus a vodka line that the ingest rejects was stored as a bread sale
    and never audited. Now it is an alcohol sale flagged ``pos_error`` naming the file:line,
    and the corrected file, ingested again, clears the flag on the next audit."""
    root = audit_settings.snapshot_root
    rows, fixed = [], []
    for minute, (receipt_id, bad) in enumerate(POS_CASES.items()):
        local = f"2024-03-01 12:{minute:02d}:00"
        rows += _basket(receipt_id, local, **bad)
        fixed += _basket(receipt_id, local)
        night.frame(f"2024-03-01 12:{minute:02d}:02", "face")
    rows += [sale_row(receipt_id="lone", sold_at="2024-03-01T13:00:00", quantity="-1")]
    fixed += [sale_row(receipt_id="lone", sold_at="2024-03-01T13:00:00")]
    night.frame("2024-03-01 13:00:02", "face")
    rows += _basket("bread-only", "2024-03-01 14:00:00")[:1]
    fixed += _basket("bread-only", "2024-03-01 14:00:00")[:1]
    columns = [*SALES_COLUMNS, "is_alcohol"]
    csv = write_sales_csv(root.parent / "sales.csv", rows, columns)
    summary = ingest_sales_file(csv, settings=audit_settings, session_factory=session_factory)
    assert summary.rejected == 4 and summary.receipts_with_errors == 4
    ingest_snapshots(root, settings=audit_settings, session_factory=session_factory)

    settings = with_threshold(audit_settings, 200)
    audit(engine, settings, tools)
    verdicts = verdicts_by_receipt(engine)
    expected = dict.fromkeys([*POS_CASES, "lone"], "under_age_threshold;pos_error")
    assert {r: v["flags"] for r, v in verdicts.items()} == expected
    with Session(engine) as session:
        details = dict(
            session.execute(
                sa.select(Sale.receipt_id, Flag.detail)
                .join(Flag, Flag.sale_id == Sale.id)
                .where(Flag.kind == "pos_error")
            ).all()
        )
        assert session.execute(
            sa.select(Sale.has_alcohol, Sale.line_count).where(Sale.receipt_id == "bad-quantity")
        ).one() == (True, 1)
    assert details == {
        "bad-quantity": f"{csv}:3: quantity: not a number: '1,0'",
        "other-register": f"{csv}:5: register_id: differs from line 4, the receipt's first line",
        "flagged-by-column": f"{csv}:7: amount: not a number: 'x'",
        "lone": f"{csv}:8: quantity: negative quantity",
    }

    # The corrected export replaces the receipts and clears their problems.
    write_sales_csv(csv, fixed, columns)
    again = ingest_sales_file(csv, settings=audit_settings, session_factory=session_factory)
    assert again.rejected == 0 and again.receipts_written == 4
    audit(engine, settings, tools)
    verdicts = verdicts_by_receipt(engine)
    assert {r: v["flags"] for r, v in verdicts.items()} == dict.fromkeys(
        [*POS_CASES, "lone"], "under_age_threshold"
    )
    with Session(engine) as session:
        assert (
            session.execute(
                sa.select(sa.func.count()).where(Sale.pos_errors.is_not(None))
            ).scalar_one()
            == 0
        )


def test_a_frame_the_ingest_found_unreadable_makes_unreadable_frame_not_no_frame(
    night: NightBuilder,
    session_factory: sessionmaker[Session],
    engine: Engine,
    audit_settings: Settings,
    tools: AuditTools,
) -> None:
    """The camera wrote a file at the sale's time that is empty or not a JPEG: the ingest
    lists it as a reject, and the audit says the frame was unreadable, not missing."""
    root = audit_settings.snapshot_root
    night.sale("empty-file", "2024-03-01 12:00:00")
    night.sale("gif-file", "2024-03-01 12:01:00")
    night.sale("no-file", "2024-03-01 12:02:00")
    day = root / "S1" / "R1" / "2024-03-01"
    day.mkdir(parents=True)
    (day / "120001.jpg").write_bytes(b"")
    (day / "120101.jpg").write_bytes(b"GIF89a not a jpeg")
    csv = write_sales_csv(root.parent / "sales.csv", night.rows)
    ingest_sales_file(csv, settings=audit_settings, session_factory=session_factory)
    frames = ingest_snapshots(root, settings=audit_settings, session_factory=session_factory)
    assert (frames.rejected, frames.unreadable) == (2, 2)

    audit(engine, audit_settings, tools)
    verdicts = verdicts_by_receipt(engine)
    assert {r: v["flags"] for r, v in verdicts.items()} == {
        "empty-file": "unreadable_frame",
        "gif-file": "unreadable_frame",
        "no-file": "no_frame",
    }
    assert (verdicts["empty-file"]["matched"], verdicts["empty-file"]["read"]) == (1, 0)
    with Session(engine) as session:
        run = current_run(session, store_id="S1", day=DAY)
        assert run is not None
        reasons = sorted(f["reason"] for f in run.stats["unreadable_frames"])
    assert reasons == ["at ingest: empty file", "at ingest: not a JPEG image"]


def test_a_night_audited_again_has_its_written_pages_rewritten(
    built: NightBuilder, engine: Engine, audit_settings: Settings, tools: AuditTools
) -> None:
    from auditor.reports.build import rewrite_stale_nights, write_night_reports

    def flagged(page: Path) -> set[str]:
        table = read(page).find("table", id="flagged-sales")
        return {row.attrs["data-receipt"] for row in table.find_all("tr", data_receipt=True)}

    audit(engine, with_threshold(audit_settings, 200), tools)  # every face under age
    write_night_reports(engine=engine, settings=audit_settings, day=DAY)
    page = audit_settings.report_dir / DAY.isoformat() / "S1.html"
    assert "data:image/jpeg;base64," in page.read_text()  # the flags' face crops
    assert {"face", "mixed"} <= flagged(page)
    assert rewrite_stale_nights(audit_settings, engine) == []  # up to date

    # audited again with a threshold no face is under: those flags and their crops are gone
    audit(engine, with_threshold(audit_settings, 16), tools)
    [report] = rewrite_stale_nights(audit_settings, engine)
    assert report.index.parent == page.parent
    assert "data:image/jpeg;base64," not in page.read_text()
    assert not {"face", "mixed"} & flagged(page)
    assert "late" in flagged(page)  # still sold outside legal hours
    assert rewrite_stale_nights(audit_settings, engine) == []


def test_a_night_whose_frames_were_purged_is_not_audited_again(
    built: NightBuilder, engine: Engine, audit_settings: Settings, tools: AuditTools
) -> None:
    from datetime import UTC, datetime, timedelta

    from auditor.audit.run import FramesPurged
    from auditor.retention import purge

    settings = with_threshold(audit_settings, 200)
    first = audit(engine, settings, tools)
    summary = purge(settings=settings, engine=engine, now=datetime.now(UTC) + timedelta(days=3650))
    assert summary.frames_removed > 0
    before = verdicts_by_receipt(engine)
    with pytest.raises(FramesPurged, match=r"^S1 2024-03-01: \d+ of \d+ frames were purged"):
        audit(engine, settings, tools)
    assert verdicts_by_receipt(engine) == before  # the estimates are kept
    assert before["face"]["age"] is not None
    statuses = run_statuses(engine)
    assert [s for s, _ in statuses] == ["succeeded", "failed"]
    assert "results are kept" in (statuses[1][1] or "")
    with Session(engine) as session:
        assert current_run(session, store_id="S1", day=DAY).id == first.run_id  # type: ignore[union-attr]
