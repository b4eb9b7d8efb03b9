"""The summary's e-mail over an encrypted, authenticated SMTP connection: a real local server
(aiosmtpd) that requires STARTTLS and a login, or speaks TLS from the start, with a
self-signed certificate made for the test and trusted the way a deployment trusts its CA
(``SSL_CERT_FILE``); the password only in ``AUDITOR_NOTIFY__SMTP_PASSWORD``. A wrong password
or an untrusted certificate fails the send, which is kept for the next night."""

from __future__ import annotations

import email
import email.policy
import logging
import shutil
import socket
import ssl
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from auditor.audit.summary import RunSummary
from auditor.db.models import Notification
from auditor.notify.step import summarise_and_send
from auditor.settings import Settings
from tests.factories import STORES, make_settings

NIGHT = date(2024, 3, 1)
USER, PASSWORD = "auditor", "s3cret-Pa55word"
PASSWORD_VARIABLE = "AUDITOR_NOTIFY__SMTP_PASSWORD"
# S1's audit failed: the night still has a chain summary (to loss prevention) and S1's (to its
# manager), without any sale in the database.
SUMMARIES = [RunSummary("S1", NIGHT, "failed", error="OSError: snapshot share not mounted")]
CHAIN_SUBJECT = "Demo chain, 2024-03-01: 0 under-age flagged sales, 0 open; 1 audit failed"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Certificate:
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    """A self-signed certificate for 127.0.0.1 and localhost, made by the openssl tool."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command-line tool is not installed")
    folder = tmp_path_factory.mktemp("tls")
    made = Certificate(folder / "cert.pem", folder / "key.pem")
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout",
            str(made.key),
            "-out",
            str(made.cert),
        ],
        check=True,
        capture_output=True,
    )
    return made


@pytest.fixture
def trusted(certificate: Certificate, monkeypatch: pytest.MonkeyPatch) -> Certificate:
    """The certificate trusted as a CA of the machine: OpenSSL's default verify paths, which
    ``ssl.create_default_context()`` loads, honour SSL_CERT_FILE."""
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate.cert))
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    return certificate


class Inbox:
    """What the SMTP server received, one parsed message per recipient with the login of the
    session it came in; and the logins it was offered. Mail from a session that did not log in
    is refused."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, str, EmailMessage]] = []
        self.logins: list[tuple[str, bool]] = []  # (user, accepted)
        self.encrypted: list[bool] = []

    def authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        user, password = auth_data.login.decode(), auth_data.password.decode()
        ok = (user, password) == (USER, PASSWORD)
        self.logins.append((user, ok))
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if not session.authenticated:
            return "530 5.7.0 Authentication required"
        self.encrypted.append(server.transport.get_extra_info("ssl_object") is not None)
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        login = session.auth_data.login.decode()
        for rcpt in envelope.rcpt_tos:
            self.messages.append((rcpt, login, parsed))  # type: ignore[arg-type]
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for r, _, m in self.messages if r == address]


@dataclass(frozen=True)
class Server:
    security: str
    inbox: Inbox
    port: int


@contextmanager
def running(security: str, certificate: Certificate) -> Iterator[tuple[Inbox, int]]:
    """starttls: plain at first, MAIL only after STARTTLS and a login (AUTH only over TLS).
    tls: TLS from the first byte (smtps, as on port 465); aiosmtpd counts only a STARTTLS
    upgrade as TLS for its AUTH checks, so those are off and the handler refuses mail from a
    session that did not log in."""
    inbox, port = Inbox(), free_port()
    context = certificate.server_context()
    kind: dict[str, Any] = (
        {"tls_context": context, "require_starttls": True, "auth_required": True}
        if security == "starttls"
        else {"ssl_context": context, "auth_require_tls": False}
    )
    controller = Controller(
        inbox, hostname="127.0.0.1", port=port, authenticator=inbox.authenticate, **kind
    )
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


@pytest.fixture(params=["starttls", "tls"])
def server(request: pytest.FixtureRequest, certificate: Certificate) -> Iterator[Server]:
    """An SMTP server of each kind, and the ``smtp_security`` that speaks to it."""
    with running(request.param, certificate) as (inbox, port):
        yield Server(request.param, inbox, port)


@pytest.fixture
def starttls_server(certificate: Certificate) -> Iterator[Server]:
    with running("starttls", certificate) as (inbox, port):
        yield Server("starttls", inbox, port)


def secure_settings(
    tmp_path: Path, db_url: str, server: Server, *, user: str | None = USER
) -> Settings:
    """The settings file names the server and the user; the password is not in it."""
    stores = [dict(s) for s in STORES]
    stores[0]["managers"] = ["berlin@store.example"]
    return make_settings(
        tmp_path,
        database_url=db_url,
        stores=stores,
        notify={
            "loss_prevention": ["lp@chain.example"],
            "smtp_host": "127.0.0.1",
            "smtp_port": server.port,
            "smtp_security": server.security,
            "sender": "audit@chain.example",
            **({"smtp_user": user} if user is not None else {}),
        },
    )


