"""Builders of audit results for report tests: stores, sales, runs, verdicts, flags, reviews.

Rows go straight into a migrated database (SQLite or PostgreSQL) in bulk, as the audit and the
review app would leave them, so that a report can be checked against known figures. A store
night of the "demo chain" (:func:`demo_night`) mixes every case a page must show.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import cv2
import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from auditor.db.models import (
    AuditRun,
    Cashier,
    Flag,
    Register,
    Review,
    Sale,
    SaleLine,
    SaleVerdict,
    Store,
    User,
)
from auditor.vocabulary import AGE_KINDS, FlagKind

BEER = ("Pils 0.5 l", "beer", 6.0, 594, True)
WINE = ("Riesling 0.75 l", "wine", 1.0, 899, True)
SPIRITS = ("Vodka 0.7 l", "spirits", 1.0, 1299, True)
BREAD = ("Bread", "bakery", 1.0, 249, False)
CRISPS = ("Crisps", "snacks", 2.0, 398, False)
Item = tuple[str, str, float, int, bool]  # product, category, quantity, amount in cents, alcohol

AUDIT_SETTINGS = {
    "audit": {
        "age_threshold": 25,
        "window_before_s": 5.0,
        "window_after_s": 10.0,
        "frames_per_sale": 3,
        "legal_hours_start": "08:00:00",
        "legal_hours_end": "23:00:00",
    }
}


@dataclass
class SaleSpec:
    store_id: str
    receipt_id: str
    sold_at: datetime  # aware
    register_id: str = "R1"
    cashier_id: str = "C1"
    items: Sequence[Item] = (BEER, BREAD)
    age_check: str | None = None  # what the till recorded (None: no age-check column)
    birth_date: date | None = None


@dataclass
class VerdictSpec:
    """A sale's verdict; ``kinds`` become flags, an under-age one (``AGE_KINDS``) with ``crop``
    (or purged); every flag carries the sale's probabilities and ``legal_age``."""

    sale_id: int
    age: float | None = None
    spread: float | None = None
    frames: int = 1
    faces: int | None = None  # default: 1 when an age is given
    kinds: Sequence[str] = ()
    crop: bytes | None = None
    purged: bool = False
    p_under_legal: float | None = None
    p_under_threshold: float | None = None
    challenged: bool = False
    legal_age: int | None = 18


def p_under(age: float | None, spread: float | None, limit: float) -> float | None:
    """The probability of a true age under ``limit`` for a normal estimate (None without one)."""
    if age is None:
        return None
    sd = max(spread or 1.0, 1.0)
    return 0.5 * math.erfc((age - limit) / (sd * math.sqrt(2.0)))


