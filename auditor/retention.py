"""Retention: remove checkout frames and face crops once they are no longer needed.

Rules (``[retention]``; ages are counted from the frame's capture time, or for a flag from its
sale's time):

- a frame older than ``frame_days`` is removed (its file deleted under the snapshot root, its
  row kept with ``purged_at`` set) unless it is the evidence of a flag that is *held*;
- a flag's evidence (its face crop, and its frame unless another held flag needs that) is
  removed once its sale is older than ``frame_days``, unless the flag is held; removed evidence
  leaves the flag with ``face_crop`` empty and ``evidence_purged_at`` set;
- a flag is *held* while it is still open (no decision yet) or its latest decision confirms a
  violation, and its sale is younger than ``evidence_days``: after that nothing is kept;
- face crops on age estimates go after ``frame_days`` like any frame.

Sales, receipt lines, verdicts, estimates' figures and flags' rows are never deleted. A purge
removes only the path a frame's row names, never what it links to: a path through a linked
folder, or one whose file has become a symbolic link, is left alone and reported. A purge
is idempotent: what is gone is not looked at again, and a file already missing is fine. The
selection (:func:`plan_purge`) is pure; :func:`purge` carries it out in one transaction after
deleting the files, and writes an ``audit_log`` row with what it removed.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from auditor.db.engine import database_errors
from auditor.db.models import AgeEstimate, AuditLogEntry, Flag, Sale, Snapshot, utcnow
from auditor.db.queries import current_run_ids
from auditor.reviews import latest_reviews
from auditor.settings import RetentionSettings, Settings
from auditor.vocabulary import Decision

logger = logging.getLogger(__name__)

MAX_LISTED_IDS = 1000  # flag ids named in the audit-log row


@dataclass(frozen=True)
class FrameRow:
    """A frame not purged yet and older than ``frame_days``: a candidate."""

    snapshot_id: int
    store_id: str
    captured_at: datetime
    path: str


@dataclass(frozen=True)
class EvidenceRow:
    """A current flag whose evidence (a crop, a frame) is not purged yet."""

    flag_id: int
    sold_at: datetime
    snapshot_id: int | None
    decision: str | None  # the latest decision on it, None while open


@dataclass(frozen=True)
class Cutoffs:
    frames: datetime  # evidence of a flag that is not held goes before this, frames too
    evidence: datetime  # held evidence goes before this

    @classmethod
    def at(cls, now: datetime, retention: RetentionSettings) -> Cutoffs:
        return cls(
            frames=now - timedelta(days=retention.frame_days),
            evidence=now - timedelta(days=max(retention.evidence_days, retention.frame_days)),
        )


@dataclass
class PurgePlan:
    frames: list[FrameRow] = field(default_factory=list)
    flag_ids: list[int] = field(default_factory=list)
    frames_kept: int = 0  # older than frame_days, kept as evidence
    flags_kept: int = 0  # evidence older than frame_days, kept because the flag is held


def is_held(evidence: EvidenceRow, cutoffs: Cutoffs) -> bool:
    """Open or confirmed, and younger than the evidence retention."""
    return (
        evidence.decision in (None, Decision.CONFIRMED_VIOLATION)
        and evidence.sold_at >= cutoffs.evidence
    )


def plan_purge(
    *, frames: Iterable[FrameRow], evidence: Iterable[EvidenceRow], cutoffs: Cutoffs
) -> PurgePlan:
    """What to remove: candidate frames not held as evidence, evidence of flags not held.

    ``frames`` may hold frames younger than the cutoff (they are left alone); ``evidence`` must
    hold every current flag with evidence left that points at a candidate frame, whatever its
    age, and every such flag older than the cutoff.
    """
    evidence = list(evidence)
    held_frames = {
        e.snapshot_id for e in evidence if e.snapshot_id is not None and is_held(e, cutoffs)
    }
    plan = PurgePlan()
    for frame in frames:
        if frame.captured_at >= cutoffs.frames:
            continue
        if frame.snapshot_id in held_frames:
            plan.frames_kept += 1
        else:
            plan.frames.append(frame)
    for e in evidence:
        if e.sold_at >= cutoffs.frames:
            continue
        if is_held(e, cutoffs):
            plan.flags_kept += 1
        else:
            plan.flag_ids.append(e.flag_id)
    return plan


# -- the adapter ---------------------------------------------------------------------------------


@dataclass
class PurgeSummary:
    dry_run: bool
    frame_cutoff: datetime
    evidence_cutoff: datetime
    frames_removed: int = 0
    files_deleted: int = 0
    files_missing: int = 0
    files_failed: list[str] = field(default_factory=list)
    flag_crops_removed: int = 0
    flags_evidence_purged: int = 0
    estimate_crops_removed: int = 0
    frames_kept: int = 0
    flags_kept: int = 0
    frames_by_store: dict[str, int] = field(default_factory=dict)
    oldest_frame: datetime | None = None
    newest_frame: datetime | None = None
    flag_ids: list[int] = field(default_factory=list)

    def __str__(self) -> str:
        would = "would remove" if self.dry_run else "removed"
        text = (
            f"{would} {self.frames_removed} frames "
            f"and the evidence of {self.flags_evidence_purged} flags "
            f"({self.flag_crops_removed} face crops; "
            f"{self.estimate_crops_removed} estimate crops); "
            f"kept as evidence: {self.frames_kept} frames, {self.flags_kept} flags"
        )
        if self.files_missing:
            text += f"; {self.files_missing} frame files were already gone"
        if self.files_failed:
            text += f"; {len(self.files_failed)} frame files could not be deleted"
        return text

    def as_json_dict(self) -> dict[str, Any]:
        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value is not None else None

        return {
            "dry_run": self.dry_run,
            "frame_cutoff": iso(self.frame_cutoff),
            "evidence_cutoff": iso(self.evidence_cutoff),
            "frames_removed": self.frames_removed,
            "files_deleted": self.files_deleted,
            "files_missing": self.files_missing,
            "files_failed": self.files_failed[:MAX_LISTED_IDS],
            "frames_by_store": self.frames_by_store,
            "oldest_frame": iso(self.oldest_frame),
            "newest_frame": iso(self.newest_frame),
            "flags_evidence_purged": self.flags_evidence_purged,
            "flag_crops_removed": self.flag_crops_removed,
            "estimate_crops_removed": self.estimate_crops_removed,
            "frames_kept": self.frames_kept,
            "flags_kept": self.flags_kept,
            "flag_ids": self.flag_ids[:MAX_LISTED_IDS],
        }


def _candidate_frames(session: Session, cutoffs: Cutoffs) -> list[FrameRow]:
    rows = session.execute(
        sa.select(Snapshot.id, Snapshot.store_id, Snapshot.captured_at, Snapshot.path)
        .where(Snapshot.purged_at.is_(None), Snapshot.captured_at < cutoffs.frames)
        .order_by(Snapshot.id)
    ).all()
    return [FrameRow(*row) for row in rows]


def _evidence(session: Session) -> list[EvidenceRow]:
    """Current flags with a crop or an unpurged frame, their sale's time and latest decision."""
    latest = latest_reviews()
    live_frame = sa.and_(
        Flag.snapshot_id.is_not(None),
        sa.exists().where(Snapshot.id == Flag.snapshot_id, Snapshot.purged_at.is_(None)),
    )
    rows = session.execute(
        sa.select(Flag.id, Sale.sold_at, Flag.snapshot_id, latest.c.decision)
        .join(Sale, Sale.id == Flag.sale_id)
        .outerjoin(
            latest, sa.and_(latest.c.sale_id == Flag.sale_id, latest.c.flag_kind == Flag.kind)
        )
        .where(
            Flag.run_id.in_(current_run_ids()),
            Flag.evidence_purged_at.is_(None),
            sa.or_(Flag.face_crop.is_not(None), live_frame),
        )
    ).all()
    return [EvidenceRow(*row) for row in rows]