def rows(engine: Engine) -> list[tuple[str, str, int, str | None]]:
    with Session(engine) as session:
        found = session.execute(
            sa.select(
                Notification.recipient,
                Notification.status,
                Notification.attempts,
                Notification.last_error,
            ).order_by(Notification.id)
        )
        return [tuple(r) for r in found]  # type: ignore[misc]


def assert_delivered(inbox: Inbox, engine: Engine) -> None:
    [chain] = inbox.to("lp@chain.example")
    [store] = inbox.to("berlin@store.example")
    assert chain["To"] == "lp@chain.example" and chain["From"] == "audit@chain.example"
    assert str(chain["Subject"]).strip() == CHAIN_SUBJECT
    assert str(store["Subject"]).strip().endswith(CHAIN_SUBJECT.removeprefix("Demo chain"))
    assert store["To"] == "berlin@store.example"
    assert "S1), 2024-03-01: audit failed" in chain.get_body(("plain",)).get_content()
    assert {login for _, login, _ in inbox.messages} == {USER}
    assert inbox.logins == [(USER, True), (USER, True)]  # one connection per message
    assert inbox.encrypted == [True, True]
    assert {(s, n, e) for _, s, n, e in rows(engine)} == {("sent", 1, None)}


def test_the_summary_goes_over_tls_with_the_password_from_the_environment(
    server, trusted, engine, tmp_path, db_url, monkeypatch
):
    monkeypatch.setenv(PASSWORD_VARIABLE, PASSWORD)
    settings = secure_settings(tmp_path, db_url, server)
    assert PASSWORD not in (tmp_path / "auditor.toml").read_text(encoding="utf-8")
    assert settings.notify.smtp_password is not None
    assert settings.notify.smtp_password.get_secret_value() == PASSWORD
    assert settings.notify.smtp_host == "127.0.0.1"  # the file's [notify] is kept too

    done = summarise_and_send(settings, engine, SUMMARIES)
    assert done is not None and (done.sent, done.failed, done.dropped) == (2, 0, 0)
    assert_delivered(server.inbox, engine)


def test_the_starttls_server_refuses_mail_without_a_login(
    starttls_server, trusted, engine, tmp_path, db_url
):
    """No smtp_user: the client does not log in, and the server refuses the mail."""
    inbox = starttls_server.inbox
    settings = secure_settings(tmp_path, db_url, starttls_server, user=None)
    done = summarise_and_send(settings, engine, SUMMARIES)
    assert done is not None and (done.sent, done.failed) == (0, 2)
    assert inbox.messages == [] and inbox.logins == []
    assert all("530" in (e or "") for _, _, _, e in rows(engine))


def test_a_wrong_password_is_kept_for_the_next_night(
    server, trusted, engine, tmp_path, db_url, monkeypatch, caplog
):
    inbox = server.inbox
    monkeypatch.setenv(PASSWORD_VARIABLE, "not-the-password")
    settings = secure_settings(tmp_path, db_url, server)
    with caplog.at_level(logging.WARNING, logger="auditor.notify"):
        done = summarise_and_send(settings, engine, SUMMARIES)  # does not raise
    assert done is not None and (done.sent, done.failed, done.dropped) == (0, 2, 0)
    # smtplib tries each mechanism the server offers (PLAIN, LOGIN) before it gives up
    assert inbox.messages == [] and inbox.logins and set(inbox.logins) == {(USER, False)}
    kept = rows(engine)
    assert [(r, s, n) for r, s, n, _ in kept] == [
        ("lp@chain.example", "pending", 1),
        ("berlin@store.example", "pending", 1),
    ]
    for _, _, _, error in kept:
        assert error is not None and "SMTPAuthenticationError" in error and "535" in error
        assert f"127.0.0.1:{server.port}" in error
    warnings = [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("auditor.notify") and r.levelno == logging.WARNING
    ]
    assert len(warnings) == 2
    assert all("not sent (attempt 1 of 7, tried again next night)" in w for w in warnings)
    assert all("not-the-password" not in text for text in [caplog.text, *(e for *_, e in kept)])

    # the next night the right password is in the environment: both go out, nothing twice
    monkeypatch.setenv(PASSWORD_VARIABLE, PASSWORD)
    fixed = secure_settings(tmp_path, db_url, server)
    done = summarise_and_send(fixed, engine, [])
    assert done is not None and (done.sent, done.failed) == (2, 0)
    assert len(inbox.to("lp@chain.example")) == 1 and len(inbox.to("berlin@store.example")) == 1
    assert {(s, n, e) for _, s, n, e in rows(engine)} == {("sent", 2, None)}


def test_an_untrusted_certificate_is_refused(server, engine, tmp_path, db_url, monkeypatch):
    """Without the certificate among the trusted ones the client does not send (and so
    never hands the password to a server it cannot verify)."""
    inbox = server.inbox
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "no-such-ca.pem"))
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path / "no-such-ca-dir"))
    monkeypatch.setenv(PASSWORD_VARIABLE, PASSWORD)
    settings = secure_settings(tmp_path, db_url, server)
    done = summarise_and_send(settings, engine, SUMMARIES)
    assert done is not None and (done.sent, done.failed) == (0, 2)
    assert inbox.messages == [] and inbox.logins == []
    for _, status, _, error in rows(engine):
        assert status == "pending"
        assert error is not None and "CERTIFICATE_VERIFY_FAILED" in error
