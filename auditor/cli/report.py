"""``auditor report``: write the HTML reports of a night."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import click
from sqlalchemy.orm import Session

from auditor.audit.store import require_known_stores
from auditor.db.engine import database_errors
from auditor.db.queries import night_has_runs

if TYPE_CHECKING:
    from auditor.cli import AppContext

DATE = click.DateTime(formats=["%Y-%m-%d"])


@click.command("report")
@click.option("--date", "day", type=DATE, required=True, help="Business date (YYYY-MM-DD).")
@click.option(
    "--store",
    "store_ids",
    multiple=True,
    metavar="ID",
    help="Write only this store's page (repeat for more). Default: every store in the database.",
)
@click.pass_obj
def report_command(app: AppContext, day: datetime, store_ids: tuple[str, ...]) -> None:
    """Write the night's HTML reports under the report directory ([paths] report_dir).

    <report_dir>/<date>/index.html ranks the chain's stores by risk: alcohol sales, frame
    coverage, faces found, flags by kind, flag rate and its change against the stores'
    30-night average, open reviews, confirmed violations and the cashiers most at risk.
    <report_dir>/<date>/<store>.html shows a store's night: headline figures, the flagged sales
    with the face evidence and review status, the cashiers' scorecard over the 30 nights, camera
    problems per register, charts, what each age group buys and the settings the audit used;
    <report_dir>/<date>/<store>/<cashier>.html a cashier's weeks and flagged sales.
    <report_dir>/index.html lists the nights.

    Each page is one HTML file that works offline. A store not audited that night, or whose
    audit failed, gets a page that says so. A night no store's audit was ever run for is an
    error: nothing is written and the list of nights stays as it was. Prints the files written;
    exits 1 if a store's page could not be written (the others are).
    """
    from auditor.reports import write_night_reports

    engine = app.migrated_engine()
    business_day = day.date()
    with database_errors(engine.url), Session(engine) as session:
        require_known_stores(session, store_ids)  # a mistyped store first, before the night
        audited = night_has_runs(session, day=business_day)
    if not audited:
        raise click.ClickException(
            f"no audit of {business_day}: run `auditor audit --date {business_day}` first"
        )
    report = write_night_reports(
        engine=engine,
        settings=app.settings,
        day=business_day,
        store_ids=list(store_ids) or None,
    )
    for path in report.paths:
        click.echo(str(path))
    if report.failed:
        raise click.ClickException(
            "no page for store "
            + "; ".join(f"{store}: {reason}" for store, reason in report.failed.items())
        )