def frame_file(root: Path, relative: str) -> Path | None:
    """The file of a frame at ``relative`` under the snapshot ``root``, or None when it would
    lie outside the root (an absolute path, ``..``, a symbolic link leading out) or is itself a
    symbolic link (a frame is the file at its own path)."""
    root = root.resolve()
    if (root / relative).is_symlink():
        return None
    path = (root / relative).resolve()
    return path if path.is_relative_to(root) and path != root else None


class _NotOurs(OSError):
    """A frame path the purge must not delete: outside the root, or a symbolic link."""


class _FolderMissing(OSError):
    """A folder on a frame's path is not there: a share not mounted, or a store's folder
    moved. The frame may well still exist elsewhere, so it is not taken as deleted."""


def _unlink_frame(root: Path, relative: str) -> None:
    """Unlink the file at ``relative`` under ``root`` and nothing else.

    The path is walked from the root one folder at a time with ``O_NOFOLLOW``, so a folder
    that is (or has become) a symbolic link is never entered, and the file is unlinked by its
    name in the folder it was found in: a link's target is never touched. A path with ``..``,
    an absolute one or one whose file is a symbolic link is refused (:class:`_NotOurs`); a
    hard link loses this one name, the other names keep the data.
    """
    parts = PurePosixPath(relative).parts
    if not parts or PurePosixPath(relative).is_absolute() or ".." in parts:
        raise _NotOurs(f"{relative}: outside the snapshot root")
    folder = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in parts[:-1]:
            try:
                inner = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=folder)
            except FileNotFoundError as e:
                raise _FolderMissing(f"{relative}: folder {part!r} is not there") from e
            except OSError as e:
                if e.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise _NotOurs(f"{relative}: folder {part!r} is a symbolic link") from e
                raise
            os.close(folder)
            folder = inner
        mode = os.lstat(parts[-1], dir_fd=folder).st_mode
        if stat.S_ISLNK(mode):
            raise _NotOurs(f"{relative}: a symbolic link, not a frame file")
        if stat.S_ISDIR(mode):
            raise _NotOurs(f"{relative}: a folder, not a frame file")
        os.unlink(parts[-1], dir_fd=folder)
    finally:
        os.close(folder)


