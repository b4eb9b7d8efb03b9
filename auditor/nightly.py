"""The nightly job: audit every store's previous business day, then run the report steps.

Each store's date is its own: the last business day that has ended in the store's zone when
the job runs (see :mod:`auditor.audit.business_day`). A store-night with no sales and no frames
is audited and recorded all the same, as ``auditor audit --allow-empty`` does: the job's date
is never typed by hand, so such a night is most likely a store that was closed (a holiday), an
empty night the reports should show as audited. Report steps are functions appended to
:data:`REPORT_STEPS`; each gets the settings, the engine and the night's run summaries, and a
step that fails is logged without stopping the others.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, date, datetime

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from auditor.audit.business_day import previous_business_date
from auditor.audit.cluster import audit_nights_on_dask
from auditor.audit.run import AuditTools, audit_nights
from auditor.audit.summary import RunSummary
from auditor.db.migrations import require_current_schema
from auditor.db.queries import known_store_ids
from auditor.errors import describe_error
from auditor.notify import send_nightly_summary
from auditor.reports import render_after_audit
from auditor.retention import nightly_purge
from auditor.settings import Settings
from auditor.vocabulary import RunStatus

logger = logging.getLogger(__name__)

ReportStep = Callable[[Settings, Engine, list[RunSummary]], None]

# Steps run after the night's audits, in order: the HTML reports of the nights just audited,
# the summary sent to loss prevention and the stores' managers, then the purge of frames and
# face crops past their retention.
REPORT_STEPS: list[ReportStep] = [render_after_audit, send_nightly_summary, nightly_purge]
#: The error of a store-night the job did not reach, as it was stopped (SIGTERM) first.
NOT_AUDITED = "not audited: the nightly job was stopped first (run auditor audit for it)"


def nightly(
    *,
    settings: Settings,
    engine: Engine,
    now: datetime | None = None,
    tools: AuditTools | None = None,
    stop: threading.Event | None = None,
) -> list[RunSummary]:
    """Audit each store's previous business day, then run :data:`REPORT_STEPS`.

    Stores are those in the database (a configured store without any data is only logged).
    ``stop``, once set, ends the job after the store-night in progress; the nights not reached
    are failed ones (:data:`NOT_AUDITED`) and the report steps still run. When the audit
    cannot run at all (the model or the Dask cluster cannot be had), every night is a failed
    one with that error, and the report steps (the summary that says so, the purge) still
    run. With ``[audit] executor = "dask"`` the store-nights run on the Dask
    cluster (``tools`` is not used) and ``stop`` drops those not yet finished.
    """
    now = now or datetime.now(UTC)
    require_current_schema(engine)
    with Session(engine) as session:
        stores = known_store_ids(session)
    for missing in sorted({s.id for s in settings.stores} - set(stores)):
        logger.warning("store %s is configured but has no data in the database", missing)
    nights = [(s, previous_business_date(now, settings.store_zone(s))) for s in stores]
    try:
        if settings.audit.executor == "dask":
            summaries = audit_nights_on_dask(settings=settings, nights=nights, stop=stop)
        else:
            summaries = _audit_here(settings, engine, tools, stop, nights)
    except Exception as e:  # no model, no cluster...: every night failed; the steps still run
        logger.exception("the nightly audit cannot run")
        error = describe_error(e)
        summaries = [RunSummary(s, day, RunStatus.FAILED, error=error) for s, day in nights]
    failed = [s for s in summaries if s.status != RunStatus.SUCCEEDED]
    done = len(summaries) - len(failed)
    logger.info("nightly audit: %d store-nights audited, %d failed", done, len(failed))
    for summary in failed:
        logger.error("%s", summary)
    run_report_steps(settings, engine, summaries)
    return summaries


def _audit_here(
    settings: Settings,
    engine: Engine,
    tools: AuditTools | None,
    stop: threading.Event | None,
    nights: list[tuple[str, date]],
) -> list[RunSummary]:
    tools = tools or AuditTools.load(settings)
    summaries: list[RunSummary] = []
    for store_id, day in nights:
        if stop is not None and stop.is_set():
            logger.warning("stopping: %s %s is not audited tonight", store_id, day)
            summaries.append(RunSummary(store_id, day, RunStatus.FAILED, error=NOT_AUDITED))
            continue
        summaries += audit_nights(
            engine=engine, settings=settings, tools=tools, nights=[(store_id, day)]
        )
    return summaries


def run_report_steps(settings: Settings, engine: Engine, summaries: list[RunSummary]) -> None:
    if not REPORT_STEPS:
        logger.info("no report steps configured")
    for step in REPORT_STEPS:
        name = getattr(step, "__qualname__", repr(step))
        try:
            step(settings, engine, summaries)
        except Exception:
            logger.exception("report step %s failed", name)
        else:
            logger.info("report step %s done", name)
