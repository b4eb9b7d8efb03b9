"""Time a night's reports: one store-night of 1,000 sales, or a chain of many such stores.

    python benchmarks/reports.py                    # 1 store: 1,000 sales, 30 nights before
    python benchmarks/reports.py --sales 5000 --nights 30 --repeat 5
    python benchmarks/reports.py --stores 100 --workers 1 2   # 100 stores, 1 and 2 processes
    python benchmarks/reports.py --stores 1000 --keep DIR --build-only   # build now, time later

The store-night is built with the test factories (``tests/reports/chain.py``): alcohol sales
from 08:00 to 23:30 by 6 cashiers at 4 registers, ages around 40, a face crop (112 px JPEG)
for each under-age sale, the same again on each of the nights before, in a temporary SQLite
database. With ``--stores N`` the other N - 1 stores are copies of the first (its rows under
another store id), so every store page costs the same.

Timed: what ``auditor report --date D`` does (each store's page and cashier pages, the chain
index, the purchase mix, the list of nights), end to end, by ``[reports] workers`` processes
(each given to ``--workers``; default: one per CPU core), as wall time and as CPU time of the
process and its workers; then one store page split into its stages. Every figure is printed
with the load average, as the machine may be busy with other work.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from multiprocessing import forkserver
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' factories

from auditor.db import make_engine  # noqa: E402
from auditor.db.migrations import upgrade  # noqa: E402
from auditor.db.models import AuditRun, Cashier, Flag, Register, Sale, SaleLine, SaleVerdict  # noqa: E402
from auditor.reports import build, charts, figures, queries  # noqa: E402
from auditor.reports.build import write_night_reports  # noqa: E402
from auditor.reports.render import render  # noqa: E402
from auditor.settings import Settings  # noqa: E402
from auditor.vocabulary import CAMERA_KINDS, FlagKind  # noqa: E402
from tests.factories import make_settings  # noqa: E402
from tests.reports.chain import ResultsBuilder, generated_night  # noqa: E402

DAY = date(2024, 3, 1)
NOW = datetime(2024, 3, 2, 6, tzinfo=UTC)  # the same for every run: the same files
CHAIN = 1000  # the chain size the figures are projected to


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sales", type=int, default=1000, help="alcohol sales a store-night")
    parser.add_argument("--nights", type=int, default=30, help="nights before, same size")
    parser.add_argument("--stores", type=int, default=1, help="stores (copies of the first)")
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[None], help="[reports] workers to time"
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs of each (one store)")
    parser.add_argument("--keep", type=Path, help="build the database in this folder, keep it")
    parser.add_argument(
        "--build-only", action="store_true", help="with --keep: build the database, time nothing"
    )
    args = parser.parse_args()
    if args.build_only and args.keep is None:
        parser.error("--build-only builds a database to time later: give it --keep DIR")

    with tempfile.TemporaryDirectory() as temporary:
        folder = args.keep or Path(temporary)
        folder.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{folder / 'auditor.db'}"
        engine = make_engine(url)
        started = time.perf_counter()
        built = build_chain(engine, url, args.stores, args.sales, args.nights)
        print(
            f"{'found' if not built else 'built'} {args.stores} store(s) x {args.nights + 1} "
            f"nights of {args.sales:,} alcohol sales in {time.perf_counter() - started:.1f} s "
            f"(SQLite, {folder})"
        )
        if args.build_only:
            engine.dispose()
            return
        for workers in args.workers:
            time_night(engine, url, folder, args, workers)
        stages = store_page_stages(engine, make_settings(folder / "stages", database_url=url))
        print(
            "one store page by stage (CPU s): "
            + ", ".join(f"{name} {seconds:.2f}" for name, seconds in stages.items())
        )
        engine.dispose()


def build_chain(engine: Engine, url: str, stores: int, sales: int, nights: int) -> bool:
    """S1 with its nights, and the stores S2... as copies of it; False if they were there."""
    upgrade(url)
    with engine.connect() as c:
        have = c.execute(sa.text("SELECT count(*) FROM stores")).scalar_one()
    if have >= stores:
        return False
    builder = ResultsBuilder(engine)
    if have == 0:
        builder.store("S1", "Berlin Mitte", "Europe/Berlin")
        for n in range(nights, -1, -1):
            generated_night(builder, "S1", DAY - timedelta(days=n), sales, seed=n)
        have = 1
    for number in range(have + 1, stores + 1):
        builder.store(f"S{number}", f"Store {number}", "Europe/Berlin")
        copy_store(engine, "S1", f"S{number}", offset=(number - 1) * 10_000_000)
    return True


def copy_store(engine: Engine, source: str, target: str, *, offset: int) -> None:
    """Every row of store ``source`` again under ``target``, its ids moved up by ``offset``."""
    runs = sa.select(AuditRun.id).where(AuditRun.store_id == source)
    sales = sa.select(Sale.id).where(Sale.store_id == source)
    copies = [
        (Register, Register.store_id == source),
        (Cashier, Cashier.store_id == source),
        (Sale, Sale.store_id == source),
        (SaleLine, SaleLine.sale_id.in_(sales)),
        (AuditRun, AuditRun.store_id == source),
        (SaleVerdict, SaleVerdict.run_id.in_(runs)),
        (Flag, Flag.run_id.in_(runs)),
    ]
    with engine.begin() as c:
        for model, rows in copies:
            table: Any = model.__table__
            values = []
            for column in table.columns:
                if column.name == "store_id":
                    values.append(sa.literal(target, column.type))
                elif column.name in ("sale_id", "run_id") or (
                    column.name == "id" and model is not Register
                ):
                    values.append(column + offset)
                else:
                    values.append(column)
            names = [column.name for column in table.columns]
            c.execute(sa.insert(table).from_select(names, sa.select(*values).where(rows)))


@contextmanager
def cpu_seconds() -> Iterator[list[float]]:
    """CPU seconds of this process (and of the children it waited for)."""
    found: list[float] = []

    def now() -> float:
        mine = resource.getrusage(resource.RUSAGE_SELF)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return mine.ru_utime + mine.ru_stime + children.ru_utime + children.ru_stime

    started = now()
    yield found
    found.append(now() - started)


class WorkerCpu:
    """CPU seconds of the worker processes (the fork server's children), sampled from /proc
    while they run: they are not this process's children, so its resource usage leaves them
    out. Linux only; the last moments of a worker before it ends are missed."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.watch, daemon=True)

    def __enter__(self) -> WorkerCpu:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join()

    @property
    def total(self) -> float:
        return sum(self.seconds.values())

    def watch(self) -> None:
        tick = os.sysconf("SC_CLK_TCK")
        while not self.stop.wait(0.2):
            server = getattr(forkserver._forkserver, "_forkserver_pid", None)
            for stat in Path("/proc").glob("[0-9]*/stat"):
                try:
                    fields = stat.read_text().rsplit(")", 1)[1].split()
                except (OSError, IndexError):
                    continue
                if server is not None and int(fields[1]) == server:  # state, ppid, ...
                    self.seconds[stat.parent.name] = (int(fields[11]) + int(fields[12])) / tick


def load() -> str:
    return "load average " + " ".join(f"{v:.1f}" for v in os.getloadavg())


def time_night(engine: Engine, url: str, folder: Path, args: Any, workers: int | None) -> None:
    """Write the night's reports with ``workers`` processes; print what it took."""
    sections = {"reports": {"workers": workers}} if workers else {}
    settings = make_settings(
        folder / f"workers-{workers or 'default'}", database_url=url, **sections
    )
    runs = 1 if args.stores > 1 else args.repeat
    walls, cpus, loads = [], [], [load()]
    for _ in range(runs):
        with cpu_seconds() as cpu, WorkerCpu() as workers_cpu:
            started = time.perf_counter()
            report = write_night_reports(engine=engine, settings=settings, day=DAY, now=NOW)
            walls.append(time.perf_counter() - started)
        cpus.append(cpu[0] + workers_cpu.total)
        loads.append(load())
    assert not report.failed, report.failed
    pages = len(report.store_pages)
    cashier_pages = sum(len(p) for p in report.cashier_pages.values())
    wall, cpu_s = min(walls), cpus[walls.index(min(walls))]
    size = sum(p.stat().st_size for p in [*report.store_pages.values(), *report.cashier_paths])
    used = min(settings.report_workers, args.stores)  # one store: in this process
    print(
        f"auditor report --date {DAY}, workers={used}: {pages} store pages "
        f"and {cashier_pages} cashier pages ({size / 2**20:,.0f} MiB) in {wall:.1f} s"
        + (f" (best of {runs}, median {statistics.median(walls):.1f} s)" if runs > 1 else "")
        + f"; CPU {cpu_s:.1f} s (this process and the workers)"
    )
    per_page = wall / pages
    print(
        f"  {pages / wall:.2f} store pages/s, {per_page:.2f} s per store page "
        f"(CPU {cpu_s / pages:.2f} s); {CHAIN:,} stores: "
        + (
            f"{wall / 60:.1f} min"
            if pages == CHAIN
            else f"{CHAIN * per_page / 60:.1f} min projected from {pages}"
        )
        + f"; {loads[0]} at the start, {loads[-1]} at the end"
    )


def store_page_stages(engine: Engine, settings: Settings) -> dict[str, float]:
    """CPU seconds spent reading, working out the figures, drawing and rendering S1's page,
    and on its cashier pages (reading, figures and HTML)."""
    stages: dict[str, float] = {}
    nights = settings.reports.trend_nights
    zone = settings.store_zone("S1")

    started = time.process_time()
    with Session(engine) as session:
        window = queries.chain_window(session, day=DAY, nights=nights, store_ids=["S1"])
        (row,) = figures.store_rows(
            stores=window.stores, runs=window.runs, verdicts=window.verdicts, day=DAY, nights=nights
        )
        assert row.run.current is not None
        evidence = queries.store_evidence(
            session, store_id="S1", run_id=int(row.run.current["id"]), first=window.first, day=DAY
        )
    stages["read"] = time.process_time() - started

    started = time.process_time()
    page = figures.store_night(
        row=row,
        day=DAY,
        nights=nights,
        min_sales=settings.reports.min_sales_to_rank,
        zone=zone,
        runs=window.runs,
        verdicts=window.verdicts,
        flags=evidence.flags,
        lines=evidence.lines,
        reviews=evidence.reviews,
        cashiers=evidence.cashiers,
    )
    stages["figures"] = time.process_time() - started

    started = time.process_time()
    drawn = {
        "ages": charts.age_histogram(page.ages, page.threshold),
        "hours": charts.flags_by_hour(page.hourly),
        "trend": charts.nightly_trend(page.trend),
        "challenges": charts.challenge_trend(page.trend),
    }
    stages["charts"] = time.process_time() - started

    started = time.process_time()
    render(
        "report/store.html",
        chain="bench",
        page=page,
        charts=drawn,
        enough=dict.fromkeys(drawn, True),
        mix_href=None,
        cashier_links={},
        camera_kinds=[k for k in FlagKind if k in CAMERA_KINDS],
        kinds=list(FlagKind),
        nav={"index": "index.html", "previous": None, "next": None, "nights": "../index.html"},
        generated_at=datetime.now(zone),
        review_links={},
    )
    stages["html"] = time.process_time() - started

    started = time.process_time()
    with Session(engine) as session:
        build.cashier_pages(session=session, settings=settings, window=window, page=page, now=NOW)
    stages[f"{len(page.scorecard)} cashier pages"] = time.process_time() - started
    return stages


if __name__ == "__main__":
    main()
