"""Snapshot metadata from a folder layout or a manifest: inside the root only, idempotent."""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from auditor.db.models import Snapshot
from auditor.ingest.snapshots import (
    OutsideSnapshotRootError,
    ingest_snapshots,
    parse_layout_path,
)
from auditor.ingest.tables import UnreadableFileError
from auditor.settings import Settings
from tests.factories import jpeg_bytes, write_frame, write_manifest


@pytest.mark.parametrize(
    "path, expected",
    [
        ("S1/R1/2024-03-01/211500.jpg", ("S1", "R1", datetime(2024, 3, 1, 21, 15))),
        ("S1/R1/2024-03-01/211500_250.JPG", ("S1", "R1", datetime(2024, 3, 1, 21, 15, 0, 250000))),
        ("x/y/S1/R1/2024-03-01/000000.jpeg", ("S1", "R1", datetime(2024, 3, 1))),
    ],
)
def test_layout_path(path: str, expected: tuple[str, str, datetime]) -> None:
    assert parse_layout_path(path) == expected


@pytest.mark.parametrize(
    "path, field, reason",
    [
        ("R1/2024-03-01/211500.jpg", "path", "not laid out as"),
        ("S1/R1/2024-3-1/211500.jpg", "date", "is not a YYYY-MM-DD date"),
        ("S1/R1/2024-02-30/211500.jpg", "date", "is not a real date"),
        ("S1/R1/2024-03-01/2115.jpg", "time", "is not HHMMSS"),
        ("S1/R1/2024-03-01/211500_25.jpg", "time", "is not HHMMSS"),
        ("S1/R1/2024-03-01/211500.png", "time", "is not HHMMSS"),
        ("S1/R1/2024-03-01/246000.jpg", "time", "is not a time of day"),
        ("S1/R\x01/2024-03-01/211500.jpg", "register_id", "not a valid id"),
        (f"{'S' * 65}/R1/2024-03-01/211500.jpg", "store_id", "not a valid id"),
    ],
)
def test_layout_path_problems(path: str, field: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason) as error:
        parse_layout_path(path)
    assert error.value.field == field


def stored(factory: sessionmaker[Session], problem: bool = False) -> list[tuple[object, ...]]:
    """The readable frames' rows (or, with ``problem``, the unreadable ones')."""
    with factory() as session:
        rows = session.execute(
            sa.select(
                Snapshot.id,
                Snapshot.store_id,
                Snapshot.register_id,
                Snapshot.captured_at,
                Snapshot.path,
                Snapshot.size_bytes,
                Snapshot.sha256,
                *([Snapshot.problem] if problem else []),
            )
            .where(Snapshot.problem.is_not(None) if problem else Snapshot.problem.is_(None))
            .order_by(Snapshot.path)
        )
        return [tuple(r) for r in rows]


