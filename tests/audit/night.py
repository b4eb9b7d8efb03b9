"""Builders for audit tests: a store-night of POS sales and snapshot files, ingested for real."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from auditor.audit.detect import get_detector
from auditor.db.models import AgeEstimate, AuditRun, Flag, Sale, SaleVerdict
from auditor.demo.datasets import face_files
from auditor.demo.scene import compose_frame, load_face
from auditor.ingest.pos import ingest_sales_file
from auditor.ingest.snapshots import ingest_snapshots
from auditor.settings import Settings
from tests.factories import receipt, write_sales_csv

BAD_KINDS = ("truncated", "empty", "not_image", "huge", "missing")


def _jpeg(image: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return data.tobytes()


def find_frames(count: int, *, with_face: bool, seed: int = 0) -> list[bytes]:
    """``count`` JPEG checkout frames in which the detector finds a face (or finds none).

    Faces are real faces200 crops blended in by the demo scene builder; frames the detector
    misses (or, without a face, where it sees one) are passed over, so tests do not hinge on
    the detector's recall.
    """
    detector = get_detector()
    files = face_files("faces200")
    rng = np.random.default_rng(seed)
    found: list[bytes] = []
    for _ in range(count * 20):
        faces = [load_face(files[int(rng.integers(len(files)))])] if with_face else []
        frame, _ = compose_frame(rng, faces)
        data = _jpeg(frame)
        decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if bool(detector.detect(decoded)) == with_face:
            found.append(data)
            if len(found) == count:
                return found
    raise AssertionError(f"could not build {count} frames with_face={with_face}")


def huge_jpeg() -> bytes:
    """A small JPEG whose header claims 60000 x 60000 pixels."""
    data = bytearray(_jpeg(np.zeros((16, 16, 3), np.uint8)))
    sof = data.find(b"\xff\xc0")
    assert sof > 0
    data[sof + 5 : sof + 9] = (60000).to_bytes(2, "big") * 2
    return bytes(data)


def with_threshold(settings: Settings, threshold: float) -> Settings:
    """The settings with another age threshold, beyond the range a settings file allows."""
    audit = settings.audit.model_copy(update={"age_threshold": threshold})
    return settings.model_copy(update={"audit": audit})


@dataclass
class NightBuilder:
    """Sales and frames of test stores, written where the real ingest reads them."""

    settings: Settings
    face_frames: list[bytes]
    empty_frames: list[bytes]
    rows: list[dict[str, str]] = field(default_factory=list)
    after_ingest: list[tuple[Path, str]] = field(default_factory=list)
    _faces_used: int = 0

    def sale(
        self,
        receipt_id: str,
        local: str,
        *,
        store: str = "S1",
        register: str = "R1",
        alcohol: bool = True,
    ) -> None:
        """A receipt sold at store-local time ``local`` (``YYYY-MM-DD HH:MM:SS``)."""
        lines = receipt(
            receipt_id,
            lines=2,
            store_id=store,
            register_id=register,
            sold_at=local.replace(" ", "T"),
        )
        if not alcohol:
            for line in lines:
                line.update(category="bakery", product_name="Bread")
        self.rows += lines

    def frame(self, local: str, kind: str = "face", *, store: str = "S1", register: str = "R1"):
        """A snapshot at store-local time ``local``: ``face``, ``no_face`` or a bad kind."""
        when = datetime.fromisoformat(local)
        name = when.strftime("%H%M%S") + (
            f"_{when.microsecond // 1000:03d}" if when.microsecond else ""
        )
        path = (
            self.settings.snapshot_root
            / store
            / register
            / when.strftime("%Y-%m-%d")
            / f"{name}.jpg"
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        if kind == "face":
            data = self.face_frames[self._faces_used % len(self.face_frames)]
            self._faces_used += 1
        elif kind == "no_face":
            data = self.empty_frames[0]
        elif kind == "truncated":
            whole = self.face_frames[0]
            data = whole[: len(whole) // 2]
        elif kind == "not_image":
            data = b"\xff\xd8\xff\xe0" + b"this is not a picture " * 40
        elif kind == "huge":
            data = huge_jpeg()
        elif kind in ("empty", "missing"):
            data = self.face_frames[0]  # good at ingest, spoilt afterwards
            self.after_ingest.append((path, kind))
        else:
            raise ValueError(kind)
        path.write_bytes(data)
        return path

    def ingest(self, session_factory: sessionmaker[Session]) -> None:
        root = self.settings.snapshot_root
        if self.rows:
            csv = write_sales_csv(root.parent / "sales.csv", self.rows)
            summary = ingest_sales_file(
                csv, settings=self.settings, session_factory=session_factory
            )
            assert summary.rejected == 0, summary.rejects
        if any(root.iterdir()):
            summary = ingest_snapshots(
                root, settings=self.settings, session_factory=session_factory
            )
            assert summary.rejected == 0, summary.rejects
        for path, kind in self.after_ingest:
            if kind == "empty":
                path.write_bytes(b"")
            else:
                path.unlink()


# -- reading results back ------------------------------------------------------------------------


def verdicts_by_receipt(engine: Engine, run_id: int | None = None) -> dict[str, dict[str, Any]]:
    """The verdicts of the store-nights' current runs (or of one run), by receipt id."""
    query = (
        sa.select(Sale.receipt_id, SaleVerdict, AuditRun.status)
        .join(SaleVerdict, SaleVerdict.sale_id == Sale.id)
        .join(AuditRun, AuditRun.id == SaleVerdict.run_id)
    )
    query = (
        query.where(AuditRun.id == run_id)
        if run_id
        else query.where(AuditRun.status == "succeeded")
    )
    with Session(engine) as session:
        return {
            receipt_id: {
                "flags": verdict.flag_kinds,
                "age": verdict.estimated_age,
                "spread": verdict.age_spread,
                "matched": verdict.frames_matched,
                "read": verdict.frames_read,
                "faces": verdict.faces_found,
            }
            for receipt_id, verdict, _ in session.execute(query)
        }


