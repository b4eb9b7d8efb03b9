"""The audit's reads: which store-nights have nothing ingested, on both databases."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from auditor.audit.store import UnknownStore, night_is_empty, require_known_stores
from tests.audit.conftest import AUDIT_STORES
from tests.audit.night import NightBuilder
from tests.factories import make_settings


@pytest.fixture
def ingested(
    tmp_path: Path,
    db_url: str,
    face_frames: list[bytes],
    empty_frames: list[bytes],
    session_factory: sessionmaker[Session],
) -> NightBuilder:
    """Sales and frames of S1 (Berlin) and S3 (Tokyo); no model is needed to read them."""
    settings = make_settings(tmp_path, database_url=db_url, stores=AUDIT_STORES)
    night = NightBuilder(settings, face_frames, empty_frames)
    night.sale("1", "2024-03-01 12:00:00")
    night.sale("2", "2024-03-03 10:00:00", alcohol=False)
    night.frame("2024-03-05 10:00:00")
    night.sale("3", "2024-03-07 00:00:00")  # the first second of 7 March in Berlin
    night.frame("2024-03-09 00:00:03")  # in the window after 8 March, not in its day
    night.sale("4", "2024-03-08 00:30:00", store="S3")  # 7 March 15:30 UTC, in Tokyo's 8th
    night.ingest(session_factory)
    return night


@pytest.mark.parametrize(
    "store_id,day,empty",
    [
        ("S1", date(2024, 3, 1), False),  # an alcohol sale
        ("S1", date(2024, 3, 2), True),
        ("S1", date(2024, 3, 3), False),  # a sale without alcohol is still a sale
        ("S1", date(2024, 3, 5), False),  # frames without sales
        ("S1", date(2024, 3, 6), True),  # the sale at midnight is the 7th's
        ("S1", date(2024, 3, 7), False),
        ("S1", date(2024, 3, 8), True),  # a frame just after the day does not count
        ("S3", date(2024, 3, 7), True),  # the same instant is the 8th in Tokyo
        ("S3", date(2024, 3, 8), False),
        ("S2", date(2024, 3, 1), True),  # another store's sale does not count
        ("S1", date(2020, 1, 1), True),
    ],
)
def test_night_is_empty(
    ingested: NightBuilder,
    session_factory: sessionmaker[Session],
    store_id: str,
    day: date,
    empty: bool,
) -> None:
    with session_factory() as session:
        found = night_is_empty(session, settings=ingested.settings, store_id=store_id, day=day)
    assert found is empty


def test_require_known_stores(
    ingested: NightBuilder, session_factory: sessionmaker[Session]
) -> None:
    with session_factory() as session:
        assert require_known_stores(session, ()) == ["S1", "S3"]
        assert require_known_stores(session, ("S3",)) == ["S3"]
        with pytest.raises(UnknownStore, match=r"^unknown store 'S2'; known: S1, S3$"):
            require_known_stores(session, ("S1", "S2"))
        with pytest.raises(UnknownStore, match=r"^unknown stores 'x', 'y'; known: S1, S3$"):
            require_known_stores(session, ("x", "y"))
