"""A night's store pages written by worker processes: the same files as in one process, the
same errors, nothing half written."""

from __future__ import annotations

import gc
import os
import weakref
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy.engine import Engine

from auditor.cli import main
from auditor.reports import write_night_reports
from auditor.reports.build import NightReport
from auditor.reports.render import write_atomic
from auditor.reports.workers import WorkerError, frozen_heap, in_workers, portable
from tests.reports.conftest import DAY, build_demo_chain, reports_settings

NOW = datetime(2024, 3, 2, 6, 0, tzinfo=UTC)


def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def night(engine: Engine, folder: Path, db_url: str, workers: int) -> NightReport:
    settings = reports_settings(folder, db_url, reports={"workers": workers})
    return write_night_reports(engine=engine, settings=settings, day=DAY, now=NOW)


def test_two_workers_write_the_files_one_process_writes(
    engine: Engine, tmp_path: Path, db_url: str
) -> None:
    build_demo_chain(engine, reports_settings(tmp_path, db_url))  # five stores, five cases
    one = night(engine, tmp_path / "one", db_url, workers=1)
    two = night(engine, tmp_path / "two", db_url, workers=2)

    written = files(tmp_path / "one" / "reports")
    assert written == files(tmp_path / "two" / "reports")
    assert len(written) > 10 and any(name.endswith("S1/C1.html") for name in written)
    assert not one.failed and not two.failed
    assert [p.relative_to(tmp_path / "one") for p in one.paths] == [
        p.relative_to(tmp_path / "two") for p in two.paths
    ]
    assert {s: sorted(p) for s, p in one.cashier_pages.items()} == {
        s: sorted(p) for s, p in two.cashier_pages.items()
    }
    # the same night again gives the same files
    again = night(engine, tmp_path / "again", db_url, workers=2)
    assert files(tmp_path / "again" / "reports") == written
    assert not again.failed


def test_a_page_that_fails_in_a_worker_is_reported_as_in_process(
    engine: Engine, tmp_path: Path, db_url: str
) -> None:
    build_demo_chain(engine, reports_settings(tmp_path, db_url))
    failures = {}
    for workers in (1, 2):
        folder = tmp_path / f"workers-{workers}"
        blocked = folder / "reports" / DAY.isoformat() / "S1"
        blocked.parent.mkdir(parents=True)
        blocked.write_text("not a folder")  # where S1's cashier pages go
        report = night(engine, folder, db_url, workers)
        assert set(report.failed) == {"S1"}
        failures[workers] = report.failed["S1"].replace(str(folder), "<folder>")
        # the other stores' pages and the index are written, whole
        assert {"S2", "S3", "S4"} <= set(report.store_pages) and report.index.is_file()
        assert not [p for p in folder.rglob("*") if p.name.endswith(".tmp")]
    assert failures[1] == failures[2]
    assert failures[2].startswith("FileExistsError: [Errno 17] File exists: '<folder>/reports/")

    # the command says which page is missing and why, and exits 1
    result = CliRunner().invoke(
        main,
        [
            "--config",
            str(tmp_path / "workers-2" / "auditor.toml"),
            "report",
            "--date",
            "2024-03-01",
        ],
    )
    assert result.exit_code == 1
    assert "Error: no page for store S1: FileExistsError: [Errno 17] File exists" in result.output


def test_a_page_written_whole_or_not_at_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    page = tmp_path / "S1.html"
    write_atomic(page, "old page")

    def full_disk(source: object, target: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(OSError, match="No space left"):
        write_atomic(page, "new page")
    assert page.read_text() == "old page"
    assert [p.name for p in tmp_path.iterdir()] == ["S1.html"]


# -- the pool ------------------------------------------------------------------------------------


class NeedsAReason(Exception):
    """An exception that does not survive pickling: it needs a keyword to be made."""

    def __init__(self, *, reason: str) -> None:
        super().__init__(f"cannot go on: {reason}")


STARTED: dict[str, int] = {}  # in a worker: the process that started it


def start(parent: int) -> None:
    STARTED["parent"] = parent


def task(item: str) -> str:
    if item == "bad":
        raise ValueError(f"store {item!r} is bad")
    if item == "odd":
        raise NeedsAReason(reason="no such till")
    if item == "dies":
        os._exit(3)
    return f"{item} in {'another' if STARTED['parent'] != os.getpid() else 'this'} process"


def run(items: list[str], **kwargs: Any) -> list[str]:
    return list(
        in_workers(task, items, workers=2, initializer=start, initargs=(os.getpid(),), **kwargs)
    )


def test_results_come_in_order_from_other_processes() -> None:
    assert run(["a", "b", "c", "d"]) == [f"{x} in another process" for x in "abcd"]


def test_an_error_in_a_worker_is_raised_as_it_was() -> None:
    with pytest.raises(ValueError, match="^store 'bad' is bad$"):
        run(["a", "bad", "c"])


def test_an_error_that_cannot_cross_is_named() -> None:
    assert str(portable(NeedsAReason(reason="x"))) == "NeedsAReason: cannot go on: x"
    error = ValueError("plain")
    assert portable(error) is error
    with pytest.raises(WorkerError, match="^NeedsAReason: cannot go on: no such till$"):
        run(["a", "odd"])


def test_a_worker_that_dies_is_an_error_naming_what_it_was_doing() -> None:
    with pytest.raises(WorkerError, match="stopped unexpectedly \\(till dies\\)"):
        run(["dies"], what=lambda item: f"till {item}")


def watched(thing: object) -> bool:
    """Whether the cyclic garbage collector's passes see ``thing``."""
    return any(o is thing for o in gc.get_objects())


def test_the_heap_is_frozen_for_the_work_and_watched_again_after() -> None:
    class Cycle:
        def __init__(self) -> None:
            self.me = self

    gc.unfreeze()
    left = Cycle()  # garbage from before the work: collected, not kept frozen
    gone = weakref.ref(left)
    del left
    kept = Cycle()  # alive through the work
    with frozen_heap():
        assert gone() is None
        assert gc.get_freeze_count() > 0 and not watched(kept)
        assert watched(Cycle())  # made during the work: the collector still sees it
    assert gc.get_freeze_count() == 0 and watched(kept)


def test_a_heap_frozen_by_the_caller_stays_frozen() -> None:
    class Kept:
        pass

    kept = Kept()
    gc.freeze()
    try:
        with frozen_heap():
            assert not watched(kept)
        assert not watched(kept) and gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
