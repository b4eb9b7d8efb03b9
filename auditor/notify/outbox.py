"""The messages of the nightly summaries, kept in ``notifications`` until they are sent.

A night's messages are written once per key, channel and recipient: a rerun of the night
refreshes a message not yet sent and leaves a sent one alone. :func:`deliver` sends every
pending message, tonight's and those that failed on earlier nights; one that fails counts an
attempt and stays pending until ``[notify] max_attempts``, then it is dropped. Nothing here
raises for a failed send: it is logged and kept.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from auditor.db.models import Notification, utcnow
from auditor.errors import describe_error
from auditor.notify.send import SendFailed
from auditor.notify.summary import Message
from auditor.settings import NotifySettings
from auditor.vocabulary import SendStatus

logger = logging.getLogger(__name__)


@dataclass
class Delivery:
    sent: int = 0
    failed: int = 0  # tried and kept for the next night
    dropped: int = 0  # tried for the last time


def enqueue(session: Session, messages: Sequence[Message]) -> int:
    """Keep ``messages``; return how many are new. Runs in the session's transaction."""
    new = 0
    for m in messages:
        stored = session.execute(
            sa.select(Notification).where(
                Notification.key == m.key,
                Notification.channel == m.channel,
                Notification.recipient == m.recipient,
            )
        ).scalar_one_or_none()
        if stored is None:
            session.add(
                Notification(
                    key=m.key,
                    channel=m.channel,
                    recipient=m.recipient,
                    subject=m.subject[:200],
                    body=m.body,
                    html=m.html,
                    status=SendStatus.PENDING,
                    attempts=0,
                )
            )
            new += 1
        elif stored.status == SendStatus.PENDING:
            stored.subject, stored.body, stored.html = m.subject[:200], m.body, m.html
    session.flush()
    return new


def deliver(
    factory: sessionmaker[Session],
    notify: NotifySettings,
    send: Callable[[Message, NotifySettings], None],
) -> Delivery:
    """Send every pending message, oldest first, each in its own transaction."""
    with factory() as session:
        pending = list(
            session.execute(
                sa.select(Notification.id)
                .where(Notification.status == SendStatus.PENDING)
                .order_by(Notification.id)
            ).scalars()
        )
    done = Delivery()
    for notification_id in pending:
        with factory.begin() as session:
            n = session.get(Notification, notification_id, with_for_update=True)
            if n is None or n.status != SendStatus.PENDING:
                continue  # another job got there first
            message = Message(n.key, n.channel, n.recipient, n.subject, n.body, n.html)
            n.attempts += 1
            try:
                send(message, notify)
            except Exception as e:  # whatever it is, one message's failure stops no other
                if not isinstance(e, SendFailed):
                    logger.exception("summary %s to %s: unexpected error", n.key, n.recipient)
                n.last_error = describe_error(e)
                if n.attempts >= notify.max_attempts:
                    n.status = SendStatus.DROPPED
                    done.dropped += 1
                    logger.error("summary %s to %s dropped: %s", n.key, n.recipient, e)
                else:
                    done.failed += 1
                    logger.warning(
                        "summary %s to %s not sent (attempt %d of %d, tried again next night): %s",
                        n.key,
                        n.recipient,
                        n.attempts,
                        notify.max_attempts,
                        e,
                    )
            else:
                n.status, n.sent_at, n.last_error = SendStatus.SENT, utcnow(), None
                done.sent += 1
    return done