@dataclass
class ResultsBuilder:
    engine: Engine
    zones: dict[str, ZoneInfo] = field(default_factory=dict)
    registers: set[tuple[str, str]] = field(default_factory=set)
    cashiers: set[tuple[str, str]] = field(default_factory=set)
    reviewer_id: int | None = None

    def store(self, store_id: str, name: str = "", timezone: str = "Europe/Berlin") -> None:
        with self.engine.begin() as c:
            c.execute(sa.insert(Store), [{"id": store_id, "name": name, "timezone": timezone}])
        self.zones[store_id] = ZoneInfo(timezone)

    def cashier(self, store_id: str, cashier_id: str, name: str) -> None:
        with self.engine.begin() as c:
            c.execute(
                sa.insert(Cashier), [{"store_id": store_id, "cashier_id": cashier_id, "name": name}]
            )
        self.cashiers.add((store_id, cashier_id))

    def local(self, store_id: str, when: str) -> datetime:
        """Store-local ``YYYY-MM-DD HH:MM[:SS]`` as an aware datetime."""
        return datetime.fromisoformat(when).replace(tzinfo=self.zones[store_id])

    def sales(self, specs: Sequence[SaleSpec]) -> list[int]:
        """Insert the sales and their lines; returns their ids in order."""
        new_registers = {(s.store_id, s.register_id) for s in specs} - self.registers
        new_cashiers = {(s.store_id, s.cashier_id) for s in specs} - self.cashiers
        rows = []
        for s in specs:
            rows.append(
                {
                    "store_id": s.store_id,
                    "receipt_id": s.receipt_id,
                    "register_id": s.register_id,
                    "cashier_id": s.cashier_id,
                    "sold_at": s.sold_at,
                    "has_alcohol": any(i[4] for i in s.items),
                    "line_count": len(s.items),
                    "total_cents": sum(i[3] for i in s.items),
                    "content_hash": hashlib.sha256(s.receipt_id.encode()).hexdigest(),
                    "source_file": "pos.csv",
                    "age_check": s.age_check,
                    "birth_date": s.birth_date,
                }
            )
        with self.engine.begin() as c:
            if new_registers:
                c.execute(
                    sa.insert(Register),
                    [{"store_id": a, "register_id": b} for a, b in sorted(new_registers)],
                )
            if new_cashiers:
                c.execute(
                    sa.insert(Cashier),
                    [{"store_id": a, "cashier_id": b, "name": ""} for a, b in sorted(new_cashiers)],
                )
            ids = list(
                c.execute(
                    sa.insert(Sale).returning(Sale.id, sort_by_parameter_order=True), rows
                ).scalars()
            )
            lines = [
                {
                    "sale_id": sale_id,
                    "line_no": n,
                    "source_line": n + 1,
                    "sku": f"{n:04d}",
                    "product_name": item[0],
                    "category": item[1],
                    "quantity": item[2],
                    "amount_cents": item[3],
                    "is_alcohol": item[4],
                }
                for sale_id, spec in zip(ids, specs, strict=True)
                for n, item in enumerate(spec.items, start=1)
            ]
            if lines:
                c.execute(sa.insert(SaleLine), lines)
        self.registers |= new_registers
        self.cashiers |= new_cashiers
        return ids

    def sale(self, store_id: str, receipt_id: str, when: str, **kwargs: Any) -> int:
        return self.sales([SaleSpec(store_id, receipt_id, self.local(store_id, when), **kwargs)])[0]

    def run(
        self,
        store_id: str,
        day: date,
        *,
        status: str = "succeeded",
        error: str | None = None,
        started_at: datetime | None = None,
        model_version: str = "age-test-1",
        settings: dict[str, Any] | None = None,
    ) -> int:
        started = started_at or datetime.combine(day + timedelta(days=1), time(1, 30), UTC)
        with self.engine.begin() as c:
            return int(
                c.execute(
                    sa.insert(AuditRun).returning(AuditRun.id),
                    {
                        "store_id": store_id,
                        "business_date": day,
                        "status": status,
                        "started_at": started,
                        "finished_at": None
                        if status == "running"
                        else started + timedelta(minutes=3),
                        "settings": settings or AUDIT_SETTINGS,
                        "model_version": model_version,
                        "sales_audited": 0,
                        "flags_count": 0,
                        "error": error,
                        "stats": {"seconds": {"total": 180.0}},
                    },
                ).scalar_one()
            )

    def verdicts(self, run_id: int, specs: Sequence[VerdictSpec], threshold: int = 25) -> None:
        verdicts, flags = [], []
        for v in specs:
            kinds = [k for k in FlagKind if k in v.kinds]
            assert len(kinds) == len(v.kinds), v.kinds
            verdicts.append(
                {
                    "run_id": run_id,
                    "sale_id": v.sale_id,
                    "estimated_age": v.age,
                    "age_spread": v.spread,
                    "frames_matched": v.frames,
                    "frames_read": v.frames,
                    "faces_found": v.faces if v.faces is not None else int(v.age is not None),
                    "flag_kinds": ";".join(kinds),
                    "p_under_legal": v.p_under_legal,
                    "p_under_threshold": v.p_under_threshold,
                    "challenged": v.challenged,
                }
            )
            for kind in kinds:
                under = kind in AGE_KINDS
                flags.append(
                    {
                        "run_id": run_id,
                        "sale_id": v.sale_id,
                        "kind": kind,
                        "threshold": threshold,
                        "model_version": "age-test-1",
                        "age": v.age,
                        "spread": v.spread,
                        "face_crop": v.crop if under and not v.purged else None,
                        "evidence_purged_at": datetime(2025, 1, 1, tzinfo=UTC)
                        if under and v.purged
                        else None,
                        "legal_age": v.legal_age,
                        "p_under_legal": v.p_under_legal,
                        "p_under_threshold": v.p_under_threshold,
                    }
                )
        with self.engine.begin() as c:
            if verdicts:
                c.execute(sa.insert(SaleVerdict), verdicts)
            if flags:
                c.execute(sa.insert(Flag), flags)
            c.execute(
                sa.update(AuditRun)
                .where(AuditRun.id == run_id)
                .values(sales_audited=len(verdicts), flags_count=len(flags))
            )

    def review(
        self,
        sale_id: int,
        kind: str,
        decision: str,
        at: datetime,
        comment: str = "",
    ) -> None:
        with self.engine.begin() as c:
            if self.reviewer_id is None:
                self.reviewer_id = int(
                    c.execute(
                        sa.insert(User).returning(User.id),
                        {
                            "username": "lp.reviewer",
                            "password_hash": "x",
                            "role": "loss_prevention",
                        },
                    ).scalar_one()
                )
            c.execute(
                sa.insert(Review),
                {
                    "sale_id": sale_id,
                    "flag_kind": kind,
                    "reviewer_id": self.reviewer_id,
                    "decision": decision,
                    "comment": comment,
                    "reviewed_at": at,
                },
            )