def test_folder_ingest(
    db_settings: Settings, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    root = db_settings.snapshot_root
    frame = write_frame(root, "S1", "R1", datetime(2024, 3, 1, 21, 15, 0, 250000), seed=1)
    write_frame(root, "S2", "R1", datetime(2024, 3, 1, 16, 15), seed=2)
    (root / "S1" / "R1" / "2024-03-01" / "notes.txt").write_text("not a frame")
    (root / "S1" / "R1" / "2024-03-01" / "120000.jpg").write_bytes(b"")
    (root / "S1" / "R1" / "2024-03-01" / "130000.jpg").write_bytes(b"GIF89a")
    outside = tmp_path / "outside.jpg"
    outside.write_bytes(jpeg_bytes())
    (root / "S1" / "R1" / "2024-03-01" / "140000.jpg").symlink_to(outside)
    (root / "S1" / "R2").symlink_to(tmp_path, target_is_directory=True)
    locked = root / "S1" / "R3"
    locked.mkdir()
    locked.chmod(0)
    readable = os.access(locked, os.R_OK)  # root reads any folder

    try:
        summary = ingest_snapshots(root, settings=db_settings, session_factory=session_factory)
    finally:
        locked.chmod(0o755)
    assert (summary.frames, summary.frames_written) == (2, 2)
    assert summary.rejected == 5 + (not readable)
    reasons = {Path(r.source).name: (r.field, r.reason) for r in summary.rejects}
    assert reasons == {
        "notes.txt": ("time", "file name 'notes.txt' is not HHMMSS[_mmm].jpg"),
        "120000.jpg": ("path", "empty file"),
        "130000.jpg": ("path", "not a JPEG image"),
        "140000.jpg": ("path", "outside the snapshot root (symbolic link or '..')"),
        "R2": ("path", "symbolic link to a folder, not followed"),
        **({} if readable else {"R3": ("path", "cannot read folder: Permission denied")}),
    }
    assert summary.rejects_path == root.parent / "snapshots.rejects.csv"
    rows = stored(session_factory)
    assert [r[1:5] for r in rows] == [
        (
            "S1",
            "R1",
            datetime(2024, 3, 1, 20, 15, 0, 250000, tzinfo=UTC),
            "S1/R1/2024-03-01/211500_250.jpg",
        ),
        ("S2", "R1", datetime(2024, 3, 1, 21, 15, tzinfo=UTC), "S2/R1/2024-03-01/161500.jpg"),
    ]
    assert rows[0][5:] == (frame.stat().st_size, hashlib.sha256(frame.read_bytes()).hexdigest())

    # Again, and from a day's folder: nothing new, nothing duplicated.
    again = ingest_snapshots(root, settings=db_settings, session_factory=session_factory)
    assert again.frames_written == 0
    day = ingest_snapshots(frame.parent, settings=db_settings, session_factory=session_factory)
    assert (day.frames, day.frames_written) == (1, 0)
    assert stored(session_factory) == rows

    # A frame file replaced by another image: its row is updated in place.
    frame.write_bytes(jpeg_bytes(seed=9))
    changed = ingest_snapshots(root, settings=db_settings, session_factory=session_factory)
    assert changed.frames_written == 1
    updated = stored(session_factory)
    assert updated[0][0] == rows[0][0] and updated[0][6] != rows[0][6]


def test_manifest_ingest(
    db_settings: Settings, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    root = db_settings.snapshot_root
    frame = write_frame(root, "cam", "a", datetime(2024, 3, 1, 21, 15))
    outside = tmp_path / "outside.jpg"
    outside.write_bytes(jpeg_bytes())
    manifest = write_manifest(
        root / "manifest.csv",
        [
            {
                "store_id": "S1",
                "register_id": "R1",
                "captured_at": "2024-03-01T21:15:00",
                "path": "cam/a/2024-03-01/211500.jpg",
            },
            {
                "store_id": "S1",
                "register_id": "R1",
                "captured_at": "2024-03-01T21:15:00",
                "path": "cam/a/../a/2024-03-01/211500.jpg",
            },
            {
                "store_id": "S1",
                "register_id": "R1",
                "captured_at": "2024-03-01T21:15:00",
                "path": "../outside.jpg",
            },
            {
                "store_id": "S1",
                "register_id": "R1",
                "captured_at": "2024-03-01T21:15:00",
                "path": str(outside),
            },
            {
                "store_id": "S1",
                "register_id": "R1",
                "captured_at": "2024-03-01T21:15:00",
                "path": "missing.jpg",
            },
            {"store_id": "S1", "register_id": "R1", "captured_at": "soon", "path": "x.jpg"},
            {
                "store_id": "",
                "register_id": "R1",
                "captured_at": "2024-03-01T21:15:00",
                "path": "x.jpg",
            },
        ],
    )
    summary = ingest_snapshots(manifest, settings=db_settings, session_factory=session_factory)
    assert [(r.line, r.field, r.reason) for r in summary.rejects] == [
        (3, "path", "same file as line 2"),
        (4, "path", "outside the snapshot root"),
        (5, "path", "must be relative to the manifest's folder"),
        (6, "path", "file not found"),
        (7, "captured_at", "not an ISO 8601 time: 'soon'"),
        (8, "store_id", "missing"),
    ]
    assert summary.rejects_path == root / "manifest.csv.rejects.csv"
    [row] = stored(session_factory)
    assert row[1:5] == (
        "S1",
        "R1",
        datetime(2024, 3, 1, 20, 15, tzinfo=UTC),
        "cam/a/2024-03-01/211500.jpg",
    )
    assert row[5] == frame.stat().st_size
    again = ingest_snapshots(manifest, settings=db_settings, session_factory=session_factory)
    assert again.frames_written == 0
    assert stored(session_factory) == [row]


def test_folder_outside_the_root_is_refused(
    db_settings: Settings, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    write_frame(elsewhere, "S1", "R1", datetime(2024, 3, 1, 21, 15))
    with pytest.raises(OutsideSnapshotRootError, match="outside the snapshot root"):
        ingest_snapshots(elsewhere, settings=db_settings, session_factory=session_factory)
    with pytest.raises(OutsideSnapshotRootError):
        ingest_snapshots(
            db_settings.snapshot_root / "..", settings=db_settings, session_factory=session_factory
        )
    assert stored(session_factory) == []


def test_unreadable_manifest_changes_nothing(
    db_settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    manifest = db_settings.snapshot_root / "manifest.csv"
    manifest.write_text("store,register,when,file\n")
    with pytest.raises(UnreadableFileError, match="missing column"):
        ingest_snapshots(manifest, settings=db_settings, session_factory=session_factory)
    assert stored(session_factory) == []


def test_a_linked_frame_is_rejected_and_a_hard_link_is_a_frame(
    db_settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    """A frame is the file at its own path: links to another frame, absolute or relative, and
    paths through a linked folder are rejects; a hard link is an ordinary file."""
    root = db_settings.snapshot_root
    frame = write_frame(root, "S1", "R1", datetime(2024, 3, 1, 21, 15), seed=1)
    (frame.parent / "211600.jpg").symlink_to(frame)
    (frame.parent / "211700.jpg").symlink_to(frame.name)
    (frame.parent / "211800.jpg").hardlink_to(frame)
    (root / "S1" / "R2").symlink_to(root / "S1" / "R1", target_is_directory=True)

    summary = ingest_snapshots(root, settings=db_settings, session_factory=session_factory)
    reasons = {Path(r.source).name: r.reason for r in summary.rejects}
    assert reasons == {
        "211600.jpg": "symbolic link (the file): a frame must be a file of its own",
        "211700.jpg": "symbolic link (the file): a frame must be a file of its own",
        "R2": "symbolic link to a folder, not followed",
    }
    assert [r[4] for r in stored(session_factory)] == [
        "S1/R1/2024-03-01/211500.jpg",
        "S1/R1/2024-03-01/211800.jpg",
    ]

    manifest = write_manifest(
        root / "manifest.csv",
        [
            {
                "store_id": "S1",
                "register_id": "R1",
                "captured_at": "2024-03-01T21:16:00",
                "path": "S1/R1/2024-03-01/211600.jpg",
            },
            {
                "store_id": "S1",
                "register_id": "R2",
                "captured_at": "2024-03-01T21:15:00",
                "path": "S1/R2/2024-03-01/211500.jpg",
            },
        ],
    )
    listed = ingest_snapshots(manifest, settings=db_settings, session_factory=session_factory)
    assert [(r.line, r.reason) for r in listed.rejects] == [
        (2, "symbolic link (the file): a frame must be a file of its own"),
        (3, "symbolic link (folder 'S1/R2'): a frame must be a file of its own"),
    ]
    assert listed.frames == 0


def test_a_frame_file_that_is_no_image_is_a_reject_and_an_unreadable_frame(
    db_settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    """The camera wrote a file at the sale's time that is empty or not a JPEG: it is listed as
    a reject and recorded with its problem, so the audit can tell it from a missing frame."""
    root = db_settings.snapshot_root
    day = write_frame(root, "S1", "R1", datetime(2024, 3, 1, 21, 15), seed=1).parent
    (day / "120000.jpg").write_bytes(b"")
    (day / "130000.jpg").write_bytes(b"GIF89a")
    (day / "notes.txt").write_text("not a frame")
    summary = ingest_snapshots(root, settings=db_settings, session_factory=session_factory)
    assert (summary.frames, summary.rejected, summary.unreadable) == (1, 3, 2)
    assert "2 of them kept as unreadable frames" in str(summary)
    rows = stored(session_factory, problem=True)
    assert [(r[4], r[5], r[7]) for r in rows] == [
        ("S1/R1/2024-03-01/120000.jpg", 0, "empty file"),
        ("S1/R1/2024-03-01/130000.jpg", 6, "not a JPEG image"),
    ]
    assert rows[0][3] == datetime(2024, 3, 1, 11, tzinfo=UTC)

    again = ingest_snapshots(root, settings=db_settings, session_factory=session_factory)
    assert again.frames_written == 0 and stored(session_factory, problem=True) == rows
    (day / "130000.jpg").write_bytes(jpeg_bytes(seed=3))  # the file is fixed
    fixed = ingest_snapshots(root, settings=db_settings, session_factory=session_factory)
    assert fixed.frames_written == 1
    assert [r[4] for r in stored(session_factory)] == [
        "S1/R1/2024-03-01/130000.jpg",
        "S1/R1/2024-03-01/211500.jpg",
    ]

    manifest = write_manifest(
        root / "manifest.csv",
        [
            {
                "store_id": "S1",
                "register_id": "R1",
                "captured_at": "2024-03-01T12:00:00",
                "path": "S1/R1/2024-03-01/120000.jpg",
            }
        ],
    )
    listed = ingest_snapshots(manifest, settings=db_settings, session_factory=session_factory)
    assert [(r.line, r.reason) for r in listed.rejects] == [(2, "empty file")]
    assert listed.unreadable == 1
