"""The nightly summary: received by a real local SMTP server (aiosmtpd) and a real HTTP
webhook receiver, with the right scope per recipient; a failed send is kept and tried again
on the next night, never failing the job; a rerun of the night sends nothing twice."""

from __future__ import annotations

import email
import email.policy
import json
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from auditor.audit.summary import RunSummary
from auditor.db.models import Notification
from auditor.notify.outbox import deliver
from auditor.notify.step import summarise_and_send
from auditor.settings import Settings
from tests.factories import STORES, make_settings
from tests.review_data import ChainBuilder

NIGHT = date(2024, 3, 1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Inbox:
    """What the SMTP server received: one parsed message per recipient."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, EmailMessage]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        for rcpt in envelope.rcpt_tos:
            self.messages.append((rcpt, parsed))  # type: ignore[arg-type]
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for r, m in self.messages if r == address]


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


class Hook:
    """A webhook receiver that answers each POST with the next status of ``answers``."""

    def __init__(self, answers: list[int]) -> None:
        self.answers, self.bodies = answers, []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                hook.bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(hook.answers.pop(0) if hook.answers else 200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/audit"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def hook() -> Iterator[Hook]:
    receiver = Hook([500])  # the first POST fails
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


def at(hour: int, minute: int = 0) -> datetime:
    return datetime(2024, 3, 1, hour, minute, tzinfo=UTC)


@pytest.fixture
def night(engine: Engine, db_url: str, tmp_path: Path) -> tuple[ChainBuilder, list[RunSummary]]:
    """Two stores audited on 1 March: S1 with two under-age sales (one reviewed), a camera
    gap and a clean sale; S2 with a clean sale. And S3's audit failed."""
    settings = make_settings(tmp_path / "build", database_url=db_url)
    with Session(engine) as session:
        build = ChainBuilder(session, settings)
        build.sale("u1", at(20), age=16.0)
        build.sale("u2", at(21), age=19.0)
        build.sale("gap", at(21, 30), age=None, kinds=("no_frame",))
        build.sale("ok", at(22), age=40.0)
        build.sale("ok2", at(20), age=45.0, store="S2")
        lp = build.user("lp", "loss_prevention")
        build.review("u2", "adult", by=lp, at=at(23))
        session.commit()
        runs = build.made.runs
    summaries = [
        RunSummary("S1", NIGHT, "succeeded", run_id=runs[("S1", NIGHT)], sales_audited=4),
        RunSummary("S2", NIGHT, "succeeded", run_id=runs[("S2", NIGHT)], sales_audited=1),
        RunSummary("S3", NIGHT, "failed", error="OSError: snapshot share not mounted"),
    ]
    return build, summaries


def notify_settings(tmp_path: Path, db_url: str, port: int, **notify: Any) -> Settings:
    stores = [dict(s) for s in STORES]
    stores[0]["managers"] = ["berlin@store.example"]
    stores[1]["managers"] = ["hamburg@store.example", "berlin@store.example"]
    return make_settings(
        tmp_path,
        database_url=db_url,
        stores=stores,
        notify={
            "loss_prevention": ["lp@chain.example"],
            "smtp_host": "127.0.0.1",
            "smtp_port": port,
            "smtp_security": "none",
            "sender": "audit@chain.example",
            "reports_url": "https://reports.chain.example/audit/",
            "review_url": "https://review.chain.example",
            **notify,
        },
    )


def rows(engine: Engine) -> list[tuple[str, str, str, int]]:
    with Session(engine) as session:
        found = session.execute(
            sa.select(
                Notification.recipient,
                Notification.channel,
                Notification.status,
                Notification.attempts,
            ).order_by(Notification.id)
        )
        return [tuple(r) for r in found]  # type: ignore[misc]


def test_each_recipient_gets_the_summary_of_their_scope(night, smtp, engine, tmp_path, db_url):
    inbox, port = smtp
    _, summaries = night
    settings = notify_settings(tmp_path, db_url, port)
    done = summarise_and_send(settings, engine, summaries)
    assert done is not None and (done.sent, done.failed) == (4, 0)

    [chain] = inbox.to("lp@chain.example")
    assert chain["From"] == "audit@chain.example"
    assert str(chain["Subject"]).strip() == (
        "Demo chain, 2024-03-01: 2 under-age flagged sales, 2 open; 1 audit failed"
    )
    text = chain.get_body(("plain",)).get_content()
    assert "S1), 2024-03-01: 4 alcohol sales, 3 flagged, 2 under age, 2 open" in text
    assert "S2), 2024-03-01: 1 alcohol sales, 0 flagged, 0 under age, 0 open" in text
    assert "S3), 2024-03-01: audit failed: OSError: snapshot share not mounted" in text
    assert "https://reports.chain.example/audit/2024-03-01/index.html" in text
    assert "https://review.chain.example/flags?from=2024-03-01&to=2024-03-01" in text
    html = chain.get_body(("html",)).get_content()
    assert 'href="https://reports.chain.example/audit/2024-03-01/S1.html"' in html
    assert 'data-store="S3"' in html

    # a manager hears of their own store only; one address of two stores gets both
    [berlin_s1, berlin_s2] = sorted(inbox.to("berlin@store.example"), key=lambda m: m["Subject"])
    [hamburg] = inbox.to("hamburg@store.example")
    own = berlin_s1.get_body(("plain",)).get_content()
    assert "(S1)" in own and "(S2)" not in own and "(S3)" not in own
    assert "store=S1" in own and "index.html" not in own
    assert "(S2)" in hamburg.get_body(("plain",)).get_content()
    assert berlin_s2["Subject"] == hamburg["Subject"]
    assert all(status == "sent" for _, _, status, _ in rows(engine))


def test_a_rerun_of_the_night_sends_nothing_twice(night, smtp, engine, tmp_path, db_url):
    inbox, port = smtp
    _, summaries = night
    settings = notify_settings(tmp_path, db_url, port)
    summarise_and_send(settings, engine, summaries)
    before = rows(engine)
    again = summarise_and_send(settings, engine, summaries)
    assert again is not None and again.sent == 0
    assert rows(engine) == before and len(inbox.messages) == 4


def test_a_failed_send_is_kept_and_tried_again_the_next_night(
    night, smtp, hook, engine, tmp_path, db_url
):
    inbox, port = smtp
    _, summaries = night
    down = notify_settings(tmp_path, db_url, free_port(), webhook_url=hook.url)  # no server
    done = summarise_and_send(down, engine, summaries)  # does not raise
    assert done is not None and (done.sent, done.failed) == (0, 5)
    assert {status for _, _, status, _ in rows(engine)} == {"pending"}
    assert len(hook.bodies) == 1  # the webhook answered 500

    # the next night: the mail server is up and the webhook answers; nothing new was audited
    up = notify_settings(tmp_path, db_url, port, webhook_url=hook.url)
    done = summarise_and_send(up, engine, [])
    assert done is not None and (done.sent, done.failed) == (5, 0)
    assert len(inbox.to("lp@chain.example")) == 1
    assert [(r, c, s, n) for r, c, s, n in rows(engine) if c == "webhook"] == [
        (hook.url, "webhook", "sent", 2)
    ]
    payload = hook.bodies[-1]
    assert payload["type"] == "nightly_summary" and payload["nights"] == ["2024-03-01"]
    assert payload["totals"] == {
        "alcohol_sales": 5,
        "flagged_sales": 3,
        "under_age_sales": 2,
        "open_sales": 2,
    }
    assert payload["failed_audits"] == 1
    assert [s["store_id"] for s in payload["stores"]] == ["S1", "S2", "S3"]
    assert payload["text"].startswith("Demo chain, 2024-03-01: 2 under-age flagged sales")


def test_a_send_failing_every_night_is_dropped_after_the_last_attempt(
    night, engine, tmp_path, db_url
):
    _, summaries = night
    settings = notify_settings(tmp_path, db_url, free_port(), max_attempts=2)
    summarise_and_send(settings, engine, summaries)
    done = summarise_and_send(settings, engine, [])
    assert done is not None and done.dropped == 4
    assert {(s, n) for _, _, s, n in rows(engine)} == {("dropped", 2)}
    assert summarise_and_send(settings, engine, []).sent == 0  # type: ignore[union-attr]


def test_without_recipients_nothing_is_written(night, engine, tmp_path, db_url):
    _, summaries = night
    settings = make_settings(tmp_path, database_url=db_url)
    assert summarise_and_send(settings, engine, summaries) is None
    assert rows(engine) == []


def test_mail_recipients_need_an_smtp_server(tmp_path):
    from auditor.settings import SettingsError

    with pytest.raises(SettingsError, match="notify.smtp_host: set the SMTP server"):
        make_settings(tmp_path, notify={"loss_prevention": ["lp@chain.example"]})
    with pytest.raises(SettingsError, match="is not an e-mail address"):
        make_settings(tmp_path, notify={"loss_prevention": ["loss prevention"]})
    with pytest.raises(SettingsError, match="notify.webhook_url"):
        make_settings(tmp_path, notify={"webhook_url": "ftp://chat.example/hook"})


def test_a_webhook_that_does_not_speak_http_holds_back_no_mail(
    night, smtp, engine, tmp_path, db_url
):
    inbox, port = smtp
    _, summaries = night
    with socket.socket() as listener:  # a port that answers, but not in HTTP
        listener.bind(("127.0.0.1", 0))
        listener.listen()

        def answer() -> None:
            connection, _ = listener.accept()
            with connection, connection.makefile("rb") as request:
                while request.readline() not in (b"\r\n", b""):  # the request's head
                    pass
                connection.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")

        threading.Thread(target=answer, daemon=True).start()
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/hooks/audit"
        settings = notify_settings(tmp_path, db_url, port, webhook_url=url)
        done = summarise_and_send(settings, engine, summaries)
    assert done is not None and (done.sent, done.failed) == (4, 1)
    assert len(inbox.messages) == 4
    assert [(s, n) for _, c, s, n in rows(engine) if c == "webhook"] == [("pending", 1)]
    with Session(engine) as session:
        error = session.scalars(
            sa.select(Notification.last_error).where(Notification.channel == "webhook")
        ).one()
    assert error.startswith(f"webhook {url}: BadStatusLine")


def test_an_unexpected_error_in_one_send_is_an_attempt_and_the_others_go(
    night, engine, tmp_path, db_url
):
    _, summaries = night
    settings = notify_settings(tmp_path, db_url, free_port())
    summarise_and_send(settings, engine, summaries)  # no mail server: all pending
    sent: list[str] = []

    def send(message: Any, notify: Any) -> None:
        if message.recipient == "lp@chain.example":
            raise KeyError("template field")
        sent.append(message.recipient)

    done = deliver(sessionmaker(engine), settings.notify, send)
    assert (done.sent, done.failed) == (3, 1)
    assert sorted(sent) == ["berlin@store.example", "berlin@store.example", "hamburg@store.example"]
    with Session(engine) as session:
        [(status, attempts, error)] = session.execute(
            sa.select(Notification.status, Notification.attempts, Notification.last_error).where(
                Notification.recipient == "lp@chain.example"
            )
        ).all()
    assert (status, attempts, error) == ("pending", 2, "KeyError: 'template field'")
