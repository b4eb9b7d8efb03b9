"""Audited nights written straight into the tables, for the review app, retention and threshold
tests: stores, sales with lines, frame files with snapshot rows, a succeeded run with verdicts
and flags, users and reviews, with the review state an audit run and a decision keep. No
model runs; the rows are what an audit run writes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from auditor.db.models import (
    NO_AGE,
    NO_PROBABILITY,
    AuditRun,
    Cashier,
    Flag,
    Register,
    Review,
    Sale,
    SaleLine,
    SaleVerdict,
    Snapshot,
    Store,
    User,
)
from auditor.reviews import refresh_review_state
from auditor.settings import Settings
from auditor.users import hash_password
from auditor.vocabulary import AGE_KINDS, FlagKind
from tests.factories import jpeg_bytes

PASSWORD = "correct horse battery"


@dataclass
class Made:
    """Ids of what a builder wrote."""

    sales: dict[str, int] = field(default_factory=dict)  # receipt id -> sale id
    flags: dict[str, int] = field(default_factory=dict)  # receipt id -> its first flag's id
    snapshots: dict[str, int] = field(default_factory=dict)  # receipt id -> snapshot id
    runs: dict[tuple[str, date], int] = field(default_factory=dict)
    users: dict[str, int] = field(default_factory=dict)  # user name -> user id


@dataclass
class ChainBuilder:
    """Writes stores, audited sales and their evidence with a session the test owns."""

    session: Session
    settings: Settings
    made: Made = field(default_factory=Made)
    _seed: int = 0

    def store(self, store_id: str, name: str = "", zone: str = "Europe/Berlin") -> None:
        if self.session.get(Store, store_id) is None:
            self.session.add(Store(id=store_id, name=name or store_id, timezone=zone))
            self.session.flush()
            self.session.add(Register(store_id=store_id, register_id="R1"))
            self.session.add(Cashier(store_id=store_id, cashier_id="C1", name="Anna Example"))
            self.session.flush()

    def till(self, store_id: str, register: str, cashier: str) -> None:
        """The register and the cashier, unless the store has them already."""
        if self.session.get(Register, (store_id, register)) is None:
            self.session.add(Register(store_id=store_id, register_id=register))
        if self.session.get(Cashier, (store_id, cashier)) is None:
            self.session.add(Cashier(store_id=store_id, cashier_id=cashier, name=f"Name {cashier}"))
        self.session.flush()

    def run(self, store_id: str, day: date, threshold: int = 25) -> int:
        key = (store_id, day)
        if key not in self.made.runs:
            run = AuditRun(
                store_id=store_id,
                business_date=day,
                status="succeeded",
                started_at=datetime.now(UTC),
                finished_at=datetime.now(UTC),
                settings={"audit": {"age_threshold": threshold}},
                model_version="test-model",
                sales_audited=0,
                flags_count=0,
            )
            self.session.add(run)
            self.session.flush()
            self.made.runs[key] = run.id
        return self.made.runs[key]

    def sale(
        self,
        receipt_id: str,
        sold_at: datetime,
        *,
        store: str = "S1",
        age: float | None = 30.0,
        spread: float = 2.0,
        kinds: tuple[str, ...] | None = None,
        threshold: int = 25,
        frame: bool = True,
        crop: bool = True,
        day: date | None = None,
        register: str = "R1",
        cashier: str = "C1",
        p_under_legal: float | None = None,
        legal_age: int | None = 18,
        age_check: str | None = None,
        birth_date: date | None = None,
        challenged: bool = False,
    ) -> int:
        """An audited alcohol sale with its verdict; flags ``kinds`` (default: under-age when
        ``age`` is under ``threshold``), a frame file and a crop on each under-age flag
        (``AGE_KINDS``). Every flag carries ``legal_age`` and the sale's ``p_under_legal``."""
        self.store(store)
        self.till(store, register, cashier)
        run_id = self.run(store, day or sold_at.date(), threshold)
        sale = Sale(
            store_id=store,
            receipt_id=receipt_id,
            register_id=register,
            cashier_id=cashier,
            sold_at=sold_at,
            has_alcohol=True,
            line_count=2,
            total_cents=843,
            content_hash=receipt_id,
            source_file="test.csv",
            age_check=age_check,
            birth_date=birth_date,
        )
        self.session.add(sale)
        self.session.flush()
        self.session.add_all(
            [
                SaleLine(
                    sale_id=sale.id,
                    line_no=1,
                    source_line=2,
                    sku="4001",
                    product_name="Pils 0.5 l",
                    category="beer",
                    quantity=6,
                    amount_cents=594,
                    is_alcohol=True,
                ),
                SaleLine(
                    sale_id=sale.id,
                    line_no=2,
                    source_line=3,
                    sku="9001",
                    product_name="Bread",
                    category="bakery",
                    quantity=1,
                    amount_cents=249,
                    is_alcohol=False,
                ),
            ]
        )
        if kinds is None:
            kinds = ("under_age_threshold",) if age is not None and age < threshold else ()
        snapshot_id = self._frame(store, sold_at, receipt_id) if frame else None
        self.session.add(
            SaleVerdict(
                run_id=run_id,
                sale_id=sale.id,
                estimated_age=age,
                age_spread=spread if age is not None else None,
                frames_matched=int(frame),
                frames_read=int(frame),
                faces_found=int(age is not None),
                flag_kinds=";".join(kinds),
                p_under_legal=p_under_legal,
                challenged=challenged,
            )
        )
        for kind in kinds:
            under = kind in AGE_KINDS
            flag = Flag(
                run_id=run_id,
                sale_id=sale.id,
                kind=kind,
                snapshot_id=snapshot_id,
                model_version="test-model",
                threshold=threshold,
                face_x=4 if snapshot_id else None,
                face_y=4 if snapshot_id else None,
                face_w=8 if snapshot_id else None,
                face_h=8 if snapshot_id else None,
                age=age,
                spread=spread if age is not None else None,
                face_crop=jpeg_bytes(self._next_seed()) if under and crop else None,
                legal_age=legal_age,
                p_under_legal=p_under_legal,
            )
            self.session.add(flag)
            self.session.flush()
            self.made.flags.setdefault(receipt_id, flag.id)
        refresh_review_state(self.session, sale_ids=[sale.id])
        self.made.sales[receipt_id] = sale.id
        return sale.id

    def _next_seed(self) -> int:
        self._seed += 1
        return self._seed

    def _frame(self, store: str, when: datetime, receipt_id: str) -> int:
        relative = f"{store}/R1/{when:%Y-%m-%d}/{when:%H%M%S}_{receipt_id}.jpg"
        path = self.settings.snapshot_root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        data = jpeg_bytes(self._next_seed())
        path.write_bytes(data)
        snapshot = Snapshot(
            store_id=store,
            register_id="R1",
            captured_at=when + timedelta(seconds=2),
            path=relative,
            size_bytes=len(data),
            sha256="0" * 64,
        )
        self.session.add(snapshot)
        self.session.flush()
        self.made.snapshots[receipt_id] = snapshot.id
        return snapshot.id

    def user(self, username: str, role: str, store_id: str | None = None) -> int:
        user = User(
            username=username,
            password_hash=hash_password(PASSWORD),
            role=role,
            store_id=store_id,
            active=True,
        )
        self.session.add(user)
        self.session.flush()
        self.made.users[username] = user.id
        return user.id

    def review(
        self, receipt_id: str, decision: str, *, by: int, at: datetime, **extra: Any
    ) -> None:
        flag = self.session.get(Flag, self.made.flags[receipt_id])
        assert flag is not None
        self.session.add(
            Review(
                sale_id=flag.sale_id,
                flag_id=flag.id,
                flag_kind=extra.get("kind", flag.kind),
                reviewer_id=by,
                decision=decision,
                comment=extra.get("comment", ""),
                reviewed_at=at,
            )
        )
        self.session.flush()
        refresh_review_state(self.session, sale_ids=[flag.sale_id])