def crop_jpeg(seed: int) -> bytes:
    """A 112 px JPEG about the size of a real face crop (smooth shapes, a little noise); no face."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:112, 0:112]
    base = rng.integers(60, 200, 3)
    image = np.clip(base + (x + y)[..., None] * 0.4 + rng.normal(0, 4, (112, 112, 3)), 0, 255)
    image = image.astype(np.uint8)
    cv2.ellipse(image, (56, 60), (30, 40), 0, 0, 360, tuple(int(c) for c in base[::-1]), -1)
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return data.tobytes()


# -- generated nights ----------------------------------------------------------------------------


@dataclass
class NightTruth:
    """What was written for a generated store-night, to check a report against."""

    run_id: int
    sale_ids: list[int]
    specs: list[VerdictSpec]


def generated_night(
    builder: ResultsBuilder,
    store_id: str,
    day: date,
    n_sales: int,
    *,
    seed: int = 0,
    cashiers: int = 6,
    registers: int = 4,
    camera_off: bool = False,
    checks: Mapping[str, float] | None = None,
    settings: dict[str, Any] | None = None,
) -> NightTruth:
    """A store-night of ``n_sales`` alcohol sales from 08:00 to 23:30 with believable verdicts.

    Ages are drawn around 40 with some young shoppers; 5 % of sales lack a frame, 3 % a face;
    under-age sales keep a (noise) JPEG as their face crop. ``camera_off``: no frame at all.
    ``checks``: the till records age checks, and each cashier (by id) checks the ID of a
    shopper estimated under 25 with that probability (default 0.5): a checked sale is
    challenged, not flagged, the others are flagged ``no_id_check``. ``settings``: the run's.
    """
    rng = np.random.default_rng(seed)
    zone = builder.zones[store_id]
    opening = datetime.combine(day, time(8), zone)
    seconds = np.sort(rng.integers(0, int(15.5 * 3600), n_sales))
    baskets = [(BEER, BREAD), (WINE, CRISPS), (SPIRITS,), (BEER, CRISPS, BREAD), (WINE,)]
    specs = [
        SaleSpec(
            store_id=store_id,
            receipt_id=f"{day:%Y%m%d}-{n:05d}",
            sold_at=(opening + timedelta(seconds=int(s))).astimezone(UTC),
            register_id=f"R{1 + n % registers}",
            cashier_id=f"C{1 + int(rng.integers(0, cashiers))}",
            items=baskets[int(rng.integers(0, len(baskets)))],
            age_check="visual" if checks is not None else None,
        )
        for n, s in enumerate(seconds)
    ]
    # the evidence of each sale first (in the order of draws of before age checks existed)
    drawn = []
    for spec in specs:
        local_time = spec.sold_at.astimezone(zone).time()
        draw = rng.random()
        age = spread = None
        if not (camera_off or draw < 0.08):
            age = float(np.clip(rng.normal(40, 13), 14, 85))
            spread = float(rng.uniform(2, 6))
        drawn.append((camera_off or draw < 0.05, age, spread, not time(8) <= local_time < time(23)))
    habits = np.random.default_rng(seed + 1_000_003)  # the cashiers' checks: their own draws
    for spec, (_, age, _, _) in zip(specs, drawn, strict=True):
        young = checks is not None and age is not None and age < 25
        if young and habits.random() < (checks or {}).get(spec.cashier_id, 0.5):
            spec.age_check = "id_checked"
    sale_ids = builder.sales(specs)
    run_id = builder.run(store_id, day, settings=settings)
    verdicts = []
    for sale_id, spec, (no_frame, age, spread, late) in zip(sale_ids, specs, drawn, strict=True):
        kinds: list[str] = []
        if no_frame:
            kinds.append("no_frame")
        elif age is None:
            kinds.append("no_face")
        challenged = False
        if age is not None and age < 25:
            if checks is None:
                kinds.append("under_age_threshold")
            elif spec.age_check == "id_checked":
                challenged = True
            else:
                kinds.append("no_id_check")
        if late:
            kinds.append("outside_legal_hours")
        crop = crop_jpeg(int(sale_id)) if any(k in AGE_KINDS for k in kinds) else None
        verdicts.append(
            VerdictSpec(
                sale_id,
                age,
                spread,
                frames=0 if no_frame else 1,
                kinds=kinds,
                crop=crop,
                p_under_legal=p_under(age, spread, 18),
                p_under_threshold=p_under(age, spread, 25),
                challenged=challenged,
            )
        )
    builder.verdicts(run_id, verdicts)
    return NightTruth(run_id, sale_ids, verdicts)
