"""The audit log an auditor can use: filters by user, action, store, flag and dates, readable
action names, times in the chain's zone, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from auditor.db.models import AuditLogEntry
from auditor.vocabulary import AuditAction, Decision
from tests.review_data import Made
from tests.web.conftest import csrf_token
from tests.web.test_app import Client


def _rows(page: str) -> list[tuple[str, str, str]]:
    """(actor, action label, object) of each row of the log's table."""
    return re.findall(
        r'data-field="actor">([^<]*)</td><td data-field="action">([^<]*)</td>'
        r'<td data-field="object">([^<]*)</td>',
        page,
    )


@pytest.fixture
def activity(client_for: Client, chain: Made, engine: Engine) -> Made:
    """mgr1 lists S1's flags, opens s1-late and decides it; mgr2 lists S2's; lp downloads."""
    mgr1 = client_for("mgr1")
    mgr1.get("/flags")
    flag = chain.flags["s1-late"]
    token = csrf_token(mgr1.get(f"/flags/{flag}"))
    response = mgr1.post(f"/flags/{flag}/decision", data={"decision": "adult", "csrf_token": token})
    assert response.status_code == 302
    client_for("mgr2").get("/flags")
    client_for("lp").get("/flags.csv?store=S2")
    return chain


def test_filters_by_user_action_store_and_flag(
    client_for: Client, activity: Made, engine: Engine
) -> None:
    admin = client_for("admin")
    page = admin.get("/audit-log?user=mgr1").get_data(as_text=True)
    assert {actor for actor, _, _ in _rows(page)} == {"mgr1"}
    assert AuditAction.VIEW_LIST.label in page and AuditAction.REVIEW.label in page

    page = admin.get("/audit-log?action=review").get_data(as_text=True)
    flag = activity.flags["s1-late"]
    assert _rows(page) == [("mgr1", AuditAction.REVIEW.label, f"flag {flag}")]
    assert f"decision: {Decision.ADULT.label}" in page  # details in the same words
    # the select offers every action by its label
    assert f'<option value="review" selected>{AuditAction.REVIEW.label}</option>' in page

    page = admin.get("/audit-log?store=S2").get_data(as_text=True)
    assert {(actor, action) for actor, action, _ in _rows(page)} == {
        ("mgr2", AuditAction.VIEW_LIST.label),
        ("lp", AuditAction.DOWNLOAD_FLAGS.label),
    }
    page = admin.get("/audit-log?store=S1").get_data(as_text=True)
    s1 = {(actor, action) for actor, action, _ in _rows(page)}
    assert ("mgr1", AuditAction.VIEW_LIST.label) in s1
    assert ("mgr1", AuditAction.VIEW_FLAG.label) in s1
    assert ("mgr1", AuditAction.REVIEW.label) in s1
    assert not any(actor in ("mgr2", "lp") for actor, _ in s1)

    # a flag's rows: its page, its images, its decision and the list page that showed it
    page = admin.get(f"/audit-log?flag={flag}").get_data(as_text=True)
    actions = sorted(action for _, action, _ in _rows(page))
    assert actions == sorted(
        [
            AuditAction.VIEW_LIST.label,
            AuditAction.VIEW_FLAG.label,
            AuditAction.REVIEW.label,
        ]
    )
    other = activity.flags["s2-flag"]
    page = admin.get(f"/audit-log?flag={other}&user=mgr2").get_data(as_text=True)
    assert [action for _, action, _ in _rows(page)] == [AuditAction.VIEW_LIST.label]

    # combined, and kept in the pager's links
    page = admin.get("/audit-log?user=mgr1&action=view_list&store=S1").get_data(as_text=True)
    assert _rows(page) == [("mgr1", AuditAction.VIEW_LIST.label, "flag_list 1")]


def test_dates_and_times_are_the_chains_zone(
    client_for: Client, chain: Made, engine: Engine
) -> None:
    # 23:30 UTC on 1 March is 00:30 on 2 March in Berlin (the chain's zone)
    with Session(engine) as session, session.begin():
        for at, actor in (
            (datetime(2024, 3, 1, 22, 30, tzinfo=UTC), "late"),
            (datetime(2024, 3, 1, 23, 30, tzinfo=UTC), "after-midnight"),
        ):
            session.add(
                AuditLogEntry(
                    at=at, actor=actor, action="login", object_type="user", object_id=actor
                )
            )
    admin = client_for("admin")
    page = admin.get("/audit-log?from=2024-03-02&to=2024-03-02").get_data(as_text=True)
    assert [actor for actor, _, _ in _rows(page)] == ["after-midnight"]
    assert "2024-03-02 00:30:00 CET" in page and "when (Europe/Berlin)" in page
    page = admin.get("/audit-log?to=2024-03-01").get_data(as_text=True)
    assert [actor for actor, _, _ in _rows(page)] == ["late"]
    assert "2024-03-01 23:30:00 CET" in page


def test_paging_keeps_the_filters(client_for: Client, chain: Made, engine: Engine) -> None:
    with Session(engine) as session, session.begin():
        session.add_all(
            AuditLogEntry(actor="bot", action="login_failed", object_type="user", object_id="x")
            for _ in range(105)
        )
    admin = client_for("admin")
    page = admin.get("/audit-log?user=bot&action=login_failed").get_data(as_text=True)
    assert len(_rows(page)) == 100
    assert re.search(r'href="/audit-log\?[^"]*page=2[^"]*"', page)
    link = re.search(r'href="(/audit-log\?[^"]*page=2[^"]*)"', page)
    assert link and "user=bot" in link.group(1) and "action=login_failed" in link.group(1)
    second = admin.get(link.group(1).replace("&amp;", "&")).get_data(as_text=True)
    assert len(_rows(second)) == 5


def test_bad_filter_values_are_dropped(client_for: Client, chain: Made) -> None:
    admin = client_for("admin")
    for query in ("flag=abc", "flag=99999999999999999999999", "from=2024-13-01", "store=\x00"):
        assert admin.get(f"/audit-log?{query}").status_code == 200


def test_the_bulk_decision_row_names_its_store_and_flags(
    client_for: Client, chain: Made, engine: Engine
) -> None:
    lp = client_for("lp")
    token = csrf_token(lp.get("/flags"))
    response = lp.post(
        "/flags/decisions",
        data={"csrf_token": token, "every": "1", "decision": "adult", "store": "S1"},
    )
    assert response.status_code == 302
    with Session(engine) as session:
        (row,) = session.execute(
            sa.select(AuditLogEntry).where(AuditLogEntry.action == "bulk_review")
        ).scalars()
    assert row.details["store_ids"] == ["S1"]
    page = client_for("admin").get(
        f"/audit-log?store=S1&action=bulk_review&flag={chain.flags['s1-early']}"
    )
    assert [a for _, a, _ in _rows(page.get_data(as_text=True))] == [AuditAction.BULK_REVIEW.label]
