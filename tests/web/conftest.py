"""Fixtures for the review app: settings with a session key, two stores' audited nights with
evidence, one user of each role, the app and a logged-in test client."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from auditor import users
from auditor.settings import Settings
from auditor.web import create_app
from tests.factories import make_settings
from tests.review_data import PASSWORD, ChainBuilder, Made

SECRET = "test-secret-key-" + "x" * 32
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture(autouse=True)
def _fast_password_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2id with tiny costs: the same code, a thousandth of the time."""
    cheap = PasswordHasher(time_cost=1, memory_cost=64, parallelism=1)
    monkeypatch.setattr(users, "_hasher", lambda: cheap)
    monkeypatch.setattr(users, "_dummy_hash", lambda: cheap.hash("dummy password"))


@pytest.fixture
def web_settings(tmp_path: Path, db_url: str) -> Settings:
    return make_settings(
        tmp_path,
        database_url=db_url,
        web={"secret_key": SECRET, "login_attempts": 3, "lockout_minutes": 10},
    )


@pytest.fixture
def chain(engine: Engine, web_settings: Settings) -> Iterator[Made]:
    """S1: two under-age sales (newest first: s1-late, s1-early) and a clean one; S2: one
    under-age sale. Users: mgr1 (S1), mgr2 (S2), lp, analyst, admin."""
    with Session(engine) as session:
        build = ChainBuilder(session, web_settings)
        build.store("S1", "Berlin Mitte")
        build.store("S2", "New York 5th Ave", "America/New_York")
        build.sale("s1-early", datetime(2024, 3, 1, 18, 0, tzinfo=UTC), age=19.4, spread=2.1)
        build.sale("s1-late", datetime(2024, 3, 1, 20, 0, tzinfo=UTC), age=17.0, spread=1.5)
        build.sale("s1-clean", datetime(2024, 3, 1, 19, 0, tzinfo=UTC), age=41.0)
        build.sale("s2-flag", datetime(2024, 3, 1, 22, 0, tzinfo=UTC), store="S2", age=16.2)
        for name, role, store in (
            ("mgr1", "store_manager", "S1"),
            ("mgr2", "store_manager", "S2"),
            ("lp", "loss_prevention", None),
            ("analyst", "analyst", None),
            ("admin", "admin", None),
        ):
            build.user(name, role, store)
        session.commit()
        yield build.made


@pytest.fixture
def app(web_settings: Settings, engine: Engine) -> Flask:
    return create_app(web_settings, engine, TESTING=True)


def csrf_token(response: TestResponse) -> str:
    match = CSRF.search(response.get_data(as_text=True))
    assert match, "no CSRF token in the page"
    return match.group(1)


def login(client: FlaskClient, username: str, password: str = PASSWORD) -> TestResponse:
    token = csrf_token(client.get("/login"))
    return client.post(
        "/login", data={"username": username, "password": password, "csrf_token": token}
    )


@pytest.fixture
def client_for(app: Flask, chain: Made) -> Callable[[str], FlaskClient]:
    """A test client logged in as ``username``."""

    def make(username: str) -> FlaskClient:
        client = app.test_client()
        response = login(client, username)
        assert response.status_code == 302, response.get_data(as_text=True)
        return client

    return make
