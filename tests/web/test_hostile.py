"""Requests an attacker or a careless client sends: replayed cookies after logout or a password
change, and parameters that are too large, malformed or carry a newline. None may see a 500."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from auditor import users
from tests.review_data import PASSWORD, Made
from tests.web.conftest import csrf_token, login

ROUTES = (
    "/flags",
    "/flags.csv",
    "/flags/{id}",
    "/flags/{id}/face.jpg",
    "/flags/{id}/frame.jpg",
    "/audit-log",
    "/analytics/threshold",
    "/login",
)


def saved_cookie(client: FlaskClient) -> str:
    cookie = client.get_cookie("auditor_session")
    assert cookie is not None
    return cookie.value


def replay(app: Flask, value: str) -> FlaskClient:
    """A new client that presents a session cookie saved earlier."""
    other = app.test_client()
    other.set_cookie("auditor_session", value)
    return other


def test_a_cookie_saved_before_logout_opens_nothing(app: Flask, chain: Made) -> None:
    client = app.test_client()
    assert login(client, "mgr1").status_code == 302
    saved = saved_cookie(client)
    assert replay(app, saved).get("/flags").status_code == 200  # the copy works while logged in
    client.post("/logout", data={"csrf_token": csrf_token(client.get("/flags"))})
    response = replay(app, saved).get("/flags")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_a_password_change_or_disabling_ends_every_session(
    app: Flask, chain: Made, engine: Engine
) -> None:
    first, second = app.test_client(), app.test_client()
    for client in (first, second):
        assert login(client, "lp").status_code == 302
    with Session(engine) as session:
        users.set_password(session=session, username="lp", password="another password 1")
        session.commit()
    for client in (first, second):
        assert client.get("/flags").status_code == 302
    assert login(first, "lp", "another password 1").status_code == 302
    assert first.get("/flags").status_code == 200
    with Session(engine) as session:
        users.set_active(session=session, username="lp", active=False)
        users.set_active(session=session, username="lp", active=True)
        session.commit()
    assert first.get("/flags").status_code == 302  # enabling again does not revive the login


def test_a_logout_ends_only_its_own_session(app: Flask, chain: Made) -> None:
    office, phone = app.test_client(), app.test_client()
    for client in (office, phone):
        assert login(client, "mgr1").status_code == 302
    office.post("/logout", data={"csrf_token": csrf_token(office.get("/flags"))})
    assert office.get("/flags").status_code == 302
    assert phone.get("/flags").status_code == 200


def test_huge_pages_and_ids_are_clamped_or_not_found(client_for) -> None:
    admin = client_for("admin")
    for path in (
        "/flags?page=99999999999999999999",
        "/audit-log?page=99999999999999999999",
        "/flags?page=-5",
        "/flags?page=abc",
        "/analytics/threshold?nights=9" + "9" * 30,
    ):
        response = admin.get(path)
        assert response.status_code == 200, path
    assert admin.get("/flags/99999999999999999999").status_code == 404
    assert admin.get("/flags/9223372036854775807").status_code == 404


def test_a_newline_in_next_does_not_reach_the_redirect(app: Flask, chain: Made) -> None:
    client = app.test_client()
    token = csrf_token(client.get("/login"))
    response = client.post(
        "/login?next=/flags%0D%0ASet-Cookie:%20evil=1",
        data={"username": "mgr1", "password": PASSWORD, "csrf_token": token},
    )
    assert response.status_code in (302, 401)
    assert "evil" not in str(response.headers)


@st.composite
def odd_values(draw) -> str:
    return draw(
        st.one_of(
            st.integers(min_value=-(2**80), max_value=2**80).map(str),
            st.text(max_size=30),
            st.sampled_from(["", "0", "1e9", "//evil.example", "/flags\r\nX: y", "%00", "🙂"]),
        )
    )


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_no_parameter_gives_a_server_error(client_for, data) -> None:
    admin = client_for("admin")
    route = data.draw(st.sampled_from(ROUTES))
    flag_id = data.draw(st.integers(min_value=-(2**70), max_value=2**70))
    params = {
        name: data.draw(odd_values())
        for name in data.draw(
            st.sets(
                st.sampled_from(
                    ["page", "next", "status", "store", "nights", "action"]
                    + ["from", "to", "date", "cashier", "register", "kind", "sort"]
                ),
                max_size=4,
            )
        )
    }
    response = admin.get(route.format(id=flag_id), query_string=params)
    assert response.status_code < 500, (route, flag_id, params)
