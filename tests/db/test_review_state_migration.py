"""Revision 0009: the review state kept with the flags and verdicts, filled from the reviews
already recorded; and back."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from auditor.db import make_engine
from auditor.db.migrations import downgrade, upgrade
from tests.conftest import database_at
from tests.review_data import expected_review_state, review_state

T = "'2024-03-02 08:00:00'"
ROWS = [
    f"INSERT INTO stores (id, name, timezone, created_at) VALUES ('S1', '', 'UTC', {T})",
    "INSERT INTO registers (store_id, register_id) VALUES ('S1', 'R1')",
    "INSERT INTO cashiers (store_id, cashier_id, name) VALUES ('S1', 'C1', '')",
    *(
        "INSERT INTO sales (id, store_id, receipt_id, register_id, cashier_id, sold_at,"
        f" has_alcohol, line_count, total_cents, content_hash, source_file, ingested_at)"
        f" VALUES ({i}, 'S1', 'r{i}', 'R1', 'C1', '2024-03-01 12:0{i}:00', true, 1, 100, 'h',"
        f" 'f', {T})"
        for i in (1, 2, 3)
    ),
    "INSERT INTO audit_runs (id, store_id, business_date, status, started_at, settings,"
    f" model_version, sales_audited, flags_count) VALUES (1, 'S1', '2024-03-01', 'succeeded',"
    f" {T}, '{{}}', 'm1', 3, 3)",
    # sale 1: under age (decided, then revised) and late (open); sale 2: a birth date under
    # the legal age, decided twice at the same time; sale 3: clean
    *(
        "INSERT INTO sale_verdicts (run_id, sale_id, estimated_age, frames_matched, frames_read,"
        f" faces_found, flag_kinds, p_under_legal, challenged) VALUES (1, {sale}, {age}, 1, 1,"
        f" 1, '{kinds}', {p}, false)"
        for sale, age, kinds, p in (
            (1, "16.5", "under_age_threshold;outside_legal_hours", "0.7"),
            (2, "NULL", "birth_date_under_age", "NULL"),
            (3, "40.0", "", "0.01"),
        )
    ),
    *(
        "INSERT INTO flags (id, run_id, sale_id, kind, threshold, created_at, p_under_legal)"
        f" VALUES ({flag}, 1, {sale}, '{kind}', 25, {T}, {p})"
        for flag, sale, kind, p in (
            (1, 1, "under_age_threshold", "0.7"),
            (2, 1, "outside_legal_hours", "0.7"),
            (3, 2, "birth_date_under_age", "NULL"),
        )
    ),
    "INSERT INTO users (id, username, password_hash, role, active, created_at)"
    f" VALUES (1, 'lp', 'x', 'loss_prevention', true, {T})",
    *(
        "INSERT INTO reviews (id, sale_id, flag_id, flag_kind, reviewer_id, decision, comment,"
        f" reviewed_at) VALUES ({review}, {sale}, NULL, '{kind}', 1, '{decision}', '', '{at}')"
        for review, sale, kind, decision, at in (
            (1, 1, "under_age_threshold", "adult", "2024-03-02 10:00:00"),
            (2, 1, "under_age_threshold", "confirmed_violation", "2024-03-02 11:00:00"),
            (3, 2, "birth_date_under_age", "id_checked", "2024-03-02 10:00:00"),
            (4, 2, "birth_date_under_age", "adult", "2024-03-02 10:00:00"),
            (5, 1, "no_face", "invalid_frame", "2024-03-02 12:00:00"),  # of an earlier run
            (6, 1, "under_age_threshold", "adult", "2024-03-02 09:00:00"),  # sent late
        )
    ),
]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)])
def url_at_0008(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database at revision 0008 holding a store-night with flags and reviews."""
    yield from database_at(request.param, tmp_path, "0008", ROWS, "auditor_0009")


def test_upgrade_fills_the_review_state_from_the_reviews(url_at_0008: str) -> None:
    upgrade(url_at_0008, "0009")
    engine = make_engine(url_at_0008)
    try:
        with Session(engine) as session:
            state = review_state(session)
            assert state == expected_review_state(session)
        assert state["flags"] == {1: 2, 2: None, 3: 4}  # the latest, by time and then id
        assert state["verdicts"] == {
            (1, 1): (1, False, 0.7, 16.5),
            (1, 2): (0, True, -1.0, 1000.0),
            (1, 3): (0, False, -1.0, 40.0),
        }
        names = {i["name"] for i in sa.inspect(engine).get_indexes("sale_verdicts")}
        assert {f"ix_sale_verdicts_{n}" for n in ("open", "risk", "age")} <= names
    finally:
        engine.dispose()

    downgrade(url_at_0008, "0008")
    engine = make_engine(url_at_0008)
    try:
        inspector = sa.inspect(engine)
        assert "review_id" not in {c["name"] for c in inspector.get_columns("flags")}
        verdict_columns = {c["name"] for c in inspector.get_columns("sale_verdicts")}
        assert not verdict_columns & {"open_flags", "violation", "risk", "age_key"}
        with engine.begin() as connection:
            assert connection.exec_driver_sql("SELECT count(*) FROM flags").scalar_one() == 3
            assert connection.exec_driver_sql("SELECT count(*) FROM reviews").scalar_one() == 6
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as connection:
            connection.exec_driver_sql(  # the flags' kinds are still checked
                "INSERT INTO flags (run_id, sale_id, kind, threshold, created_at)"
                f" VALUES (1, 3, 'nonsense', 25, {T})"
            )
    finally:
        engine.dispose()
    upgrade(url_at_0008, "0009")  # and up again
