"""Accounts (``auditor users``), password hashes, the session key file and the login throttle."""

from __future__ import annotations

import stat
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from auditor.cli import main
from auditor.db.models import AuditLogEntry, LoginFailure, Store, User
from auditor.users import UserError, authenticate, create_user, hash_password
from auditor.web.secret import SECRET_FILE, SecretKeyError, secret_key
from auditor.web.throttle import LoginThrottle
from tests.factories import make_settings

PASSWORD = "a long enough password"


@pytest.fixture
def store(engine: Engine) -> None:
    with Session(engine) as session, session.begin():
        session.add(Store(id="S1", name="Berlin", timezone="Europe/Berlin"))


def invoke(config_file: Path, *args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(main, ["--config", str(config_file), *args], input=input)


def test_users_add_list_disable(
    engine: Engine, store: None, run_cli: Callable[..., Result], config_file: Path
) -> None:
    result = run_cli("users", "add", "anna", "--role", "store_manager", "--store", "S1")
    assert result.exit_code != 0  # the password is asked for twice; no input: aborted
    add = ("users", "add", "anna", "--role", "store_manager", "--store", "S1")
    result = invoke(config_file, *add, input=f"{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert "user anna added (store_manager, store S1)" in result.output
    add = ("users", "add", "bob", "--role", "analyst", "--password-stdin")
    result = invoke(config_file, *add, input=f"{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert run_cli("users", "disable", "bob").exit_code == 0
    listing = run_cli("users", "list").output.splitlines()
    assert listing == ["anna\tstore_manager\tS1\tactive", "bob\tanalyst\t-\tdisabled"]
    with Session(engine) as session:
        anna = session.execute(sa.select(User).where(User.username == "anna")).scalar_one()
        assert anna.password_hash.startswith("$argon2id$")
        assert PASSWORD not in anna.password_hash
        actions = session.execute(sa.select(AuditLogEntry.action)).scalars().all()
    assert actions == ["user_add", "user_add", "user_disable"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--role", "store_manager"], "a store manager needs --store"),
        (
            ["--role", "store_manager", "--store", "S9"],
            "store 'S9' is not in the database (known: S1): ingest its sales first",
        ),
        (["--role", "analyst", "--store", "S1"], "leave out --store"),
    ],
)
def test_users_add_refuses(
    engine: Engine, store: None, config_file: Path, args: list[str], message: str
) -> None:
    add = ("users", "add", "x", *args, "--password-stdin")
    result = invoke(config_file, *add, input=f"{PASSWORD}\n")
    assert result.exit_code == 1
    assert message in result.output


def test_short_password_and_duplicate_name(engine: Engine, store: None) -> None:
    with Session(engine) as session:
        with pytest.raises(UserError, match="at least 10 characters"):
            create_user(session=session, username="a", password="short", role="admin")
        create_user(session=session, username="a", password=PASSWORD, role="admin")
        with pytest.raises(UserError, match="exists already"):
            create_user(session=session, username="a", password=PASSWORD, role="admin")


def test_authenticate(engine: Engine, store: None) -> None:
    with Session(engine) as session:
        create_user(session=session, username="a", password=PASSWORD, role="admin")
        assert authenticate(session=session, username="a", password=PASSWORD) is not None
        assert authenticate(session=session, username="a", password=PASSWORD + "x") is None
        assert authenticate(session=session, username="nobody", password=PASSWORD) is None


def test_hashes_are_salted_argon2id() -> None:
    one, two = hash_password(PASSWORD), hash_password(PASSWORD)
    assert one != two and one.startswith("$argon2id$")


def test_secret_key_is_made_once_and_private(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    key = secret_key(settings)
    path = settings.paths.data_dir / SECRET_FILE
    assert len(key) >= 32 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert secret_key(settings) == key
    path.chmod(0o644)
    with pytest.raises(SecretKeyError, match="others may read it"):
        secret_key(settings)


def test_secret_key_from_settings_is_hidden_in_run_records(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, web={"secret_key": "s" * 40})
    assert secret_key(settings) == "s" * 40
    assert settings.as_json_dict()["web"]["secret_key"] == "**********"


T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


class Clock:
    """A clock the test sets, in seconds after T0."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def __call__(self) -> datetime:
        return T0 + timedelta(seconds=self.seconds)


def test_throttle_locks_for_the_window_after_the_last_failure(engine: Engine) -> None:
    clock = Clock()
    throttle = LoginThrottle(engine, attempts=3, window_s=600, clock=clock)
    for t in (0, 100, 200):
        clock.seconds = t
        assert throttle.locked_for("user:a") == 0
        throttle.failed("user:a", "address:1")
    assert throttle.locked_for("user:a") == 600
    assert throttle.locked_for("user:b") == 0
    clock.seconds = 799
    assert throttle.locked_for("user:a", "address:2") == pytest.approx(1)
    clock.seconds = 800
    assert throttle.locked_for("user:a", "address:1") == 0


def test_throttle_forgets_old_failures_and_a_good_login(engine: Engine) -> None:
    clock = Clock()
    throttle = LoginThrottle(engine, attempts=3, window_s=600, clock=clock)
    throttle.failed("address:old")
    throttle.failed("user:a")
    throttle.failed("user:a")
    clock.seconds = 700  # both older than the window
    throttle.failed("user:a")
    assert throttle.locked_for("user:a") == 0
    throttle.failed("user:a")
    throttle.succeeded("user:a")
    throttle.failed("user:a")
    assert throttle.locked_for("user:a") == 0
    clock.seconds = 1300
    throttle.failed("address:1")
    assert throttle.locked_for("user:a") == 0
    with Session(engine) as session:  # failures older than two windows are deleted
        kept = session.execute(
            sa.select(LoginFailure.key, LoginFailure.failed_at).order_by(LoginFailure.id)
        ).all()
    assert kept == [
        ("user:a", T0 + timedelta(seconds=700)),
        ("address:1", T0 + timedelta(seconds=1300)),
    ]


def test_throttles_of_two_processes_count_the_same_failures(engine: Engine) -> None:
    """Two review-app processes (or one restarted) share the failures in the database."""
    clock = Clock()
    first, second = (LoginThrottle(engine, 3, 600, clock) for _ in range(2))
    first.failed("user:a")
    second.failed("user:a")
    assert first.locked_for("user:a") == 0
    first.failed("user:a")
    assert second.locked_for("user:a") == 600
    assert LoginThrottle(engine, 3, 600, clock).locked_for("user:a") == 600  # a restart
