"""Run the nightly job on the configured cron schedule (APScheduler 3), until told to stop.

One job, at ``schedule.cron`` in ``schedule.timezone`` (default 02:30 in the chain's zone).
Never two at once (``max_instances=1``); runs missed while the process was busy or asleep are
coalesced into one, if no more than :data:`MISFIRE_GRACE_S` late, else skipped and logged.
Nights missed while the scheduler was not running are not caught up: audit them with
``auditor audit --since DATE``. SIGTERM or SIGINT stop the scheduler: a job in progress
finishes the store-night it is auditing and the process exits with code 0.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from types import FrameType
from zoneinfo import ZoneInfo

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    JobEvent,
    JobExecutionEvent,
)
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy.engine import Engine

from auditor.cron import cron_trigger
from auditor.nightly import nightly
from auditor.settings import Settings

logger = logging.getLogger(__name__)

JOB_ID = "nightly"
MISFIRE_GRACE_S = 6 * 3600


def schedule_zone(settings: Settings) -> ZoneInfo:
    return ZoneInfo(settings.schedule.timezone or settings.chain.default_timezone)


def nightly_trigger(settings: Settings) -> CronTrigger:
    return cron_trigger(settings.schedule.cron, schedule_zone(settings))


def next_run(settings: Settings, now: datetime | None = None) -> datetime | None:
    """When the nightly job fires next after ``now``, in the schedule's zone."""
    now = (now or datetime.now(UTC)).astimezone(schedule_zone(settings))
    fire: datetime | None = nightly_trigger(settings).get_next_fire_time(None, now)
    return fire


def build_scheduler(settings: Settings, job: Callable[[], object]) -> BlockingScheduler:
    """A scheduler with the nightly ``job`` on the configured trigger, events logged."""
    scheduler = BlockingScheduler(
        timezone=schedule_zone(settings),
        executors={"default": ThreadPoolExecutor(max_workers=1)},
    )
    scheduler.add_job(
        job,
        nightly_trigger(settings),
        id=JOB_ID,
        name="nightly audit and reports",
        coalesce=True,
        max_instances=1,
        misfire_grace_time=MISFIRE_GRACE_S,
    )
    events = EVENT_JOB_EXECUTED | EVENT_JOB_ERROR | EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES
    scheduler.add_listener(_log_event, events)
    return scheduler


def _log_event(event: JobEvent) -> None:
    if event.code == EVENT_JOB_MISSED:
        logger.warning(
            "nightly run due at %s missed by more than %d s: skipped; audit those nights "
            "with `auditor audit --since`",
            event.scheduled_run_time,
            MISFIRE_GRACE_S,
        )
    elif event.code == EVENT_JOB_MAX_INSTANCES:
        logger.warning(
            "nightly run due at %s skipped: the last one is still running", event.scheduled_run_time
        )
    elif isinstance(event, JobExecutionEvent) and event.exception is not None:
        logger.error("nightly run due at %s failed: %s", event.scheduled_run_time, event.exception)
    else:
        logger.info("nightly run due at %s done", event.scheduled_run_time)


class NightlyJob:
    """The scheduled job: :func:`~auditor.nightly.nightly` at most once per local date.

    When the clocks go back, a cron time in the repeated hour (02:30 in Europe/Berlin, say)
    comes twice in one night; the second firing is skipped. A firing that comes late (the
    machine was busy or asleep, within the misfire grace) runs as at its cron time, so a
    late-evening schedule fired after midnight still audits the night it was due for.
    """

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        *,
        stop: threading.Event,
        run: Callable[..., object] = nightly,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings, self.engine, self.stop = settings, engine, stop
        self.run, self.clock = run, clock
        self.last_date: date | None = None

    def scheduled(self, now: datetime) -> datetime:
        """The cron time this firing is for: the first one within the misfire grace before
        ``now`` (a run fired late, past midnight, is still for the night it was due)."""
        since = now - timedelta(seconds=MISFIRE_GRACE_S)
        due: datetime | None = nightly_trigger(self.settings).get_next_fire_time(None, since)
        return due.astimezone(UTC) if due is not None and due <= now else now

    def __call__(self) -> None:
        now = self.scheduled(self.clock())
        today = now.astimezone(schedule_zone(self.settings)).date()
        if today == self.last_date:
            logger.warning("nightly job already ran on %s (the clocks went back): skipped", today)
            return
        self.last_date = today
        self.run(settings=self.settings, engine=self.engine, now=now, stop=self.stop)


def run_scheduler(
    settings: Settings,
    engine: Engine,
    *,
    on_start: Callable[[datetime | None], None] | None = None,
) -> None:
    """Run the nightly job on schedule until SIGTERM or SIGINT; returns once stopped."""
    stop = threading.Event()
    scheduler = build_scheduler(settings, NightlyJob(settings, engine, stop=stop))

    def handle(signum: int, _frame: FrameType | None) -> None:
        logger.info("%s received: stopping the scheduler", signal.Signals(signum).name)
        stop.set()
        if scheduler.running:
            scheduler.shutdown(wait=False)

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        zone = schedule_zone(settings)
        logger.info("nightly job scheduled: %r in %s", settings.schedule.cron, zone)
        if on_start is not None:
            on_start(next_run(settings))
        if not stop.is_set():
            scheduler.start()  # blocks until shutdown
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    logger.info("scheduler stopped")
