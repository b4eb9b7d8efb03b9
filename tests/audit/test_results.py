"""The audit's writes: a new run of a night replaces its results and keeps the decisions made
on the earlier ones, in the review state the review app reads (on both databases)."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from auditor.audit.store import Outcome, start_run, write_results
from auditor.db.models import Flag, Review, SaleVerdict, User
from auditor.flag_filters import FlagFilter
from auditor.reviews import record_reviews
from auditor.settings import Settings
from auditor.vocabulary import Decision, FlagKind, ReviewFilter, Role
from auditor.web.access import CurrentUser
from auditor.web.filters import ordered_sales
from tests.review_data import ChainBuilder, expected_review_state, review_state

DAY = date(2024, 3, 1)
UNDER, LATE, NO_FRAME = (
    FlagKind.UNDER_AGE_THRESHOLD,
    FlagKind.OUTSIDE_LEGAL_HOURS,
    FlagKind.NO_FRAME,
)
BORROWED = FlagKind.ID_CONTRADICTS_FACE
LP = CurrentUser(id=1, username="lp", role=Role.LOSS_PREVENTION, store_id=None)


def _verdict(sale_id: int, kinds: list[str], age: float | None, p: float | None) -> dict[str, Any]:
    return {
        "sale_id": sale_id,
        "estimated_age": age,
        "age_spread": None if age is None else 2.0,
        "frames_matched": 1,
        "frames_read": 1,
        "faces_found": int(age is not None),
        "flag_kinds": ";".join(k for k in FlagKind if k in kinds),
        "p_under_legal": p,
        "p_under_threshold": p,
        "challenged": False,
    }


def _flag(sale_id: int, kind: str, age: float | None, p: float | None) -> dict[str, Any]:
    return {
        "sale_id": sale_id,
        "kind": kind,
        "model_version": "m2",
        "threshold": 25,
        "legal_age": 18,
        "age": age,
        "p_under_legal": p,
        "p_under_threshold": p,
    }


def _listed(engine: Engine, **filters: Any) -> list[int]:
    with Session(engine) as session:
        return list(session.execute(ordered_sales(LP, FlagFilter(**filters))).scalars())


def test_a_new_audit_of_the_night_keeps_the_decisions_in_the_review_state(
    engine: Engine, db_settings: Settings
) -> None:
    at = datetime(2024, 3, 1, 12, tzinfo=UTC)
    with Session(engine) as session:
        build = ChainBuilder(session, db_settings)
        kept = build.sale("kept", at, kinds=(UNDER, LATE), age=16.0, p_under_legal=0.7, frame=False)
        gone = build.sale("gone", at, kinds=(NO_FRAME,), age=None, frame=False)
        fresh = build.sale("fresh", at, kinds=(UNDER,), age=17.0, p_under_legal=0.9, frame=False)
        build.user("lp", Role.LOSS_PREVENTION)
        reviewer = session.execute(sa.select(User)).scalar_one()
        decided = session.execute(
            sa.select(Flag).where(
                sa.or_(
                    sa.and_(Flag.sale_id == kept, Flag.kind == UNDER),
                    Flag.sale_id == gone,
                )
            )
        ).scalars()
        record_reviews(
            session=session,
            flags=list(decided),
            reviewer=reviewer,
            decision=Decision.ADULT,
            comment="",
        )
        session.commit()
        decision = session.execute(sa.select(Review.id).where(Review.sale_id == kept)).scalar_one()
        first_run = build.made.runs["S1", DAY]
    assert _listed(engine) == [fresh, kept]  # kept is open while its late flag is
    assert _listed(engine, status=ReviewFilter.REVIEWED) == [gone]

    # The night audited again: "kept" is still under age, not late, and now also shows a
    # borrowed ID; "gone" is no longer flagged; "fresh" is flagged as before.
    outcome = Outcome(
        estimates=[],
        verdicts=[
            _verdict(kept, [UNDER, BORROWED], 16.5, 0.8),
            _verdict(gone, [], 30.0, 0.01),
            _verdict(fresh, [UNDER], 17.0, 0.9),
        ],
        flags=[
            (_flag(kept, UNDER, 16.5, 0.8), None),
            (_flag(kept, BORROWED, 16.5, 0.8), None),
            (_flag(fresh, UNDER, 17.0, 0.9), None),
        ],
        stats={},
        flag_counts=Counter(),
        flagged_sales=2,
    )
    with Session(engine) as session:
        run_id = start_run(
            session, settings=db_settings, model_version="m2", store_id="S1", day=DAY
        )
    with Session(engine) as session:
        write_results(
            session,
            run_id=run_id,
            store_id="S1",
            day=DAY,
            outcome=outcome,
            timings={},
            started=time.perf_counter(),
        )

    with Session(engine) as session:
        assert review_state(session) == expected_review_state(session)
        flags = {
            (f.sale_id, f.kind): f
            for f in session.execute(sa.select(Flag).where(Flag.run_id == run_id)).scalars()
        }
        assert flags[kept, UNDER].review_id == decision  # the decision holds for the new flag
        assert flags[kept, BORROWED].review_id is None
        assert flags[fresh, UNDER].review_id is None
        assert (
            session.execute(sa.select(sa.func.count()).where(Flag.run_id == first_run)).scalar_one()
            == 0
        )
        verdicts = {
            v.sale_id: (v.open_flags, v.violation, v.risk)
            for v in session.execute(
                sa.select(SaleVerdict).where(SaleVerdict.run_id == run_id)
            ).scalars()
        }
    assert verdicts == {kept: (1, True, 0.8), gone: (0, False, -1.0), fresh: (1, False, 0.9)}
    assert _listed(engine) == [kept, fresh]  # a hard violation first
    assert _listed(engine, status=ReviewFilter.REVIEWED) == []
    assert _listed(engine, kind=UNDER, status=ReviewFilter.REVIEWED) == [kept]
    assert _listed(engine, kind=UNDER) == [fresh]