def review_state(session: Session) -> dict[str, dict[Any, Any]]:
    """The stored review state: each flag's current review, each verdict's open flags and sort
    keys (run id, sale id) -> (open_flags, violation, risk, age_key)."""
    flags = session.execute(sa.select(Flag.id, Flag.review_id))
    verdicts = session.execute(
        sa.select(
            SaleVerdict.run_id,
            SaleVerdict.sale_id,
            SaleVerdict.open_flags,
            SaleVerdict.violation,
            SaleVerdict.risk,
            SaleVerdict.age_key,
        )
    )
    return {
        "flags": {flag_id: review_id for flag_id, review_id in flags},
        "verdicts": {(r, s): (o, bool(v), risk, age) for r, s, o, v, risk, age in verdicts},
    }


def expected_review_state(session: Session) -> dict[str, dict[Any, Any]]:
    """The review state worked out in Python from the flags, verdicts and reviews themselves:
    a flag's current review is the latest (by time, then id) of its sale and kind."""
    latest: dict[tuple[int, str], tuple[datetime, int]] = {}
    for review in session.execute(sa.select(Review)).scalars():
        key = (review.sale_id, review.flag_kind)
        latest[key] = max(
            latest.get(key, (review.reviewed_at, review.id)), (review.reviewed_at, review.id)
        )
    flags = list(session.execute(sa.select(Flag)).scalars())
    current = {
        f.id: latest[(f.sale_id, f.kind)][1] if (f.sale_id, f.kind) in latest else None
        for f in flags
    }
    verdicts = {}
    for v in session.execute(sa.select(SaleVerdict)).scalars():
        own = [f for f in flags if (f.run_id, f.sale_id) == (v.run_id, v.sale_id)]
        probabilities = [f.p_under_legal for f in own if f.p_under_legal is not None]
        verdicts[(v.run_id, v.sale_id)] = (
            sum(current[f.id] is None for f in own),
            any(FlagKind(f.kind).is_violation for f in own),
            max(probabilities, default=NO_PROBABILITY),
            NO_AGE if v.estimated_age is None else v.estimated_age,
        )
    return {"flags": current, "verdicts": verdicts}
