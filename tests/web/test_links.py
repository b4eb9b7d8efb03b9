"""Links both ways: the written reports link each flagged sale to its page in the review app
(``[web] base_url``), the app links each flag to its night's store page (``[notify]
reports_url``), a store page says when its reviews were read, and the nightly report step
writes again the pages whose reviews changed since."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from auditor.reports import build
from auditor.settings import Settings
from tests.factories import make_settings
from tests.reports.html import parse, read
from tests.review_data import Made
from tests.web.conftest import SECRET, csrf_token
from tests.web.test_app import Client

DAY = date(2024, 3, 1)
APP = "https://review.chain.example/audit"
REPORTS = "https://reports.chain.example/nightly/"


@pytest.fixture
def web_settings(tmp_path: Path, db_url: str) -> Settings:
    return make_settings(
        tmp_path,
        database_url=db_url,
        web={"secret_key": SECRET, "base_url": APP},
        notify={"reports_url": REPORTS},
    )


def _store_page(settings: Settings, store: str = "S1") -> Path:
    return settings.report_dir / DAY.isoformat() / f"{store}.html"


def _review_cells(page: Path) -> dict[str, list[str]]:
    """receipt -> the decisions its review cell shows."""
    table = read(page).find("table", id="flagged-sales")
    return {
        row.attrs["data-receipt"]: [
            tag.attrs["data-decision"] for tag in row.find_all("span", data_decision=True)
        ]
        for row in table.find_all("tr", data_receipt=True)
    }


def test_report_rows_link_to_the_app_and_the_app_links_back(
    engine: Engine, web_settings: Settings, chain: Made, client_for: Client
) -> None:
    now = datetime(2024, 3, 2, 6, 0, tzinfo=UTC)
    build.write_night_reports(engine=engine, settings=web_settings, day=DAY, now=now)
    page = read(_store_page(web_settings))
    links = {
        row.attrs["data-receipt"]: row.find("a").attrs["href"]
        for row in page.find("table", id="flagged-sales").find_all("tr", data_receipt=True)
    }
    assert links == {
        "s1-late": f"{APP}/flags/{chain.flags['s1-late']}",
        "s1-early": f"{APP}/flags/{chain.flags['s1-early']}",
    }
    as_of = page.find("p", id="reviews-as-of")
    assert datetime.fromisoformat(as_of.attrs["data-reviews-as-of"]) == now
    assert "Reviews as of 2024-03-02 07:00 CET" in as_of.text

    # the link's path opens the flag in the app, which links the night's store page
    client = client_for("mgr1")
    flag_page = client.get(links["s1-late"].removeprefix(APP))
    assert flag_page.status_code == 200
    link = parse(flag_page.get_data(as_text=True)).find("a", id="night-report")
    assert link.attrs["href"] == f"{REPORTS}2024-03-01/S1.html"


def test_without_addresses_there_are_no_links(
    engine: Engine, tmp_path: Path, db_url: str, chain: Made
) -> None:
    settings = make_settings(tmp_path / "plain", database_url=db_url)
    build.write_night_reports(engine=engine, settings=settings, day=DAY)
    table = read(_store_page(settings)).find("table", id="flagged-sales")
    assert table.find_all("a") == []


def test_the_older_notify_review_url_is_the_same_address(tmp_path: Path) -> None:
    old = make_settings(tmp_path / "a", notify={"review_url": "https://old.example"})
    assert old.review_url == "https://old.example"
    both = make_settings(
        tmp_path / "b",
        web={"base_url": "https://new.example"},
        notify={"review_url": "https://old.example"},
    )
    assert both.review_url == "https://new.example"


def test_the_nightly_step_rewrites_the_pages_whose_reviews_changed(
    engine: Engine, web_settings: Settings, chain: Made, client_for: Client
) -> None:
    written = datetime.now(UTC)  # after the chain was audited
    build.write_night_reports(engine=engine, settings=web_settings, day=DAY, now=written)
    s2_before = _store_page(web_settings, "S2").read_text()
    assert _review_cells(_store_page(web_settings))["s1-late"] == [""]  # not reviewed
    assert build.rewrite_stale_nights(web_settings, engine) == []  # nothing changed

    client = client_for("mgr1")
    flag = chain.flags["s1-late"]
    token = csrf_token(client.get(f"/flags/{flag}"))
    response = client.post(
        f"/flags/{flag}/decision", data={"decision": "confirmed_violation", "csrf_token": token}
    )
    assert response.status_code == 302

    build.render_after_audit(web_settings, engine, [])  # the nightly step, no night audited
    assert _review_cells(_store_page(web_settings))["s1-late"] == ["confirmed_violation"]
    as_of = read(_store_page(web_settings)).find("p", id="reviews-as-of")
    assert datetime.fromisoformat(as_of.attrs["data-reviews-as-of"]) > written
    assert _store_page(web_settings, "S2").read_text() == s2_before  # its reviews did not change
    assert build.rewrite_stale_nights(web_settings, engine) == []  # up to date now


def test_a_purge_writes_again_the_pages_that_showed_a_face_it_removed(
    engine: Engine, web_settings: Settings, chain: Made
) -> None:
    from auditor.retention import purge, rewrite_purged_pages

    written = datetime.now(UTC)  # after the chain was audited
    build.write_night_reports(engine=engine, settings=web_settings, day=DAY, now=written)
    page = _store_page(web_settings)
    assert "data:image/jpeg;base64," in page.read_text()

    dry = purge(
        settings=web_settings, engine=engine, now=written + timedelta(days=3650), dry_run=True
    )
    rewrite_purged_pages(web_settings, engine, dry)
    assert "data:image/jpeg;base64," in page.read_text()  # a dry run changes no page

    summary = purge(settings=web_settings, engine=engine, now=written + timedelta(days=3650))
    assert summary.flags_evidence_purged > 0
    rewrite_purged_pages(web_settings, engine, summary)
    assert "data:image/jpeg;base64," not in page.read_text()
    assert build.rewrite_stale_nights(web_settings, engine) == []  # up to date now