def _delete_files(frames: Sequence[FrameRow], root: Path, summary: PurgeSummary) -> list[FrameRow]:
    """Delete the frames' files; returns the frames whose file is gone (deleted, or missing
    from a folder that is there). A frame whose folder is missing is kept and listed as
    failed, and so is every frame when the snapshot root itself is not there."""
    if frames and not root.is_dir():
        logger.error(
            "snapshot_root %s is not a folder here (a share not mounted?): %d frames kept, "
            "as frames that cannot be reached cannot be told from deleted ones",
            root,
            len(frames),
        )
        summary.files_failed.extend(f.path for f in frames)
        return []
    root = root.resolve()
    gone = []
    for frame in frames:
        try:
            _unlink_frame(root, frame.path)
        except FileNotFoundError:
            summary.files_missing += 1
        except (_NotOurs, _FolderMissing) as e:
            summary.files_failed.append(frame.path)
            logger.error("frame %s not deleted: %s", frame.path, e)
            continue
        except OSError as e:
            summary.files_failed.append(frame.path)
            logger.error("cannot delete frame %s: %s", frame.path, e.strerror or e)
            continue
        else:
            summary.files_deleted += 1
        gone.append(frame)
    return gone


def purge(
    *,
    settings: Settings,
    engine: Engine,
    now: datetime | None = None,
    dry_run: bool = False,
    actor: str = "system",
) -> PurgeSummary:
    """Remove what the retention rules say has been kept long enough; see the module docstring.

    With ``dry_run`` nothing is changed and the summary says what would go.
    """
    now = now or datetime.now(UTC)
    cutoffs = Cutoffs.at(now, settings.retention)
    summary = PurgeSummary(dry_run, cutoffs.frames, cutoffs.evidence)
    with database_errors(engine.url), Session(engine) as session:
        with session.begin():
            frames = _candidate_frames(session, cutoffs)
            evidence = _evidence(session)
            crop_estimates = list(
                session.execute(
                    sa.select(AgeEstimate.id)
                    .join(Sale, Sale.id == AgeEstimate.sale_id)
                    .where(AgeEstimate.face_crop.is_not(None), Sale.sold_at < cutoffs.frames)
                ).scalars()
            )
        plan = plan_purge(frames=frames, evidence=evidence, cutoffs=cutoffs)
        summary.frames_kept, summary.flags_kept = plan.frames_kept, plan.flags_kept
        summary.flag_ids = sorted(plan.flag_ids)
        summary.flags_evidence_purged = len(plan.flag_ids)
        summary.estimate_crops_removed = len(crop_estimates)
        removed = plan.frames
        if not dry_run:
            removed = _delete_files(plan.frames, settings.snapshot_root, summary)
        summary.frames_removed = len(removed)
        summary.frames_by_store = dict(sorted(Counter(f.store_id for f in removed).items()))
        if removed:
            summary.oldest_frame = min(f.captured_at for f in removed)
            summary.newest_frame = max(f.captured_at for f in removed)
        with session.begin():
            summary.flag_crops_removed = _count_crops(session, plan.flag_ids)
            if not dry_run:
                _record(session, summary, removed, plan.flag_ids, crop_estimates, now, actor)
    logger.info("purge: %s", summary)
    return summary


