"""Retention: which frames and crops go (pure rules in a table), and a purge on a real database
with real frame files: what is kept, what is removed, what is never touched, idempotence."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import Result
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from auditor.db.models import (
    AuditLogEntry,
    Flag,
    Review,
    Sale,
    SaleLine,
    SaleVerdict,
    Snapshot,
)
from auditor.retention import Cutoffs, EvidenceRow, FrameRow, is_held, plan_purge, purge
from auditor.settings import RetentionSettings, Settings
from tests.factories import make_settings
from tests.review_data import ChainBuilder

NOW = datetime(2024, 6, 1, 3, 0, tzinfo=UTC)
CUTOFFS = Cutoffs.at(NOW, RetentionSettings(frame_days=30, evidence_days=365))


def days_ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


@pytest.mark.parametrize(
    ("decision", "age_days", "held"),
    [
        (None, 40, True),  # open
        ("confirmed_violation", 40, True),
        ("adult", 40, False),
        ("id_checked", 40, False),
        ("invalid_frame", 40, False),
        (None, 364, True),
        (None, 366, False),  # open, but past the evidence retention
        ("confirmed_violation", 366, False),
    ],
)
def test_held_evidence(decision: str | None, age_days: float, held: bool) -> None:
    evidence = EvidenceRow(1, days_ago(age_days), 10, decision)
    assert is_held(evidence, CUTOFFS) is held


def test_plan() -> None:
    frames = [
        FrameRow(1, "S1", days_ago(40), "a.jpg"),  # evidence of an open flag: kept
        FrameRow(2, "S1", days_ago(40), "b.jpg"),  # evidence of a decided flag: goes
        FrameRow(3, "S1", days_ago(40), "c.jpg"),  # nobody's evidence: goes
        FrameRow(4, "S1", days_ago(10), "d.jpg"),  # young: stays
        FrameRow(5, "S1", days_ago(40), "e.jpg"),  # shared by a held and a decided flag
    ]
    evidence = [
        EvidenceRow(11, days_ago(40), 1, None),
        EvidenceRow(12, days_ago(40), 2, "adult"),
        EvidenceRow(14, days_ago(10), 4, "adult"),  # young: stays
        EvidenceRow(15, days_ago(40), 5, "confirmed_violation"),
        EvidenceRow(16, days_ago(40), 5, "invalid_frame"),
        EvidenceRow(17, days_ago(40), None, "adult"),  # a crop without a frame
    ]
    plan = plan_purge(frames=frames, evidence=evidence, cutoffs=CUTOFFS)
    assert [f.snapshot_id for f in plan.frames] == [2, 3]
    assert plan.flag_ids == [12, 16, 17]
    assert (plan.frames_kept, plan.flags_kept) == (2, 2)


# -- on a database with files --------------------------------------------------------------------


@pytest.fixture
def retention_settings(tmp_path: Path, db_url: str) -> Settings:
    return make_settings(
        tmp_path, database_url=db_url, retention={"frame_days": 30, "evidence_days": 365}
    )


@pytest.fixture
def stored(engine: Engine, retention_settings: Settings) -> ChainBuilder:
    with Session(engine) as session:
        build = ChainBuilder(session, retention_settings)
        build.sale("old-open", days_ago(60), age=17.0)
        build.sale("old-confirmed", days_ago(60), age=18.0)
        build.sale("old-adult", days_ago(60), age=19.0)
        build.sale("old-revised", days_ago(60), age=20.0)
        build.sale("old-clean", days_ago(60), age=40.0)
        build.sale("old-no-face", days_ago(60), age=None, kinds=("no_face",))
        build.sale("recent-adult", days_ago(5), age=21.0)
        build.sale("ancient-open", days_ago(400), age=16.0)
        reviewer = build.user("lp", "loss_prevention")
        t = days_ago(50)
        build.review("old-confirmed", "confirmed_violation", by=reviewer, at=t)
        build.review("old-adult", "adult", by=reviewer, at=t)
        build.review("old-revised", "confirmed_violation", by=reviewer, at=t)
        build.review("old-revised", "adult", by=reviewer, at=t + timedelta(hours=1))
        build.review("old-no-face", "invalid_frame", by=reviewer, at=t)
        build.review("recent-adult", "adult", by=reviewer, at=days_ago(1))
        session.commit()
        return build


def state(engine: Engine, build: ChainBuilder) -> dict[str, tuple[bool, bool, bool]]:
    """Receipt -> (frame file there, snapshot not purged, flag crop there) ."""
    out = {}
    with Session(engine) as session:
        for receipt, snapshot_id in build.made.snapshots.items():
            snapshot = session.get(Snapshot, snapshot_id)
            assert snapshot is not None
            flag_id = build.made.flags.get(receipt)
            flag = session.get(Flag, flag_id) if flag_id else None
            out[receipt] = (
                (build.settings.snapshot_root / snapshot.path).is_file(),
                snapshot.purged_at is None,
                flag is not None and flag.face_crop is not None,
            )
    return out


def counts(engine: Engine) -> tuple[int, ...]:
    with Session(engine) as session:
        return tuple(
            session.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
            for t in (Sale, SaleLine, SaleVerdict, Flag, Review)
        )


KEPT = (True, True, True)
KEPT_NO_CROP = (True, True, False)
GONE = (False, False, False)


def test_purge_keeps_open_and_confirmed_evidence_only(
    engine: Engine, stored: ChainBuilder, retention_settings: Settings
) -> None:
    before = counts(engine)
    summary = purge(settings=retention_settings, engine=engine, now=NOW, actor="test")
    assert state(engine, stored) == {
        "old-open": KEPT,
        "old-confirmed": KEPT,
        "old-adult": GONE,
        "old-revised": GONE,  # its latest decision is "adult"
        "old-clean": GONE,
        "old-no-face": GONE,
        "recent-adult": KEPT,
        "ancient-open": GONE,  # past evidence_days
    }
    assert counts(engine) == before  # sales, lines, verdicts, flags, reviews: all there
    assert summary.frames_removed == summary.files_deleted == 5
    assert summary.flags_evidence_purged == 4  # old-adult, old-revised, old-no-face, ancient
    assert summary.flag_crops_removed == 3
    assert (summary.frames_kept, summary.flags_kept) == (2, 2)
    with Session(engine) as session:
        purged = session.execute(
            sa.select(Flag.id).where(Flag.evidence_purged_at.is_not(None))
        ).scalars()
        assert set(purged) == {
            stored.made.flags[r]
            for r in ("old-adult", "old-revised", "old-no-face", "ancient-open")
        }
        log = session.execute(sa.select(AuditLogEntry)).scalars().all()
    assert [(e.action, e.actor) for e in log] == [("purge", "test")]
    assert log[0].details["frames_removed"] == 5
    assert log[0].details["frames_by_store"] == {"S1": 5}
    assert sorted(log[0].details["flag_ids"]) == sorted(summary.flag_ids)

    again = purge(settings=retention_settings, engine=engine, now=NOW, actor="test")
    assert (again.frames_removed, again.flags_evidence_purged, again.flag_crops_removed) == (
        0,
        0,
        0,
    )


def test_dry_run_changes_nothing(
    engine: Engine, stored: ChainBuilder, retention_settings: Settings
) -> None:
    before = state(engine, stored)
    summary = purge(settings=retention_settings, engine=engine, now=NOW, dry_run=True)
    assert state(engine, stored) == before
    assert summary.frames_removed == 5 and summary.flags_evidence_purged == 4
    assert str(summary).startswith("would remove 5 frames")
    with Session(engine) as session:
        assert session.execute(sa.select(sa.func.count()).select_from(AuditLogEntry)).scalar() == 0


def test_a_missing_file_is_fine_and_a_path_outside_the_root_is_never_deleted(
    engine: Engine, stored: ChainBuilder, retention_settings: Settings, tmp_path: Path
) -> None:
    outside = tmp_path / "outside.jpg"
    outside.write_bytes(b"\xff\xd8 not ours")
    with Session(engine) as session, session.begin():
        session.add(
            Snapshot(
                store_id="S1",
                register_id="R1",
                captured_at=days_ago(90),
                path="../outside.jpg",
                size_bytes=9,
                sha256="0" * 64,
            )
        )
        clean = session.get(Snapshot, stored.made.snapshots["old-clean"])
        assert clean is not None
        (retention_settings.snapshot_root / clean.path).unlink()
    summary = purge(settings=retention_settings, engine=engine, now=NOW)
    assert outside.is_file()
    assert summary.files_failed == ["../outside.jpg"]
    assert summary.files_missing == 1 and summary.frames_removed == 5
    with Session(engine) as session:
        row = session.execute(
            sa.select(Snapshot).where(Snapshot.path == "../outside.jpg")
        ).scalar_one()
        assert row.purged_at is None


def test_purge_command(
    engine: Engine,
    stored: ChainBuilder,
    run_cli: Callable[..., Result],
) -> None:
    result = run_cli("purge", "--dry-run")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("would remove")
    result = run_cli("purge")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("removed")
    with Session(engine) as session:
        entry = session.execute(sa.select(AuditLogEntry)).scalar_one()
    assert entry.action == "purge" and entry.actor.startswith("cli:")


def test_the_nightly_job_purges_after_the_reports(
    engine: Engine, stored: ChainBuilder, retention_settings: Settings
) -> None:
    from auditor.nightly import REPORT_STEPS
    from auditor.retention import nightly_purge

    assert REPORT_STEPS[-1] is nightly_purge
    nightly_purge(retention_settings, engine, [])
    with Session(engine) as session:
        entry = session.execute(sa.select(AuditLogEntry)).scalar_one()
    assert (entry.action, entry.actor) == ("purge", "nightly")
    assert entry.details["frames_removed"] == 8  # today every test frame is past retention


def _add_frame_row(session: Session, path: str, captured_at: datetime) -> None:
    session.add(
        Snapshot(
            store_id="S1",
            register_id="R1",
            captured_at=captured_at,
            path=path,
            size_bytes=1,
            sha256="0" * 64,
        )
    )


def test_a_purge_never_deletes_what_a_link_points_to(
    engine: Engine, stored: ChainBuilder, retention_settings: Settings, tmp_path: Path
) -> None:
    """Frames that are links to the held frame of an open flag, or that lie behind a linked
    folder: the purge deletes none of their targets; a hard link loses its own name only."""
    root = retention_settings.snapshot_root
    with Session(engine) as session:
        held_snapshot = session.get(Snapshot, stored.made.snapshots["old-open"])
        assert held_snapshot is not None
        held_path = held_snapshot.path
    held = root / held_path
    held_bytes = held.read_bytes()
    day = held.parent
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "000000.jpg").write_bytes(b"\xff\xd8\xff not ours")
    (day / "010000_absolute.jpg").symlink_to(held)
    (day / "010001_relative.jpg").symlink_to(held.name)
    (day / "010002_hard.jpg").hardlink_to(held)
    (root / "S1" / "R8").symlink_to(held.parent.parent, target_is_directory=True)
    (root / "S1" / "R9").symlink_to(outside, target_is_directory=True)
    linked = [
        f"S1/R1/{day.name}/010000_absolute.jpg",
        f"S1/R1/{day.name}/010001_relative.jpg",
        f"S1/R8/{day.name}/{held.name}",
        "S1/R9/000000.jpg",
    ]
    hard = f"S1/R1/{day.name}/010002_hard.jpg"
    with Session(engine) as session, session.begin():
        for path in [*linked, hard]:
            _add_frame_row(session, path, days_ago(90))

    summary = purge(settings=retention_settings, engine=engine, now=NOW)

    assert held.is_file() and not held.is_symlink() and held.read_bytes() == held_bytes
    assert (outside / "000000.jpg").read_bytes() == b"\xff\xd8\xff not ours"
    assert sorted(summary.files_failed) == sorted(linked)
    assert all((root / path).is_symlink() or (root / path).exists() for path in linked)
    assert not (root / hard).exists() and held.stat().st_nlink == 1
    assert state(engine, stored)["old-open"] == KEPT
    with Session(engine) as session:
        purged = dict(
            session.execute(
                sa.select(Snapshot.path, Snapshot.purged_at.is_not(None)).where(
                    Snapshot.path.in_([*linked, hard])
                )
            ).all()
        )
    assert purged == {**dict.fromkeys(linked, False), hard: True}


def test_a_frame_swapped_for_a_link_after_ingest_is_not_followed(
    engine: Engine, stored: ChainBuilder, retention_settings: Settings
) -> None:
    root = retention_settings.snapshot_root
    with Session(engine) as session:
        held = session.get(Snapshot, stored.made.snapshots["old-open"])
        clean = session.get(Snapshot, stored.made.snapshots["old-clean"])
        assert held is not None and clean is not None
        held_file, clean_file = root / held.path, root / clean.path
    clean_file.unlink()
    clean_file.symlink_to(held_file)
    summary = purge(settings=retention_settings, engine=engine, now=NOW)
    assert held_file.is_file() and clean_file.is_symlink()
    assert summary.files_failed == [clean.path]
    assert state(engine, stored)["old-open"] == KEPT
    assert state(engine, stored)["old-clean"][1] is True  # its row is left as it was


def _snapshot_marks(engine: Engine) -> dict[str, bool]:
    """Path -> purged."""
    with Session(engine) as session:
        rows = session.execute(sa.select(Snapshot.path, Snapshot.purged_at)).all()
    return {path: purged is not None for path, purged in rows}


@pytest.mark.parametrize("missing", ["root", "store folder"])
def test_frames_out_of_reach_are_kept_unmarked_until_the_share_is_back(
    engine: Engine, stored: ChainBuilder, retention_settings: Settings, missing: str
) -> None:
    """An unmounted share must not pass for frames already deleted: those rows would never
    be looked at again while the files stay on the share."""
    root = retention_settings.snapshot_root
    away = root.parent / "unmounted"
    moved = root if missing == "root" else root / "S1"
    moved.rename(away)
    summary = purge(settings=retention_settings, engine=engine, now=NOW)
    assert (summary.frames_removed, summary.files_deleted, summary.files_missing) == (0, 0, 0)
    assert len(summary.files_failed) == 5
    assert not any(_snapshot_marks(engine).values())
    assert summary.flag_crops_removed == 3  # the crops in the database go all the same

    away.rename(moved)
    again = purge(settings=retention_settings, engine=engine, now=NOW)
    assert again.frames_removed == again.files_deleted == 5 and again.files_failed == []
    assert state(engine, stored)["old-clean"] == GONE


def test_a_purged_frame_found_again_by_the_ingest_is_purged_again(
    engine: Engine, stored: ChainBuilder, retention_settings: Settings
) -> None:
    from sqlalchemy.orm import sessionmaker

    from auditor.ingest.snapshots import ingest_snapshots
    from tests.factories import jpeg_bytes

    root = retention_settings.snapshot_root
    relative = "S1/R1/2024-03-01/101500.jpg"
    frame = root / relative
    frame.parent.mkdir(parents=True)
    data = jpeg_bytes(7)
    frame.write_bytes(data)

    def ingest() -> None:
        ingest_snapshots(
            frame.parent, settings=retention_settings, session_factory=sessionmaker(engine)
        )

    ingest()
    assert purge(settings=retention_settings, engine=engine, now=NOW).frames_removed == 6
    assert not frame.exists() and _snapshot_marks(engine)[relative]

    frame.write_bytes(data)  # a restore from backup
    ingest()
    assert not _snapshot_marks(engine)[relative]
    summary = purge(settings=retention_settings, engine=engine, now=NOW)
    assert summary.frames_removed == 1 and not frame.exists()
    assert _snapshot_marks(engine)[relative]


def test_half_written_report_pages_are_removed_once_stale(tmp_path: Path) -> None:
    from auditor.retention import STALE_TEMPORARY_S, remove_stale_temporaries

    night = tmp_path / "reports" / "2024-03-01" / "S1"
    night.mkdir(parents=True)
    old = night / ".C1.html.0123456789ab.tmp"  # a writer killed mid-page
    fresh = night / ".C2.html.ba9876543210.tmp"  # a writer at work
    page = night / "C3.html"
    for path in (old, fresh, page):
        path.write_text("<img src='data:image/jpeg;base64,AAAA'>")
    now = time.time()
    os.utime(old, (now - STALE_TEMPORARY_S - 60,) * 2)
    assert remove_stale_temporaries(tmp_path / "reports", now=now) == [old]
    assert not old.exists() and fresh.exists() and page.exists()
    assert remove_stale_temporaries(tmp_path / "missing", now=now) == []
