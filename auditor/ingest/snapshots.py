"""Checkout snapshots: record frame metadata (store, register, UTC capture time, path, size, hash).

Images stay where they are, under the configured snapshot root; the database holds their path
relative to that root. Two inputs:

- a folder laid out as ``<store_id>/<register_id>/<YYYY-MM-DD>/<HHMMSS>[_<ms>].jpg``, the
  capture time being the store's local time;
- a manifest CSV ``store_id,register_id,captured_at,path`` whose paths are relative to the
  manifest's folder and whose times follow the POS rule (no offset: store-local).

The folder given may be the snapshot root or any folder under it (a store, a register, a day):
the layout is read from the last four parts of each file's path relative to the root. A file
outside the snapshot root (through ``..`` or a symbolic link), missing, empty or not a JPEG is
rejected. A frame is the file at its own path: a symbolic link (to a file inside the root or
out, absolute or relative) is rejected, and so is a path through a linked folder, which is
never followed; a hard link is an ordinary file. ``*.rejects.csv`` files are passed over.
Frames are keyed by path, so ingesting the same frames again changes nothing. A file named by
the layout (or listed) that is empty, not a JPEG or cannot be read is a reject and is also
recorded with its ``problem``: the camera fired, and the audit sees an unreadable frame.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
from sqlalchemy.orm import Session, sessionmaker

from auditor.db.bulk import records, upsert
from auditor.db.engine import database_errors
from auditor.db.models import ID_LENGTH, PATH_LENGTH, Snapshot
from auditor.ingest import IngestError, Progress
from auditor.ingest.checks import Problems
from auditor.ingest.places import save_places
from auditor.ingest.rejects import Reject, rejects_path_for, write_rejects
from auditor.ingest.tables import read_table
from auditor.ingest.times import localize, parse_local_time
from auditor.settings import Settings

logger = logging.getLogger(__name__)

MANIFEST_COLUMNS = ("store_id", "register_id", "captured_at", "path")
FRAME_COLUMNS = [
    "store_id",
    "register_id",
    "captured_at",
    "path",
    "size_bytes",
    "sha256",
    "problem",
]
LAYOUT = "<store_id>/<register_id>/<YYYY-MM-DD>/<HHMMSS>[_<milliseconds>].jpg"
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_FILE_NAME = re.compile(r"(\d{2})(\d{2})(\d{2})(?:_(\d{3}))?\.jpe?g", re.IGNORECASE)
_ID = re.compile(rf"[^\x00-\x1f\x7f]{{1,{ID_LENGTH}}}")
_JPEG_MAGIC = b"\xff\xd8\xff"
REJECTS_SUFFIX = ".rejects.csv"


class OutsideSnapshotRootError(IngestError):
    """An input folder or manifest points outside the configured snapshot root."""


@dataclass
class ParsedSnapshots:
    """Frames found (``FRAME_COLUMNS``, capture times in UTC) and the files left out."""

    source: str
    frames: pd.DataFrame
    rejects: list[Reject]
    reject_columns: list[str]


@dataclass
class SnapshotIngestSummary:
    source: str
    files_seen: int
    frames: int
    frames_written: int
    rejected: int
    rejects_path: Path | None
    rejects: list[Reject] = field(default_factory=list, repr=False)
    unreadable: int = 0  # rejected files recorded as unreadable frames

    def __str__(self) -> str:
        text = (
            f"{self.source}: {self.files_seen} files, {self.frames} frames "
            f"({self.frames_written} new or changed), {self.rejected} rejected"
        )
        if self.unreadable:
            text += f" ({self.unreadable} of them kept as unreadable frames)"
        if self.rejects_path is not None:
            text += f" (see {self.rejects_path})"
        return text


class _FileProblem(ValueError):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field, self.reason = field, reason


class _UnreadableFile(_FileProblem):
    """A file at a frame's place that is no readable image: a reject, and a frame row too."""

    def __init__(self, reason: str, size: int, sha256: str) -> None:
        super().__init__("path", reason)
        self.size, self.sha256 = size, sha256


# -- pure parts ----------------------------------------------------------------------------------


def parse_layout_path(relative: str) -> tuple[str, str, datetime]:
    """Store, register and local capture time from the last four parts of a frame's path.

    Raises ``ValueError`` (a ``_FileProblem`` naming the part) when the path does not fit.
    """
    parts = relative.split("/")
    if len(parts) < 4:
        raise _FileProblem("path", f"not laid out as {LAYOUT}")
    store_id, register_id, day, name = parts[-4:]
    for name_of, value in (("store_id", store_id), ("register_id", register_id)):
        if not _ID.fullmatch(value):
            raise _FileProblem(name_of, f"not a valid id: {value[:40]!r}")
    if not _DATE.fullmatch(day):
        raise _FileProblem("date", f"folder {day[:40]!r} is not a YYYY-MM-DD date")
    try:
        captured_day = date.fromisoformat(day)
    except ValueError:
        raise _FileProblem("date", f"{day!r} is not a real date") from None
    match = _FILE_NAME.fullmatch(name)
    if match is None:
        raise _FileProblem("time", f"file name {name[:60]!r} is not HHMMSS[_mmm].jpg")
    hour, minute, second = (int(g) for g in match.groups()[:3])
    millisecond = int(match.group(4) or 0)
    if hour > 23 or minute > 59 or second > 59:
        raise _FileProblem("time", f"{name[:6]!r} is not a time of day")
    local = datetime(
        captured_day.year,
        captured_day.month,
        captured_day.day,
        hour,
        minute,
        second,
        millisecond * 1000,
    )
    return store_id, register_id, local


