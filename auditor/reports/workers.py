"""Run a night's store work in worker processes, in order, with errors as in one process.

:func:`in_workers` maps a task over items in a pool of processes and yields the results in
the order of the items, as a loop would. Each worker runs ``initializer(*initargs)`` once, which
is where it opens what it needs of its own (its database engine: a session, a connection or an
engine never crosses from one process to another). The workers are forked from a fork server
(``spawn`` where there is none) that has imported the reports already, so a pool starts in a
fraction of a second and forks no thread of the calling process.

An exception raised by a task is raised again in the calling process, the same type with the
same message, once the tasks already running have finished; the tasks not yet started are
dropped. An exception that could not cross back whole (it does not pickle) becomes a
:class:`WorkerError` naming its type and message, and a worker that dies (killed, out of
memory) stops the whole map with a :class:`WorkerError` too.

A store's work makes many short-lived Python objects (rows read, frames, chart artists), so the
cyclic garbage collector runs often, and each of its full passes walks every object alive: the
modules of pandas, matplotlib and SQLAlchemy too, about a fifth of a store's CPU time.
:func:`frozen_heap` moves what is alive before the work out of its view (``gc.freeze``); what the
work makes is collected as usual.
"""

from __future__ import annotations

import gc
import multiprocessing
import pickle
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from typing import Any, TypeVar

from auditor.errors import AuditorError

Item = TypeVar("Item")
Result = TypeVar("Result")

PRELOAD = ["auditor.reports.build"]  # what every worker needs, imported once by the fork server


class WorkerError(AuditorError):
    """A worker process failed in a way its own exception cannot tell."""


def freeze_heap() -> None:
    """Collect what is garbage now, then keep every object still alive out of the collector's
    passes from here on (for a process that does one kind of work until it ends)."""
    gc.collect()
    gc.freeze()


@contextmanager
def frozen_heap() -> Iterator[None]:
    """:func:`freeze_heap` for the length of the block, then the objects are watched again
    (a long-lived process, such as the scheduler's, keeps collecting them after the night).
    A heap frozen already (by whoever runs this) is left as it is, and stays frozen after."""
    if gc.get_freeze_count():
        yield
        return
    freeze_heap()
    try:
        yield
    finally:
        gc.unfreeze()


def pool_context() -> multiprocessing.context.BaseContext:
    """Worker processes forked from a fork server where there is one, else spawned."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(PRELOAD)
        return context
    return multiprocessing.get_context("spawn")


def portable(error: BaseException) -> BaseException:
    """``error`` if it survives the trip to another process (pickled and read back as the
    same type with the same message), else a :class:`WorkerError` that says what it was."""
    try:
        copy = pickle.loads(pickle.dumps(error))
    except Exception:
        copy = None
    if type(copy) is type(error) and str(copy) == str(error):
        return error
    return WorkerError(f"{type(error).__name__}: {error}")


class _Task:
    """``function`` for a pool: its exceptions made :func:`portable` before they leave."""

    def __init__(self, function: Callable[[Any], Any]) -> None:
        self.function = function

    def __call__(self, item: Any) -> Any:
        try:
            return self.function(item)
        except Exception as e:
            carried = portable(e)
            if carried is e:
                raise
            raise carried from None


def in_workers(
    function: Callable[[Item], Result],
    items: Iterable[Item],
    *,
    workers: int,
    initializer: Callable[..., None],
    initargs: Sequence[Any] = (),
    what: Callable[[Item], str] = str,
) -> Iterator[Result]:
    """``function(item)`` for each item in ``workers`` processes, the results in the items'
    order. ``function`` and ``initializer`` must be importable module-level functions, and a
    script that calls this must do so under ``if __name__ == "__main__":`` (each worker
    imports it, as multiprocessing does); ``what(item)`` names an item in the error of a
    worker that died on it."""
    items = list(items)
    pool = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=pool_context(),
        initializer=initializer,
        initargs=tuple(initargs),
    )
    finished = False
    try:
        task = _Task(function)
        futures: list[Future[Result]] = [pool.submit(task, item) for item in items]
        for item, future in zip(items, futures, strict=True):
            try:
                result = future.result()
            except BrokenProcessPool as e:
                raise WorkerError(
                    f"a report worker process stopped unexpectedly ({what(item)}): {e}"
                ) from e
            yield result
        finished = True
    finally:
        pool.shutdown(wait=True, cancel_futures=not finished)
