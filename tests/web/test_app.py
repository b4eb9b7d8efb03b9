"""The review app through Flask's test client: roles, store scope, CSRF, throttling, the audit
log, decisions and their history, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from auditor.db.models import AuditLogEntry, AuditRun, Flag, Review
from auditor.reports.render import sentence
from auditor.settings import Settings
from auditor.vocabulary import NOT_REVIEWED, Decision, FlagKind, ReviewFilter
from auditor.web import create_app
from tests.review_data import Made
from tests.web.conftest import csrf_token, login

Client = Callable[[str], FlaskClient]


def log_rows(engine: Engine, action: str | None = None) -> list[AuditLogEntry]:
    with Session(engine) as session:
        query = sa.select(AuditLogEntry).order_by(AuditLogEntry.id)
        if action is not None:
            query = query.where(AuditLogEntry.action == action)
        return list(session.execute(query).scalars())


def test_pages_need_a_login(app: Flask, chain: Made) -> None:
    client = app.test_client()
    flag = chain.flags["s1-late"]
    for url in ("/flags", f"/flags/{flag}", f"/flags/{flag}/face.jpg", "/analytics/threshold"):
        response = client.get(url)
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/login?next=")


def test_manager_sees_own_store_newest_first(client_for: Client, chain: Made) -> None:
    page = client_for("mgr1").get("/flags").get_data(as_text=True)
    assert page.index('data-receipt="s1-late"') < page.index('data-receipt="s1-early"')
    assert "s2-flag" not in page and "s1-clean" not in page
    assert "open (2)" in page


def test_loss_prevention_sees_every_store(client_for: Client, chain: Made) -> None:
    page = client_for("lp").get("/flags").get_data(as_text=True)
    assert "s2-flag" in page and "s1-late" in page


@pytest.mark.parametrize("suffix", ["", "/face.jpg", "/frame.jpg"])
def test_another_stores_flag_is_not_found(
    client_for: Client, chain: Made, engine: Engine, suffix: str
) -> None:
    client = client_for("mgr2")
    response = client.get(f"/flags/{chain.flags['s1-late']}{suffix}")
    assert response.status_code == 404
    assert b"\xff\xd8" not in response.data  # no JPEG
    assert "s1-late" not in response.get_data(as_text=True)
    token = csrf_token(client.get("/flags"))
    response = client.post(
        f"/flags/{chain.flags['s1-late']}/decision",
        data={"decision": "adult", "csrf_token": token},
    )
    assert response.status_code == 404
    seen = {r.object_id for r in log_rows(engine) if r.action in ("view_evidence", "review")}
    assert str(chain.flags["s1-late"]) not in seen


def test_unknown_flag_is_not_found(client_for: Client, chain: Made) -> None:
    assert client_for("admin").get("/flags/999999").status_code == 404


@pytest.mark.parametrize("suffix", ["", "/face.jpg", "/frame.jpg"])
def test_analyst_sees_no_evidence(client_for: Client, chain: Made, suffix: str) -> None:
    client = client_for("analyst")
    assert client.get(f"/flags/{chain.flags['s1-late']}{suffix}").status_code == 403
    assert client.get("/flags").status_code == 403


@pytest.mark.parametrize(
    ("user", "flags", "analytics", "audit_log"),
    [
        ("mgr1", 200, 403, 403),
        ("lp", 200, 200, 403),
        ("analyst", 403, 200, 403),
        ("admin", 200, 200, 200),
    ],
)
def test_role_rights(
    client_for: Client, user: str, flags: int, analytics: int, audit_log: int
) -> None:
    client = client_for(user)
    assert client.get("/flags").status_code == flags
    assert client.get("/analytics/threshold").status_code == analytics
    assert client.get("/audit-log").status_code == audit_log


def test_flag_page_shows_evidence_and_logs_each_view(
    client_for: Client, chain: Made, engine: Engine
) -> None:
    client = client_for("mgr1")
    flag = chain.flags["s1-late"]
    page = client.get(f"/flags/{flag}")
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "17.0 ± 1.5" in text and "Pils 0.5 l" in text and "Anna Example" in text
    assert f"/flags/{flag}/face.jpg" in text and f"/flags/{flag}/frame.jpg" in text
    assert page.headers["Cache-Control"] == "no-store"
    for kind in ("face", "frame"):
        image = client.get(f"/flags/{flag}/{kind}.jpg")
        assert image.status_code == 200 and image.mimetype == "image/jpeg"
        assert image.data.startswith(b"\xff\xd8")
        assert "no-store" in image.headers["Cache-Control"]
    views = [
        (r.actor, r.action, r.object_id, (r.details or {}).get("image")) for r in log_rows(engine)
    ]
    assert ("mgr1", "view_flag", str(flag), None) in views
    assert ("mgr1", "view_evidence", str(flag), "face") in views
    assert ("mgr1", "view_evidence", str(flag), "frame") in views


def test_a_list_page_is_one_log_row_naming_its_flags_and_faces(
    client_for: Client, chain: Made, engine: Engine
) -> None:
    client_for("mgr1").get("/flags?sort=newest")
    assert log_rows(engine, "view_evidence") == []  # not a row per thumbnail
    (row,) = log_rows(engine, "view_list")
    shown = [chain.flags["s1-late"], chain.flags["s1-early"]]
    assert (row.actor, row.object_type, row.object_id) == ("mgr1", "flag_list", "1")
    assert row.details["faces"] == shown and sorted(row.details["flags"]) == sorted(shown)
    assert row.details["sales"] == 2 and row.details["store_ids"] == ["S1"]
    assert row.details["filters"] == {"sort": "newest"}


def test_decision_revision_and_history(client_for: Client, chain: Made, engine: Engine) -> None:
    client = client_for("mgr1")
    flag = chain.flags["s1-late"]
    token = csrf_token(client.get(f"/flags/{flag}"))
    response = client.post(
        f"/flags/{flag}/decision",
        data={"decision": "id_checked", "comment": "card shown", "csrf_token": token},
    )
    assert response.status_code == 302 and response.headers["Location"] == "/flags"
    listing = client.get("/flags").get_data(as_text=True)
    assert "ID was checked" in listing  # the message
    assert 'data-receipt="s1-late"' not in listing  # no longer open
    reviewed = client.get("/flags?status=reviewed").get_data(as_text=True)
    assert 'data-receipt="s1-late"' in reviewed and 'data-decision="id_checked"' in reviewed

    response = client.post(
        f"/flags/{flag}/decision",
        data={"decision": "confirmed_violation", "comment": "video", "csrf_token": token},
    )
    assert response.status_code == 302
    page = client.get(f"/flags/{flag}").get_data(as_text=True)
    history = page[page.index('id="history"') :]
    assert history.index("confirmed violation") < history.index("ID was checked")
    with Session(engine) as session:
        reviews = session.execute(sa.select(Review).order_by(Review.id)).scalars().all()
    assert [(r.decision, r.comment, r.flag_kind) for r in reviews] == [
        ("id_checked", "card shown", "under_age_threshold"),
        ("confirmed_violation", "video", "under_age_threshold"),
    ]
    decided = [(r.actor, r.object_id, r.details["decision"]) for r in log_rows(engine, "review")]
    assert decided == [
        ("mgr1", str(flag), "id_checked"),
        ("mgr1", str(flag), "confirmed_violation"),
    ]


def audit_again(engine: Engine, chain: Made, still_flagged: set[str]) -> dict[str, int]:
    """What a new audit of store S1's night writes: the old run replaced, a new run whose flags
    are those of ``still_flagged`` (receipt ids) under new ids. Returns receipt -> new flag id."""
    with Session(engine) as session:
        old_run = session.get(AuditRun, chain.runs["S1", date(2024, 3, 1)])
        assert old_run is not None
        old_run.status = "replaced"
        run = AuditRun(
            **{c: getattr(old_run, c) for c in ("store_id", "business_date", "settings")},
            status="succeeded",
            started_at=old_run.started_at,
            finished_at=old_run.finished_at,
            model_version="test-model",
            sales_audited=3,
            flags_count=len(still_flagged),
        )
        session.add(run)
        session.flush()
        new_ids = {}
        for receipt in sorted(still_flagged):
            old = session.get(Flag, chain.flags[receipt])
            assert old is not None
            columns = ("sale_id", "kind", "snapshot_id", "threshold", "age", "spread", "face_crop")
            flag = Flag(run_id=run.id, **{c: getattr(old, c) for c in columns})
            session.add(flag)
            session.flush()
            new_ids[receipt] = flag.id
        session.commit()
    return new_ids


def test_a_link_to_a_flag_leads_to_the_new_flag_after_the_night_is_audited_again(
    client_for: Client, chain: Made, engine: Engine
) -> None:
    client = client_for("mgr1")
    old_late, old_early = chain.flags["s1-late"], chain.flags["s1-early"]
    token = csrf_token(client.get(f"/flags/{old_late}"))  # a page opened before the new audit
    new_ids = audit_again(engine, chain, still_flagged={"s1-late"})
    new_late = new_ids["s1-late"]
    assert new_late != old_late

    response = client.get(f"/flags/{old_late}")
    assert response.status_code == 302 and response.headers["Location"] == f"/flags/{new_late}"
    page = client.get(f"/flags/{new_late}").get_data(as_text=True)
    assert "s1-late" in page

    gone = client.get(f"/flags/{old_early}")  # the new audit does not flag s1-early
    assert gone.status_code == 404
    assert "audited again" in gone.get_data(as_text=True)
    for suffix in ("/face.jpg", "/frame.jpg"):  # the old run's evidence is not served
        assert client.get(f"/flags/{old_late}{suffix}").status_code == 404

    # a decision sent from the page opened before: not recorded, sent to the new flag
    response = client.post(
        f"/flags/{old_late}/decision", data={"decision": "adult", "csrf_token": token}
    )
    assert response.status_code == 302 and response.headers["Location"] == f"/flags/{new_late}"
    page = client.get(f"/flags/{new_late}").get_data(as_text=True)
    assert "Not recorded: the night was audited again" in page
    with Session(engine) as session:
        assert session.execute(sa.select(Review)).first() is None

    # another store's manager learns nothing from the old ids
    other = client_for("mgr2")
    for flag_id in (old_late, old_early):
        response = other.get(f"/flags/{flag_id}")
        assert response.status_code == 404
        assert "audited again" not in response.get_data(as_text=True)


def test_bad_decision_is_refused(client_for: Client, chain: Made) -> None:
    client = client_for("mgr1")
    flag = chain.flags["s1-late"]
    token = csrf_token(client.get(f"/flags/{flag}"))
    response = client.post(
        f"/flags/{flag}/decision", data={"decision": "whatever", "csrf_token": token}
    )
    assert response.status_code == 400


@pytest.mark.parametrize("token", [None, "forged-token"])
def test_post_without_a_valid_csrf_token_is_refused(
    client_for: Client, chain: Made, engine: Engine, token: str | None
) -> None:
    client = client_for("mgr1")
    data = {"decision": "adult"} | ({"csrf_token": token} if token else {})
    response = client.post(f"/flags/{chain.flags['s1-late']}/decision", data=data)
    assert response.status_code == 400
    assert log_rows(engine, "review") == []
    with Session(engine) as session:
        assert session.execute(sa.select(sa.func.count()).select_from(Review)).scalar() == 0


def test_login_needs_a_csrf_token(app: Flask, chain: Made) -> None:
    response = app.test_client().post("/login", data={"username": "mgr1", "password": "x"})
    assert response.status_code == 400


def test_login_and_logout_are_logged(app: Flask, chain: Made, engine: Engine) -> None:
    client = app.test_client()
    assert login(client, "mgr1").status_code == 302
    token = csrf_token(client.get("/flags"))
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/flags").status_code == 302  # logged out
    actions = [(r.action, r.actor) for r in log_rows(engine) if r.object_type == "user"]
    assert actions == [("login", "mgr1"), ("logout", "mgr1")]


def test_session_cookie_flags(app: Flask, chain: Made) -> None:
    client = app.test_client()
    cookie = login(client, "mgr1").headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def client_from(app: Flask, address: str) -> FlaskClient:
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def test_wrong_passwords_lock_the_user_out(app: Flask, chain: Made, engine: Engine) -> None:
    client = app.test_client()
    for _ in range(3):  # login_attempts = 3
        assert login(client, "mgr1", "wrong password!").status_code == 401
    response = login(client, "mgr1")  # the right password, too late
    assert response.status_code == 429
    text = response.get_data(as_text=True)  # three failures of one name from one address
    assert "Too many failed logins for this user name and from this address." in text
    other = client_from(app, "10.0.0.9")
    refused = login(other, "mgr1")
    assert refused.status_code == 429  # by user name, from any address
    assert "Too many failed logins for this user name. Try again in 10 minutes" in (
        refused.get_data(as_text=True)
    )
    assert login(other, "lp").status_code == 302  # other users are not locked
    actions = [r.action for r in log_rows(engine) if r.object_id == "mgr1"]
    assert actions == ["login_failed"] * 3 + ["login_refused"] * 2


def test_wrong_passwords_lock_the_address_out(app: Flask, chain: Made) -> None:
    client = client_from(app, "10.0.0.7")
    for name in ("nobody", "mgr1", "lp"):
        assert login(client, name, "wrong password!").status_code == 401
    refused = login(client, "admin")
    assert refused.status_code == 429
    assert "Too many failed logins from this address." in refused.get_data(as_text=True)
    assert "user name" not in refused.get_data(as_text=True).split("data-error>")[1][:80]
    elsewhere = client_from(app, "10.0.0.8")
    assert login(elsewhere, "admin").status_code == 302


def test_disabled_user_is_logged_out(client_for: Client, chain: Made, engine: Engine) -> None:
    from auditor.users import set_active

    client = client_for("mgr1")
    with Session(engine) as session, session.begin():
        set_active(session=session, username="mgr1", active=False)
    assert client.get("/flags").status_code == 302


def test_next_only_goes_to_this_app(app: Flask, chain: Made) -> None:
    client = app.test_client()
    token = csrf_token(client.get("/login"))
    data = {"username": "mgr1", "password": "correct horse battery", "csrf_token": token}
    response = client.post("/login?next=//evil.example/", data=data)
    assert response.headers["Location"] == "/flags"


def test_security_headers(app: Flask, chain: Made) -> None:
    response = app.test_client().get("/login")
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Cache-Control"] == "no-store"


def forwarded_client(app: Flask, forwarded_for: str) -> FlaskClient:
    """Requests that reach the app from a proxy at 10.0.0.1 on behalf of ``forwarded_for``."""
    client = client_from(app, "10.0.0.1")
    client.environ_base["HTTP_X_FORWARDED_FOR"] = forwarded_for
    client.environ_base["HTTP_X_FORWARDED_PROTO"] = "https"
    return client


def test_behind_a_proxy_the_throttle_and_the_log_see_the_client(
    web_settings: Settings, engine: Engine, chain: Made
) -> None:
    web = web_settings.web.model_copy(update={"proxies": 1})
    app = create_app(web_settings.model_copy(update={"web": web}), engine=engine)
    attacker = forwarded_client(app, "203.0.113.7")
    for name in ("nobody", "mgr1", "lp"):
        assert login(attacker, name, "wrong password!").status_code == 401
    assert login(attacker, "admin").status_code == 429  # that client is locked out
    # another client behind the same proxy is not
    assert login(forwarded_client(app, "198.51.100.4"), "admin").status_code == 302
    failed = {r.details["address"] for r in log_rows(engine, "login_failed")}
    assert failed == {"203.0.113.7"}


def test_without_proxies_a_forwarded_address_is_not_believed(app: Flask, chain: Made) -> None:
    for forged in ("203.0.113.1", "203.0.113.2", "203.0.113.3"):
        assert login(forwarded_client(app, forged), "nobody", "wrong password!").status_code == 401
    # every forged header came from 10.0.0.1, which is now locked out
    assert login(forwarded_client(app, "203.0.113.9"), "admin").status_code == 429


def test_the_review_app_shows_the_vocabularys_labels(client_for: Client, chain: Made) -> None:
    client = client_for("mgr1")
    page = client.get(f"/flags/{chain.flags['s1-late']}").get_data(as_text=True)
    start = page.index('id="decision"')
    form = page[start : page.index("</form>", start)]
    offered = re.findall(r'value="(\w+)" required> (.+?)</label>', form)
    assert offered == [(d.value, sentence(d.label)) for d in Decision]
    assert f'<span class="tag open">{NOT_REVIEWED}</span>' in page
    assert sentence(FlagKind.UNDER_AGE_THRESHOLD.label) in page
    tabs = re.findall(r'data-status="(\w+)">(\w+) \(', client.get("/flags").get_data(as_text=True))
    assert tabs == [(f.value, f.label) for f in ReviewFilter]
