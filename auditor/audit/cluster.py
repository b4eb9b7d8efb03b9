"""Audit store-nights on a Dask cluster (``[audit] executor = "dask"``).

The client sends one task per store-night to the scheduler at ``[audit] scheduler``. A task
carries only the settings, a store id and a date; on its worker it

- opens its own engine from ``settings.database_url`` (disposed of when the task ends) and runs
  :func:`~auditor.audit.run.audit_nights` for its one store-night: the same store-night lock,
  run record and single write transaction as a local run, and the same ``failed`` or
  ``refused`` summary when the store-night cannot be audited;
- uses the worker process's age model and face detector, loaded by its first task and kept
  (:func:`~auditor.audit.examine.load_age_model` and :func:`~auditor.audit.detect.get_detector`
  cache them per process);
- holds a per-process lock for the whole store-night, so a worker process audits one
  store-night at a time whatever its ``--nthreads``: a store-night already keeps the machine's
  cores busy (one face-finding thread per core, ``[audit] workers``, and the model's engine
  on every core). Start one worker process per machine with ``--nthreads 1``; more processes
  on one machine only compete for the same cores. The lock covers the database work too: it
  is about 1% of a store-night, and the local path stays exactly as it is.

Workers need the same paths as the client: the snapshot files under ``paths.snapshot_root``
and the model directory at ``[model] path``. The database URL, password included, travels to
the workers (use ``tls://`` on a network you do not trust); the review app's secret key does
not.

Summaries come back in the order of the nights. A task that raises on its worker, or that the
cluster loses (a worker that died more often than Dask allows), becomes a ``failed`` summary;
the other store-nights carry on.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import date
from typing import TYPE_CHECKING, Any

from auditor.audit.run import AuditTools, audit_nights
from auditor.audit.summary import RunSummary
from auditor.db.engine import make_engine
from auditor.errors import AuditorError
from auditor.settings import Settings
from auditor.vocabulary import RunStatus

if TYPE_CHECKING:
    from distributed import Client, Future

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10.0
POLL_S = 0.5  # how often the client looks for finished store-nights (and a stop request)

# One store-night at a time in a worker process: see the module's docstring.
_WORKER_LOCK = threading.Lock()


class ClusterUnavailable(AuditorError):
    """The Dask scheduler cannot be reached, or what answers is not a Dask scheduler."""


def audit_nights_on_dask(
    *,
    settings: Settings,
    nights: Iterable[tuple[str, date]],
    stop: threading.Event | None = None,
    on_done: Callable[[RunSummary], None] | None = None,
) -> list[RunSummary]:
    """Audit each (store, date) on the Dask cluster at ``settings.audit.scheduler``.

    ``on_done(summary)`` is called as each store-night finishes. ``stop``, once set, cancels the
    store-nights not yet finished (those already running on a worker still finish there) and
    leaves them out of the result. Raises :class:`ClusterUnavailable` when the scheduler cannot
    be reached.
    """
    nights = list(nights)
    address = settings.audit.scheduler
    if address is None:
        raise ClusterUnavailable("no Dask scheduler address: set [audit] scheduler")
    shipped = _for_workers(settings)
    with connect(address) as client:
        futures = [
            client.submit(
                audit_on_worker,
                shipped,
                store_id,
                day,
                key=f"audit-{store_id}-{day}-{uuid.uuid4().hex[:8]}",
                pure=False,
            )
            for store_id, day in nights
        ]
        logger.info("%d store-nights sent to the Dask scheduler at %s", len(futures), address)
        summaries = _collect(client, futures, nights, stop, on_done)
    return [s for s in summaries if s is not None]


def audit_on_worker(settings: Settings, store_id: str, day: date) -> RunSummary:
    """One store-night, on a Dask worker: the local path with this process's model and lock."""
    with _WORKER_LOCK:
        engine = make_engine(settings.database_url)
        try:
            tools = AuditTools.load(settings)
            [summary] = audit_nights(
                engine=engine, settings=settings, tools=tools, nights=[(store_id, day)]
            )
        except AuditorError as e:  # the model cannot be loaded on this worker
            logger.warning("audit of %s %s not started: %s", store_id, day, e)
            summary = RunSummary(store_id, day, RunStatus.FAILED, error=str(e))
        finally:
            engine.dispose()
    return summary


def check_scheduler(address: str) -> None:
    """Raise :class:`ClusterUnavailable` unless a Dask scheduler answers at ``address``."""
    try:
        identity = asyncio.run(_identity(address))
    except Exception as e:  # refused, timed out, a bad address, or another kind of server
        reason = str(e) or type(e).__name__
        raise ClusterUnavailable(f"cannot reach the Dask scheduler at {address}: {reason}") from e
    if not isinstance(identity, dict) or identity.get("type") != "Scheduler":
        raise ClusterUnavailable(f"{address} answers, but not as a Dask scheduler")


@contextmanager
def connect(address: str) -> Iterator[Client]:
    """A client of the scheduler at ``address``, closed on leaving.

    The scheduler is asked who it is first: a ``Client`` that fails to connect cannot be closed
    and hangs on to its event loop until the process ends.
    """
    from distributed import Client

    check_scheduler(address)
    client = Client(address, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
    try:
        yield client
    finally:
        client.close()


async def _identity(address: str) -> Any:
    from distributed.comm.core import connect as open_comm
    from distributed.core import send_recv

    comm = await open_comm(address, timeout=CONNECT_TIMEOUT_S)
    try:
        return await send_recv(comm, op="identity")
    finally:
        await comm.close()


def _for_workers(settings: Settings) -> Settings:
    """The settings a task carries: the review app's secret key stays here."""
    return settings.model_copy(update={"web": settings.web.model_copy(update={"secret_key": None})})


def _collect(
    client: Client,
    futures: list[Future[RunSummary]],
    nights: list[tuple[str, date]],
    stop: threading.Event | None,
    on_done: Callable[[RunSummary], None] | None,
) -> list[RunSummary | None]:
    from distributed import as_completed

    position = {future.key: i for i, future in enumerate(futures)}
    summaries: list[RunSummary | None] = [None] * len(futures)
    finished = as_completed(futures, loop=client.loop)
    waiting = stop or threading.Event()
    while not finished.is_empty():
        if waiting.is_set():
            left = [f for f in futures if summaries[position[f.key]] is None]
            client.cancel(left)
            logger.warning("stopping: %d store-nights not waited for", len(left))
            break
        batch = finished.next_batch(block=False)
        if not batch:
            waiting.wait(POLL_S)
        for future in batch:
            store_id, day = nights[position[future.key]]
            summary = _summary(future, store_id, day)
            logger.info("%s", summary)
            summaries[position[future.key]] = summary
            if on_done is not None:
                on_done(summary)
    return summaries


def _summary(future: Future[RunSummary], store_id: str, day: date) -> RunSummary:
    """The task's summary, or a ``failed`` one for a task that raised or was lost."""
    if future.status == "cancelled":
        return RunSummary(store_id, day, RunStatus.FAILED, error="cancelled by the Dask scheduler")
    try:
        summary = future.result()
    except Exception as e:
        logger.error("audit of %s %s failed on the cluster: %s", store_id, day, e)
        return RunSummary(store_id, day, RunStatus.FAILED, error=f"{type(e).__name__}: {e}")
    assert isinstance(summary, RunSummary)
    return summary
