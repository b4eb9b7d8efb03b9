"""The flag list by risk, on SQLite and PostgreSQL: likely minors first, with their probability,
through the list, its pages, "next" on a flag's page, the CSV download and the evidence log."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from auditor.db.models import AuditRun, Flag
from auditor.settings import Settings
from auditor.vocabulary import FlagKind
from auditor.web import listing
from tests.review_data import ChainBuilder, Made
from tests.web.test_app import Client, log_rows
from tests.web.test_filters import _receipts

NIGHT = datetime(2024, 3, 2, 16, 0, tzinfo=UTC)
# S1's open flags by risk: the two hard violations (by P), P(under 21) highest first, then the
# sales without a probability (the chain's own and a no_frame), newest first.
BY_RISK = ["borrowed", "birth", "minor", "adult", "nf", "s1-late", "s1-early"]
NEWEST = ["nf", "adult", "birth", "borrowed", "minor", "s1-late", "s1-early"]


def risky_night(engine: Engine, settings: Settings, chain: Made) -> Made:
    """Beside the chain's: S1's night of 2 March, audited with the legal age 21, whose till
    records age checks: a minor and an adult without ID checks, a birth date under age, a
    borrowed ID and a sale without a frame."""
    with Session(engine) as session:
        build = ChainBuilder(session, settings, made=chain)
        build.made.runs.clear()

        def sale(
            receipt: str, minutes: int, kinds: tuple[str, ...], p: float | None, **extra: Any
        ) -> int:
            return build.sale(
                receipt,
                NIGHT + timedelta(minutes=minutes),
                kinds=kinds,
                p_under_legal=p,
                legal_age=21,
                **extra,
            )

        sale("minor", 0, (FlagKind.NO_ID_CHECK,), 0.934, age=16.5, age_check="visual")
        sale("borrowed", 60, (FlagKind.ID_CONTRADICTS_FACE,), 0.91, age=17.0,
             birth_date=date(1995, 5, 5), challenged=True)  # fmt: skip
        sale("birth", 120, (FlagKind.BIRTH_DATE_UNDER_AGE,), 0.02, age=30.0,
             age_check="id_scanned", birth_date=date(2006, 1, 1))  # fmt: skip
        sale("adult", 240, (FlagKind.NO_ID_CHECK,), 0.05, age=23.0, age_check="none")
        sale("nf", 300, (FlagKind.NO_FRAME,), None, age=None, frame=False, age_check="none")
        run = session.get(AuditRun, build.made.runs[("S1", NIGHT.date())])
        assert run is not None
        run.settings = {"audit": {"age_threshold": 25}, "rules": {"legal_age": 21}}
        session.commit()
        return build.made


def test_the_list_opens_likely_minors_first_and_shows_their_probability(
    client_for: Client, chain: Made, engine: Engine, web_settings: Settings
) -> None:
    risky_night(engine, web_settings, chain)
    client = client_for("mgr1")
    page = client.get("/flags").get_data(as_text=True)
    assert _receipts(page) == BY_RISK
    assert 'id="risk-order"' in page and "data-group=" not in page  # one table, rows dated
    row = re.search(r'<tr data-sale="\d+" data-receipt="minor".*?</tr>', page, re.S)
    assert row is not None
    assert 'data-field="p_under_legal"' in row.group(0) and "P(&lt;21) 0.93" in row.group(0)
    assert 'data-field="date">2024-03-02<' in row.group(0)
    assert 'class="attention"' in row.group(0)  # no ID check is an under-age flag
    assert '<option value="risk" selected>likely minors first</option>' in page
    # the explicit orders still work, and risk is the default
    assert _receipts(client.get("/flags?sort=newest").get_data(as_text=True)) == NEWEST
    oldest = client.get("/flags?sort=oldest").get_data(as_text=True)
    assert _receipts(oldest) == list(reversed(NEWEST))
    assert _receipts(client.get("/flags?sort=risk").get_data(as_text=True)) == BY_RISK
    # a kind narrows the list and keeps its order
    assert _receipts(client.get("/flags?kind=no_id_check").get_data(as_text=True)) == [
        "minor",
        "adult",
    ]


def test_pages_and_next_follow_the_risk_order(
    client_for: Client, chain: Made, engine: Engine, web_settings: Settings, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    made = risky_night(engine, web_settings, chain)
    monkeypatch.setattr(listing, "PAGE_SIZE", 3)
    client = client_for("mgr1")
    seen = []
    for page_no in (1, 2, 3):
        seen += _receipts(client.get(f"/flags?page={page_no}").get_data(as_text=True))
    assert seen == BY_RISK
    assert "lower risk →" in client.get("/flags").get_data(as_text=True)

    # "next" on a flag's page walks the same order, and "previous" walks it back
    url = f"/flags/{made.flags[BY_RISK[0]]}"
    walked = []
    while True:
        page = client.get(url).get_data(as_text=True)
        receipt = re.search(r"receipt ([\w-]+) ·", page)
        assert receipt is not None
        walked.append(receipt.group(1))
        following = re.search(r'<a href="([^"]+)" rel="next"', page)
        if following is None:
            break
        url = following.group(1).replace("&amp;", "&")
    assert walked == BY_RISK
    back = []
    while True:
        page = client.get(url).get_data(as_text=True)
        back.append(re.search(r"receipt ([\w-]+) ·", page).group(1))  # type: ignore[union-attr]
        previous = re.search(r'<a href="([^"]+)" rel="prev"', page)
        if previous is None:
            break
        url = previous.group(1).replace("&amp;", "&")
    assert back == list(reversed(BY_RISK))


def test_a_flag_page_shows_the_probability_under_its_legal_age(
    client_for: Client, chain: Made, engine: Engine, web_settings: Settings
) -> None:
    made = risky_night(engine, web_settings, chain)
    page = client_for("mgr1").get(f"/flags/{made.flags['minor']}").get_data(as_text=True)
    assert re.search(r'data-figure="p_under_legal"[^>]*>P\(&lt;21\) 0.93<', page)
    assert 'data-figure="legal_age">21<' in page
    old = client_for("mgr1").get(f"/flags/{chain.flags['s1-late']}").get_data(as_text=True)
    assert re.search(r'data-figure="p_under_legal"[^>]*>–<', old)
    assert 'data-figure="legal_age">18<' in old


def test_the_faces_the_list_shows_are_logged_for_every_under_age_kind(
    client_for: Client, chain: Made, engine: Engine, web_settings: Settings
) -> None:
    made = risky_night(engine, web_settings, chain)
    client_for("mgr1").get("/flags")
    (entry,) = log_rows(engine, "view_list")
    shown = set(entry.details["faces"])
    # the crops of every under-age kind (and none for the sale without a frame)
    faces = ("minor", "borrowed", "birth", "adult", "s1-late", "s1-early")
    assert shown == {made.flags[r] for r in faces}


def test_the_download_carries_the_rules_and_the_probabilities(
    client_for: Client, chain: Made, engine: Engine, web_settings: Settings
) -> None:
    risky_night(engine, web_settings, chain)
    with Session(engine) as session:  # the chain's flags were written before stores had rules
        session.execute(sa.update(Flag).where(Flag.legal_age == 18).values(legal_age=None))
        session.commit()
    response = client_for("lp").get("/flags.csv")
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [r["receipt_id"] for r in rows][:4] == ["borrowed", "birth", "minor", "adult"]
    by_receipt = {r["receipt_id"]: r for r in rows}
    minor = by_receipt["minor"]
    assert (minor["legal_age"], minor["age_threshold"]) == ("21", "25")
    assert (minor["p_under_legal"], minor["kind"]) == ("0.934", "no_id_check")
    assert by_receipt["nf"]["p_under_legal"] == "" and by_receipt["nf"]["legal_age"] == "21"
    old = by_receipt["s1-late"]
    assert (old["legal_age"], old["age_threshold"], old["p_under_legal"]) == ("18", "25", "")
