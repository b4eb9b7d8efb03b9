"""Reviewing at a desk's pace: one decision for every open flag of a sale, "record and next"
through the filtered list, decisions on many sales at once, the review state each keeps, the
page's script and its CSP."""

from __future__ import annotations

import re

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from auditor.db.models import Flag, Review, SaleVerdict
from auditor.settings import Settings
from auditor.vocabulary import Decision, FlagKind
from tests.review_data import Made, expected_review_state, review_state
from tests.web.conftest import csrf_token
from tests.web.test_app import Client, log_rows
from tests.web.test_filters import _night, _receipts

NIGHT = "kind=no_frame&date=2024-03-02"


def _reviews(engine: Engine) -> list[tuple[int, str, str]]:
    with Session(engine) as session:
        rows = session.execute(
            sa.select(Review.sale_id, Review.flag_kind, Review.decision).order_by(Review.id)
        )
        return [(r.sale_id, r.flag_kind, r.decision) for r in rows]


def _state_of(engine: Engine, sale_id: int) -> tuple[int, dict[str, str | None]]:
    """The sale's open flags as its verdict keeps them, and each of its flags' current
    decision; after checking that the whole stored state is what the reviews say."""
    with Session(engine) as session:
        assert review_state(session) == expected_review_state(session)
        open_flags = session.execute(
            sa.select(SaleVerdict.open_flags).where(SaleVerdict.sale_id == sale_id)
        ).scalar_one()
        decisions = session.execute(
            sa.select(Flag.kind, Review.decision)
            .outerjoin(Review, Review.id == Flag.review_id)
            .where(Flag.sale_id == sale_id)
        )
        return open_flags, {kind: decision for kind, decision in decisions}


def test_the_stored_review_state_follows_each_decision(
    client_for: Client, chain: Made, engine: Engine, web_settings: Settings
) -> None:
    made = _night(engine, web_settings, chain)
    sale, flag = made.sales["two"], made.flags["two"]  # under_age_threshold, then late
    under, late = FlagKind.UNDER_AGE_THRESHOLD, FlagKind.OUTSIDE_LEGAL_HOURS
    assert _state_of(engine, sale) == (2, {under: None, late: None})
    client = client_for("lp")

    def decide(decision: str, *kinds: str) -> None:
        token = csrf_token(client.get(f"/flags/{flag}"))
        data = {"decision": decision, "cover": list(kinds), "csrf_token": token}
        assert client.post(f"/flags/{flag}/decision", data=data).status_code == 302

    decide(Decision.ADULT, under)
    assert _state_of(engine, sale) == (1, {under: Decision.ADULT, late: None})
    assert "two" in _receipts(client.get("/flags").get_data(as_text=True))  # still open
    decide(Decision.CONFIRMED_VIOLATION, under)  # a revision: the latest is current
    assert _state_of(engine, sale) == (1, {under: Decision.CONFIRMED_VIOLATION, late: None})
    decide(Decision.ID_CHECKED, late)
    assert _state_of(engine, sale) == (
        0,
        {under: Decision.CONFIRMED_VIOLATION, late: Decision.ID_CHECKED},
    )
    assert "two" not in _receipts(client.get("/flags").get_data(as_text=True))
    assert "two" in _receipts(client.get("/flags?status=reviewed").get_data(as_text=True))


def test_one_decision_covers_every_open_flag_of_the_sale(
    client_for: Client, chain: Made, engine: Engine, web_settings: Settings
) -> None:
    made = _night(engine, web_settings, chain)
    client = client_for("mgr1")
    page = client.get(f"/flags/{made.flags['two']}").get_data(as_text=True)
    covers = re.findall(r'name="cover" value="(\w+)"( checked)?', page)
    assert covers == [
        (FlagKind.UNDER_AGE_THRESHOLD, " checked"),
        (FlagKind.OUTSIDE_LEGAL_HOURS, " checked"),
    ]
    response = client.post(
        f"/flags/{made.flags['two']}/decision",
        data={
            "decision": Decision.ID_CHECKED,
            "cover": [FlagKind.UNDER_AGE_THRESHOLD, FlagKind.OUTSIDE_LEGAL_HOURS],
            "csrf_token": csrf_token(client.get("/flags")),
        },
    )
    assert response.status_code == 302
    sale = made.sales["two"]
    assert _reviews(engine) == [
        (sale, FlagKind.UNDER_AGE_THRESHOLD, Decision.ID_CHECKED),
        (sale, FlagKind.OUTSIDE_LEGAL_HOURS, Decision.ID_CHECKED),
    ]
    assert len(log_rows(engine, "review")) == 2
    assert "two" not in _receipts(client.get("/flags").get_data(as_text=True))
    under, late = FlagKind.UNDER_AGE_THRESHOLD, FlagKind.OUTSIDE_LEGAL_HOURS
    assert _state_of(engine, sale) == (0, {under: Decision.ID_CHECKED, late: Decision.ID_CHECKED})