def _inside(path: Path, root: Path) -> bool:
    return path == root or path.is_relative_to(root)


# -- reading files (adapters) --------------------------------------------------------------------


def _linked_part(path: Path, root: Path) -> Path | None:
    """The first part of ``path`` below ``root`` that is a symbolic link (the file itself
    included), or None."""
    current = root
    for part in Path(os.path.normpath(path.absolute())).relative_to(root).parts:
        current = current / part
        if current.is_symlink():
            return current
    return None


def _describe_file(path: Path, root: Path) -> tuple[int, str]:
    """Size and SHA-256 of a frame file that must really lie under ``root``, at its own path:
    neither it nor a folder above it (below the root) may be a symbolic link."""
    if not _inside(path.resolve(), root):
        raise _FileProblem("path", "outside the snapshot root (symbolic link or '..')")
    linked = _linked_part(path, root)
    if linked is not None:
        what = "the file" if linked == path else f"folder {linked.relative_to(root).as_posix()!r}"
        raise _FileProblem("path", f"symbolic link ({what}): a frame must be a file of its own")
    if not path.is_file():
        raise _FileProblem("path", "file not found" if not path.exists() else "not a file")
    digest = hashlib.sha256()
    size = 0
    try:
        with path.open("rb") as f:
            head = f.read(len(_JPEG_MAGIC))
            digest.update(head)
            size += len(head)
            while chunk := f.read(1 << 20):
                digest.update(chunk)
                size += len(chunk)
    except OSError as e:
        raise _UnreadableFile(f"cannot read: {e.strerror or e}", _size(path), "") from None
    if size == 0:
        raise _UnreadableFile("empty file", 0, digest.hexdigest())
    if head != _JPEG_MAGIC:
        raise _UnreadableFile("not a JPEG image", size, digest.hexdigest())
    return size, digest.hexdigest()


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _walk(folder: Path) -> Iterator[tuple[Path, str | None]]:
    """Every file under ``folder`` (sorted) with None, or a path with what is wrong with it:
    a symbolic link to a folder (not followed) or a folder that cannot be read."""
    unreadable: list[OSError] = []
    for current, dirs, files in os.walk(folder, followlinks=False, onerror=unreadable.append):
        dirs.sort()
        base = Path(current)
        for name in list(dirs):
            if (base / name).is_symlink():
                dirs.remove(name)
                yield base / name, "symbolic link to a folder, not followed"
        for name in sorted(files):
            if not name.endswith(REJECTS_SUFFIX):
                yield base / name, None
    for error in unreadable:
        yield Path(error.filename), f"cannot read folder: {error.strerror or error}"


def scan_folder(
    folder: Path, *, root: Path, zone_for: Callable[[str], ZoneInfo], progress: Progress | None
) -> ParsedSnapshots:
    """Frames in a folder under ``root``, read by :data:`LAYOUT` from their path relative to
    ``root`` (so a store's or a day's folder can be given); every other file is a reject."""
    found = list(_walk(folder))
    rows: list[dict[str, object]] = []
    rejects: list[Reject] = []
    for path, problem in found:
        relative = path.relative_to(root).as_posix()
        try:
            if problem is not None:
                raise _FileProblem("path", problem)
            store_id, register_id, local = parse_layout_path(relative)
            row = {
                "store_id": store_id,
                "register_id": register_id,
                "captured_at": localize(local, zone_for(store_id)),
                "path": _relative_to_root(path, root),
            }
            try:
                size, sha256 = _describe_file(path, root)
            except _UnreadableFile as e:
                rows.append({**row, "size_bytes": e.size, "sha256": e.sha256, "problem": e.reason})
                raise
            rows.append({**row, "size_bytes": size, "sha256": sha256, "problem": None})
        except _FileProblem as e:
            rejects.append(Reject(str(path), None, e.field, e.reason, {"path": relative}))
        if progress:
            progress(1, len(found))
    return ParsedSnapshots(str(folder), _frame(rows), rejects, ["path"])


