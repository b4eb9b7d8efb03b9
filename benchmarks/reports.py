"""Time the reports of a 1,000-sale store-night on a temporary SQLite database.

    python benchmarks/reports.py                      # 1,000 sales tonight, 30 nights before
    python benchmarks/reports.py --sales 5000 --nights 30 --repeat 5

The store-night is built with the test factories (``tests/reports/chain.py``): alcohol sales
from 08:00 to 23:30 by 6 cashiers at 4 registers, ages around 40, a face crop (112 px JPEG)
for each under-age sale, the same again on each of the nights before. Timed: what
``auditor report --date D --store S1`` does (read, figures, four charts, HTML, write), and the
store page alone split into its stages.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' factories

from auditor.db import make_engine  # noqa: E402
from auditor.db.migrations import upgrade  # noqa: E402
from auditor.reports import charts, figures, queries  # noqa: E402
from auditor.reports.build import write_night_reports  # noqa: E402
from auditor.reports.render import render  # noqa: E402
from auditor.vocabulary import CAMERA_KINDS, FlagKind  # noqa: E402
from tests.factories import make_settings  # noqa: E402
from tests.reports.chain import ResultsBuilder, generated_night  # noqa: E402

DAY = date(2024, 3, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sales", type=int, default=1000, help="alcohol sales tonight")
    parser.add_argument("--nights", type=int, default=30, help="nights before, same size")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'auditor.db'}"
        upgrade(url)
        engine = make_engine(url)
        settings = make_settings(Path(folder), database_url=url)
        builder = ResultsBuilder(engine)
        builder.store("S1", "Berlin Mitte", "Europe/Berlin")
        started = time.perf_counter()
        for n in range(args.nights, -1, -1):
            generated_night(builder, "S1", DAY - timedelta(days=n), args.sales, seed=n)
        built = time.perf_counter() - started
        print(
            f"built {args.nights + 1} nights of {args.sales:,} alcohol sales in {built:.1f} s "
            f"(SQLite, {folder})"
        )

        totals = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            report = write_night_reports(
                engine=engine, settings=settings, day=DAY, store_ids=["S1"], now=datetime.now(UTC)
            )
            totals.append(time.perf_counter() - started)
        page = report.store_pages["S1"]
        print(
            f"auditor report --date {DAY} --store S1: best {min(totals):.2f} s, "
            f"median {statistics.median(totals):.2f} s over {args.repeat} runs; "
            f"store page {page.stat().st_size / 1024:.0f} KiB"
        )
        stages = store_page_stages(engine, settings)
        print(
            "store page by stage: "
            + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in stages.items())
        )
        engine.dispose()


def store_page_stages(engine, settings) -> dict[str, float]:  # noqa: ANN001
    """Seconds spent reading, working out the figures, drawing and rendering one store page."""
    stages: dict[str, float] = {}
    nights = settings.reports.trend_nights
    zone = settings.store_zone("S1")

    started = time.perf_counter()
    with Session(engine) as session:
        window = queries.chain_window(session, day=DAY, nights=nights, store_ids=["S1"])
        (row,) = figures.store_rows(
            stores=window.stores, runs=window.runs, verdicts=window.verdicts, day=DAY, nights=nights
        )
        evidence = queries.store_evidence(
            session, store_id="S1", run_id=int(row.run.current["id"]), first=window.first, day=DAY
        )
    stages["read"] = time.perf_counter() - started

    started = time.perf_counter()
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
    stages["figures"] = time.perf_counter() - started

    started = time.perf_counter()
    drawn = {
        "ages": charts.age_histogram(page.ages, page.threshold),
        "hours": charts.flags_by_hour(page.hourly),
        "trend": charts.nightly_trend(page.trend),
        "challenges": charts.challenge_trend(page.trend),
    }
    stages["charts"] = time.perf_counter() - started

    started = time.perf_counter()
    render(
        "report/store.html",
        chain="bench",
        page=page,
        charts=drawn,
        enough=dict.fromkeys(drawn, True),
        cashier_links={},
        camera_kinds=[k for k in FlagKind if k in CAMERA_KINDS],
        kinds=list(FlagKind),
        nav={"index": "index.html", "previous": None, "next": None, "nights": "../index.html"},
        generated_at=datetime.now(zone),
        review_links={},
    )
    stages["html"] = time.perf_counter() - started
    return stages


if __name__ == "__main__":
    main()
