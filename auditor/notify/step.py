"""The nightly job's summary step: write the night's messages, then send what is due."""

from __future__ import annotations

import logging

from sqlalchemy.engine import Engine
from sqlalchemy.orm import sessionmaker

from auditor.audit.summary import RunSummary
from auditor.notify.figures import store_nights
from auditor.notify.outbox import Delivery, deliver, enqueue
from auditor.notify.send import send
from auditor.notify.summary import messages
from auditor.settings import Settings

logger = logging.getLogger(__name__)


def wants_summary(settings: Settings) -> bool:
    notify = settings.notify
    return bool(
        notify.loss_prevention
        or notify.webhook_url
        or any(store.managers for store in settings.stores)
    )


def send_nightly_summary(settings: Settings, engine: Engine, summaries: list[RunSummary]) -> None:
    """Report step of the nightly job (see :func:`summarise_and_send`)."""
    summarise_and_send(settings, engine, summaries)


def summarise_and_send(
    settings: Settings, engine: Engine, summaries: list[RunSummary]
) -> Delivery | None:
    """Report step: the summary of the store-nights just audited to every recipient, and the
    messages earlier nights could not send. A failed send is logged, never raised."""
    if not wants_summary(settings):
        logger.info("no summary recipients set ([notify], [[stores]] managers)")
        return None
    factory = sessionmaker(engine)
    with factory.begin() as session:
        new = enqueue(session, messages(settings, store_nights(session, summaries)))
    done = deliver(factory, settings.notify, send)
    logger.info(
        "nightly summary: %d new messages; %d sent, %d kept for the next night, %d dropped",
        new,
        done.sent,
        done.failed,
        done.dropped,
    )
    return done