def read_manifest(
    manifest: Path,
    *,
    root: Path,
    zone_for: Callable[[str], ZoneInfo],
    progress: Progress | None,
) -> ParsedSnapshots:
    """Frames listed in a manifest CSV; rows naming a bad file or time are rejects."""
    raw = read_table(manifest, MANIFEST_COLUMNS)
    frame = raw.frame
    problems = Problems(frame)
    problems.check_text(
        MANIFEST_COLUMNS,
        set(MANIFEST_COLUMNS),
        {"store_id": ID_LENGTH, "register_id": ID_LENGTH, "captured_at": 40, "path": PATH_LENGTH},
    )
    base = manifest.resolve().parent
    rows: list[dict[str, object]] = []
    found: dict[int, tuple[str, str]] = {}
    first_line: dict[str, int] = {}
    fields = ["line", "store_id", "register_id", "captured_at", "path"]
    good = problems.ok
    for index, line, store_id, register_id, captured_at, path_text in frame[fields].itertuples():
        if progress:
            progress(1, len(frame))
        if not good[index]:
            continue
        try:
            when = parse_local_time(captured_at, zone_for(store_id))
        except ValueError as e:
            found[index] = ("captured_at", str(e))
            continue
        problem = None
        try:
            path = _manifest_path(path_text, base, root)
            relative = _relative_to_root(path, root)
            if relative in first_line:
                raise _FileProblem("path", f"same file as line {first_line[relative]}")
            try:
                size, sha256 = _describe_file(path, root)
            except _UnreadableFile as e:
                size, sha256, problem = e.size, e.sha256, e.reason
                found[index] = (e.field, e.reason)
        except _FileProblem as e:
            found[index] = (e.field, e.reason)
            continue
        first_line[relative] = int(line)
        rows.append(
            {
                "store_id": store_id,
                "register_id": register_id,
                "captured_at": when,
                "path": relative,
                "size_bytes": size,
                "sha256": sha256,
                "problem": problem,
            }
        )
    problems.add_each(found)
    rejects = sorted(
        raw.rejects + problems.rejects(raw.source, frame, raw.header), key=lambda r: r.line or 0
    )
    return ParsedSnapshots(raw.source, _frame(rows), rejects, raw.header)


def _manifest_path(text: str, base: Path, root: Path) -> Path:
    if Path(text).is_absolute():
        raise _FileProblem("path", "must be relative to the manifest's folder")
    path = Path(os.path.normpath(base / text))
    if not _inside(path, root):
        raise _FileProblem("path", "outside the snapshot root")
    return path


def _relative_to_root(path: Path, root: Path) -> str:
    relative = Path(os.path.normpath(path.absolute())).relative_to(root).as_posix()
    if len(relative) > PATH_LENGTH:
        raise _FileProblem("path", f"path longer than {PATH_LENGTH} characters")
    return relative


def _frame(rows: list[dict[str, object]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=FRAME_COLUMNS)


# -- load ----------------------------------------------------------------------------------------


def load_snapshots(*, session: Session, frames: pd.DataFrame, settings: Settings) -> int:
    """Upsert frames by path (unreadable ones too, with their ``problem``); returns how many
    readable frames were new or changed. Runs in the caller's transaction."""
    if frames.empty:
        return 0
    save_places(
        session=session,
        settings=settings,
        store_ids=frames["store_id"].unique().tolist(),
        registers=frames[["store_id", "register_id"]].drop_duplicates(),
    )
    # A frame the purge deleted and that is found again (a restore, a camera's late upload)
    # is on disk once more: its purge mark goes, so the next purge finds it.
    changing = [
        "store_id",
        "register_id",
        "captured_at",
        "size_bytes",
        "sha256",
        "problem",
        "purged_at",
    ]
    rows = [
        {
            **row,
            "problem": row["problem"] if isinstance(row["problem"], str) else None,
            "purged_at": None,
        }
        for row in records(frames)
    ]
    written = upsert(
        session,
        Snapshot.__table__,
        rows,
        keys=["path"],
        update=[*changing, "ingested_at"],
        only_if_changed=changing,
        returning=["id", "problem"],
    )
    return sum(row.problem is None for row in written)


def ingest_snapshots(
    path: Path,
    *,
    settings: Settings,
    session_factory: sessionmaker[Session],
    progress: Progress | None = None,
) -> SnapshotIngestSummary:
    """Ingest a snapshot folder or manifest; write its rejects beside it; one transaction."""
    root = settings.snapshot_root.resolve()
    if not path.exists():
        raise IngestError(f"{path}: no such file or folder")
    where = path.resolve() if path.is_dir() else path.resolve().parent
    if path.is_dir() and not _inside(where, root):
        raise OutsideSnapshotRootError(f"{path}: folder is outside the snapshot root {root}")
    if path.is_dir():
        parsed = scan_folder(where, root=root, zone_for=settings.store_zone, progress=progress)
        rejects_path = rejects_path_for(path.absolute())
    else:
        parsed = read_manifest(path, root=root, zone_for=settings.store_zone, progress=progress)
        rejects_path = rejects_path_for(path)
    written_rejects = write_rejects(rejects_path, parsed.reject_columns, parsed.rejects)
    with database_errors(settings.database_url), session_factory.begin() as session:
        written = load_snapshots(session=session, frames=parsed.frames, settings=settings)
    readable = int(parsed.frames["problem"].isna().sum())
    return SnapshotIngestSummary(
        source=parsed.source,
        files_seen=readable + len(parsed.rejects),
        frames=readable,
        frames_written=written,
        rejected=len(parsed.rejects),
        rejects_path=written_rejects,
        rejects=parsed.rejects,
        unreadable=len(parsed.frames) - readable,
    )