def test_record_and_next_walks_the_filtered_list(
    client_for: Client, chain: Made, engine: Engine, web_settings: Settings
) -> None:
    made = _night(engine, web_settings, chain)
    client = client_for("lp")
    page = client.get(f"/flags?{NIGHT}").get_data(as_text=True)
    first = re.search(r'href="(/flags/\d+\?[^"]+)">review', page)
    assert first is not None
    url = first.group(1).replace("&amp;", "&")
    for i in range(4, -1, -1):
        assert url.startswith(f"/flags/{made.flags[f'nf{i}']}?")
        shown = client.get(url)
        page = shown.get_data(as_text=True)
        assert 'name="kind" value="no_frame"' in page  # the filters travel with the form
        response = client.post(
            url.split("?")[0] + "/decision",
            data={
                "decision": Decision.INVALID_FRAME,
                "then": "next",
                "kind": FlagKind.NO_FRAME,
                "from": "2024-03-02",
                "to": "2024-03-02",
                "csrf_token": csrf_token(shown),
            },
        )
        assert response.status_code == 302
        url = response.headers["Location"]
    assert url == "/flags?from=2024-03-02&to=2024-03-02&kind=no_frame"
    assert "last flagged sale of the list" in client.get(url).get_data(as_text=True)
    assert [d for _, _, d in _reviews(engine)] == [Decision.INVALID_FRAME] * 5


def test_a_flag_page_links_its_neighbours_in_the_list(
    client_for: Client, chain: Made, engine: Engine, web_settings: Settings
) -> None:
    made = _night(engine, web_settings, chain)
    page = client_for("lp").get(f"/flags/{made.flags['nf2']}?{NIGHT}&sort=oldest")
    text = page.get_data(as_text=True)
    query = "from=2024-03-02&amp;to=2024-03-02&amp;kind=no_frame&amp;sort=oldest"
    assert f'href="/flags/{made.flags["nf1"]}?{query}" rel="prev"' in text
    assert f'href="/flags/{made.flags["nf3"]}?{query}" rel="next"' in text


def test_decisions_on_many_sales(
    client_for: Client, chain: Made, engine: Engine, web_settings: Settings
) -> None:
    made = _night(engine, web_settings, chain)
    client = client_for("lp")
    token = csrf_token(client.get(f"/flags?{NIGHT}"))
    base = {"kind": "no_frame", "from": "2024-03-02", "to": "2024-03-02"}
    ticked = [str(made.sales["nf0"]), str(made.sales["nf1"]), str(made.sales["s1-late"])]
    response = client.post(
        "/flags/decisions",
        data={**base, "decision": Decision.INVALID_FRAME, "sale": ticked, "csrf_token": token},
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/flags?from=2024-03-02&to=2024-03-02&kind=no_frame"
    assert {s for s, _, _ in _reviews(engine)} == {made.sales["nf0"], made.sales["nf1"]}
    assert _state_of(engine, made.sales["nf1"]) == (0, {FlagKind.NO_FRAME: Decision.INVALID_FRAME})
    assert _state_of(engine, made.sales["nf2"]) == (1, {FlagKind.NO_FRAME: None})
    data = {**base, "decision": Decision.INVALID_FRAME, "every": "1", "csrf_token": token}
    assert client.post("/flags/decisions", data=data).status_code == 302
    reviews = _reviews(engine)
    assert sorted(s for s, _, _ in reviews) == sorted(made.sales[f"nf{i}"] for i in range(5))
    assert {(k, d) for _, k, d in reviews} == {(FlagKind.NO_FRAME, Decision.INVALID_FRAME)}
    assert len(log_rows(engine, "review")) == 5
    assert len(log_rows(engine, "bulk_review")) == 2
    page = client.get(f"/flags?{NIGHT}").get_data(as_text=True)
    assert _receipts(page) == []
    for i in range(5):
        decided = {FlagKind.NO_FRAME: Decision.INVALID_FRAME}
        assert _state_of(engine, made.sales[f"nf{i}"]) == (0, decided)


def test_decisions_on_many_sales_stay_in_scope_and_need_the_token(
    client_for: Client, chain: Made, engine: Engine, web_settings: Settings
) -> None:
    made = _night(engine, web_settings, chain)
    client = client_for("mgr2")
    sales = [str(s) for s in made.sales.values()]
    data = {"decision": Decision.ADULT, "sale": sales, "status": "all"}
    assert client.post("/flags/decisions", data=data).status_code == 400  # no CSRF token
    token = csrf_token(client.get("/flags"))
    response = client.post("/flags/decisions", data={**data, "csrf_token": token})
    assert response.status_code == 302
    assert _reviews(engine) == [
        (made.sales["s2-flag"], FlagKind.UNDER_AGE_THRESHOLD, Decision.ADULT)
    ]
    bad = {**data, "decision": "maybe", "csrf_token": token}
    assert client.post("/flags/decisions", data=bad).status_code == 400


def test_the_pages_script_is_named_by_the_policys_nonce(client_for: Client, chain: Made) -> None:
    client = client_for("lp")
    for url in ("/flags", f"/flags/{chain.flags['s1-late']}"):
        response = client.get(url)
        policy = response.headers["Content-Security-Policy"]
        assert "default-src 'none'" in policy
        nonces = re.findall(r'<script nonce="([^"]+)">', response.get_data(as_text=True))
        assert len(nonces) == 1 and f"script-src 'nonce-{nonces[0]}'" in policy
        assert response.get_data(as_text=True).count("<script") == 1
    again = client.get("/flags").headers["Content-Security-Policy"]
    assert again != policy and "script-src" in again
    assert "script-src" not in client.get("/login").headers["Content-Security-Policy"]