def _chunks(ids: Sequence[int], size: int = 500) -> Iterable[Sequence[int]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def _count_crops(session: Session, flag_ids: Sequence[int]) -> int:
    return sum(
        session.execute(
            sa.select(sa.func.count()).where(Flag.id.in_(chunk), Flag.face_crop.is_not(None))
        ).scalar_one()
        for chunk in _chunks(flag_ids)
    )


def _record(
    session: Session,
    summary: PurgeSummary,
    frames: Sequence[FrameRow],
    flag_ids: Sequence[int],
    estimate_ids: Sequence[int],
    now: datetime,
    actor: str,
) -> None:
    at = utcnow()
    for chunk in _chunks([f.snapshot_id for f in frames]):
        session.execute(
            sa.update(Snapshot)
            .where(Snapshot.id.in_(chunk), Snapshot.purged_at.is_(None))
            .values(purged_at=at)
        )
    for table, ids in ((Flag, flag_ids), (AgeEstimate, estimate_ids)):
        for chunk in _chunks(ids):
            session.execute(
                sa.update(table)
                .where(table.id.in_(chunk))
                .values(face_crop=None, face_crop_path=None, evidence_purged_at=at)
            )
    session.add(
        AuditLogEntry(
            at=at,
            actor=actor,
            action="purge",
            object_type="retention",
            object_id=now.isoformat(timespec="seconds"),
            details=summary.as_json_dict(),
        )
    )


def nightly_purge(settings: Settings, engine: Engine, summaries: object) -> None:
    """The purge as a step of the nightly job (:data:`auditor.nightly.REPORT_STEPS`)."""
    summary = purge(settings=settings, engine=engine, actor="nightly")
    rewrite_purged_pages(settings, engine, summary)


def rewrite_purged_pages(settings: Settings, engine: Engine, summary: PurgeSummary) -> None:
    """Write again the report pages that show a face crop the purge has just removed (the
    pages embed the crops), so a page keeps no face longer than the database does."""
    if summary.dry_run:
        return
    remove_stale_temporaries(settings.report_dir)
    if not summary.flags_evidence_purged:
        return
    from auditor.reports.build import rewrite_stale_nights  # the reports load pandas, charts

    rewrite_stale_nights(settings, engine)


STALE_TEMPORARY_S = 3600  # a page being written is done well within this


def remove_stale_temporaries(report_dir: Path, *, now: float | None = None) -> list[Path]:
    """Remove the half-written pages (``.<page>.<hex>.tmp``) a killed report writer left in
    ``report_dir``, older than :data:`STALE_TEMPORARY_S`: they may hold face crops."""
    now = time.time() if now is None else now
    removed = []
    for path in report_dir.rglob(".*.tmp") if report_dir.is_dir() else ():
        try:
            if path.is_file() and now - path.stat().st_mtime > STALE_TEMPORARY_S:
                path.unlink()
                removed.append(path)
        except OSError as e:
            logger.warning("%s: cannot remove a half-written report page: %s", path, e)
    if removed:
        logger.info("removed %d half-written report pages", len(removed))
    return removed