def result_state(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every result row of the current runs, without ids or times, for comparing two runs."""

    def rounded(value: Any) -> Any:
        return round(value, 6) if isinstance(value, float) else value

    current = sa.select(AuditRun.id).where(AuditRun.status == "succeeded")
    with Session(engine) as session:
        receipt_of = dict(session.execute(sa.select(Sale.id, Sale.receipt_id)).all())
        state: dict[str, list[tuple[Any, ...]]] = {}
        for table, columns in (
            (
                SaleVerdict,
                [
                    "estimated_age",
                    "age_spread",
                    "frames_matched",
                    "frames_read",
                    "faces_found",
                    "flag_kinds",
                ],
            ),
            (
                AgeEstimate,
                [
                    "snapshot_id",
                    "outcome",
                    "model_version",
                    "face_x",
                    "face_y",
                    "face_w",
                    "face_h",
                    "age",
                    "spread",
                    "face_crop",
                ],
            ),
            (
                Flag,
                [
                    "kind",
                    "snapshot_id",
                    "model_version",
                    "threshold",
                    "face_x",
                    "face_y",
                    "face_w",
                    "face_h",
                    "age",
                    "spread",
                    "face_crop",
                ],
            ),
        ):
            rows = session.execute(
                sa.select(table.sale_id, *(getattr(table, c) for c in columns)).where(
                    table.run_id.in_(current)
                )
            ).all()
            state[table.__tablename__] = sorted(
                ((receipt_of[r[0]], *(rounded(v) for v in r[1:])) for r in rows), key=repr
            )
        runs = session.execute(
            sa.select(
                AuditRun.store_id,
                AuditRun.business_date,
                AuditRun.model_version,
                AuditRun.sales_audited,
                AuditRun.flags_count,
            ).where(AuditRun.status == "succeeded")
        ).all()
        state["audit_runs"] = sorted(tuple(r) for r in runs)
    return state


def run_statuses(engine: Engine) -> list[tuple[str, str | None]]:
    with Session(engine) as session:
        return [
            tuple(r)
            for r in session.execute(
                sa.select(AuditRun.status, AuditRun.error).order_by(AuditRun.id)
            )
        ]
