"""``auditor audit``, ``auditor flags``, ``auditor schedule``: audit nights, export verdicts, run
the nightly job on schedule."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import IO, TYPE_CHECKING

import click
from pydantic import ValidationError
from sqlalchemy.orm import Session
from tqdm import tqdm

from auditor.audit.business_day import dates_between, previous_business_date
from auditor.audit.cluster import audit_nights_on_dask, check_scheduler
from auditor.audit.examine import FrameProgress
from auditor.audit.export import FORMATS, NoAuditResults, night_verdicts, write_verdicts
from auditor.audit.run import AuditTools, audit_nights
from auditor.audit.store import night_is_empty, require_known_stores
from auditor.audit.summary import RunSummary
from auditor.db.engine import database_errors
from auditor.settings import AuditSettings, Settings
from auditor.vocabulary import RunStatus

if TYPE_CHECKING:
    from auditor.cli import AppContext

DATE = click.DateTime(formats=["%Y-%m-%d"])


def _day(value: datetime | None) -> date | None:
    return value.date() if value is not None else None


@contextmanager
def _frames_bar(store_id: str, day: date) -> Iterator[FrameProgress]:
    """A progress bar over a store-night's frames, on stderr when it is a terminal."""
    with tqdm(desc=f"{store_id} {day}: frames", unit="frame", disable=None, leave=False) as bar:

        def advance(done: int, total: int) -> None:
            if bar.total != total:
                bar.reset(total=total)
            bar.update(done - bar.n)

        yield advance


@contextmanager
def _nights_bar(total: int) -> Iterator[Callable[[RunSummary], None]]:
    """A progress bar over store-nights audited elsewhere, on stderr when it is a terminal."""
    with tqdm(total=total, desc="store-nights", unit="night", disable=None, leave=False) as bar:

        def advance(_summary: RunSummary) -> None:
            bar.update()

        yield advance


def _with_executor(settings: Settings, executor: str | None, scheduler: str | None) -> Settings:
    """The settings with --executor and --scheduler in force, checked like the settings file."""
    if executor is None and scheduler is None:
        return settings
    executor = executor or settings.audit.executor
    if scheduler is not None and executor != "dask":
        raise click.UsageError("--scheduler is for --executor dask")
    values = {"executor": executor, "scheduler": scheduler or settings.audit.scheduler}
    try:
        audit = AuditSettings.model_validate({**settings.audit.model_dump(), **values})
    except ValidationError as e:
        message = e.errors()[0]["msg"].removeprefix("Value error, ")
        raise click.UsageError(message) from None
    return settings.model_copy(update={"audit": audit})


def _stores(app: AppContext, asked: tuple[str, ...]) -> list[str]:
    with Session(app.engine) as session:
        return require_known_stores(session, asked)


def _with_data(
    app: AppContext, settings: Settings, nights: list[tuple[str, date]]
) -> list[tuple[str, date]]:
    """The store-nights that have a sale or a snapshot; the others are named on stderr."""
    with database_errors(app.engine.url), Session(app.engine) as session:
        empty = [
            (store_id, day)
            for store_id, day in nights
            if night_is_empty(session, settings=settings, store_id=store_id, day=day)
        ]
    for store_id, day in empty:
        click.echo(
            f"{store_id} {day}: no sales and no frames; nothing recorded "
            "(--allow-empty to record an empty night)",
            err=True,
        )
    skipped = set(empty)
    return [night for night in nights if night not in skipped]


@click.command("audit")
@click.option("--date", "day", type=DATE, help="Business date to audit (YYYY-MM-DD).")
@click.option(
    "--since",
    type=DATE,
    help="Audit every business date from this one through --date (default: yesterday).",
)
@click.option(
    "--store",
    "store_ids",
    multiple=True,
    metavar="ID",
    help="Audit this store (repeat for more). Default: every store in the database.",
)
@click.option(
    "--executor",
    type=click.Choice(["local", "dask"]),
    help="Where to audit: in this process, or on a Dask cluster. Default: [audit] executor.",
)
@click.option(
    "--scheduler",
    metavar="ADDRESS",
    help="The Dask scheduler for --executor dask, e.g. tcp://10.0.0.5:8786. "
    "Default: [audit] scheduler.",
)
@click.option(
    "--allow-empty",
    is_flag=True,
    help="Also audit store-nights with no sales and no frames, recording them as audited "
    "nights without sales (a store closed that day).",
)
@click.pass_obj
def audit_command(
    app: AppContext,
    day: datetime | None,
    since: datetime | None,
    store_ids: tuple[str, ...],
    executor: str | None,
    scheduler: str | None,
    allow_empty: bool,
) -> None:
    """Audit the alcohol sales of each store's business day against the checkout snapshots.

    A business day is the store's local calendar day (00:00 to 24:00 in its time zone). Without
    --date, each store's yesterday. For each sale with an alcohol line: the frames of its
    register in the window around it, the shopper's face, an age estimate, and flags
    (birth_date_under_age, id_contradicts_face, no_id_check, under_age_threshold, no_frame,
    no_face, unreadable_frame, outside_legal_hours, pos_error), by each store's own legal age,
    threshold and legal hours.

    A store-night with no sales and no frames in the database (a date typed wrong, data not
    ingested yet) is not audited and nothing is recorded: it is named, and the command exits 1
    when no store-night was audited at all (also when the database has no store yet).
    --allow-empty records such nights as audited nights without sales, as the nightly job does.

    Auditing a store-night again replaces its results in one transaction, and its report
    pages already written are written again. A store-night being audited elsewhere is
    refused, and so is one already audited whose frames the retention purge removed (its
    results are kept). Exits 1 if any store-night failed or was refused.

    With --executor dask each store-night is a task on the Dask cluster whose scheduler is at
    --scheduler; its workers need the database, the snapshot files and the model at the same
    paths as here.
    """
    settings = _with_executor(app.settings, executor, scheduler)
    app.migrated_engine()
    stores = _stores(app, store_ids)
    last, first = _day(day), _day(since)
    if first is not None and last is not None and first > last:
        raise click.BadParameter(f"{first} is after --date {last}", param_hint="--since")
    now = datetime.now(UTC)
    nights = []
    for store_id in stores:
        end = last or previous_business_date(now, settings.store_zone(store_id))
        days = dates_between(first, end) if first is not None else [end]
        nights += [(store_id, d) for d in days]
    if not nights:
        if not allow_empty:
            raise click.ClickException(
                "nothing to audit: no store in the database (ingest a POS export first)"
            )
        click.echo("nothing to audit: no store in the database", err=True)
        return
    if not allow_empty:
        nights = _with_data(app, settings, nights)
        if not nights:
            raise click.ClickException("nothing audited: no store-night has sales or frames")
    if settings.audit.executor == "dask":
        with _nights_bar(len(nights)) as on_done:
            summaries = audit_nights_on_dask(settings=settings, nights=nights, on_done=on_done)
    else:
        summaries = audit_nights(
            engine=app.engine,
            settings=settings,
            tools=AuditTools.load(settings),
            nights=nights,
            progress_for=_frames_bar,
        )
    failed = [s for s in summaries if s.status != RunStatus.SUCCEEDED]
    for summary in summaries:
        if summary in failed:
            click.echo(f"Error: {summary}", err=True)
        else:
            click.echo(str(summary))
    if len(failed) < len(summaries):
        from auditor.reports.build import rewrite_stale_nights  # loads pandas and the charts

        for report in rewrite_stale_nights(settings, app.engine):
            click.echo(f"report pages written again: {report.index.parent}")
    if failed:
        raise click.ClickException(f"{len(failed)} of {len(summaries)} store-nights not audited")


@click.command("flags")
@click.option("--date", "day", type=DATE, required=True, help="Business date (YYYY-MM-DD).")
@click.option(
    "--store",
    "store_ids",
    multiple=True,
    metavar="ID",
    help="Only this store (repeat for more). Default: every store in the database; those "
    "not audited that night are named on standard error.",
)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="csv", show_default=True)
@click.option(
    "-o",
    "--output",
    type=click.File("w", encoding="utf-8", lazy=True),
    default="-",
    help="Write here instead of standard output.",
)
@click.pass_obj
def flags_command(
    app: AppContext, day: datetime, store_ids: tuple[str, ...], fmt: str, output: IO[str]
) -> None:
    """Export the night's verdicts: one row per audited alcohol sale.

    Columns: store_id, register_id, cashier_id, receipt_id, sold_at (store-local ISO 8601 with
    offset), estimated_age and age_spread (years, 0.1; empty when no face was estimated),
    legal_age and age_threshold (the store's rules the night's audit used), p_under_legal and
    p_under_threshold (the probabilities of a shopper under them, 0.001; empty without a
    face), challenged (true: estimated under the threshold with an ID check recorded, so not
    flagged), flags (';'-separated kinds in CSV, empty for a clean sale; a list in JSON).
    Exits 1 when a store asked for, or every store, has no audit result for the date.
    """
    engine = app.migrated_engine()
    business_day = day.date()
    stores = _stores(app, store_ids)
    with Session(engine) as session:
        verdicts = night_verdicts(
            session, day=business_day, settings=app.settings, store_ids=stores
        )
    if verdicts.not_audited and (store_ids or not verdicts.stores):
        raise NoAuditResults(
            f"no audit result for {business_day} at store {', '.join(verdicts.not_audited)}: "
            f"run `auditor audit --date {business_day}`"
        )
    if verdicts.not_audited:
        click.echo(f"not audited on {business_day}: {', '.join(verdicts.not_audited)}", err=True)
    write_verdicts(verdicts.rows, output, fmt)


@click.command("schedule")
@click.pass_obj
def schedule_command(app: AppContext) -> None:
    """Run the nightly audit on schedule until stopped (SIGTERM or Ctrl-C).

    At the [schedule] cron expression (default "30 2 * * *") in the schedule's time zone
    (default: the chain's), audit every store's previous business day, then the reports.
    Never two runs at once; a run missed by a few hours (machine asleep) runs once when it can;
    nights missed while this was not running need `auditor audit --since DATE`.
    """
    from auditor.schedule import run_scheduler, schedule_zone

    settings = app.settings
    engine = app.migrated_engine()
    # A missing model or an unreachable cluster is an error now, not at 02:30.
    if settings.audit.executor == "dask":
        assert settings.audit.scheduler is not None  # checked with the settings
        check_scheduler(settings.audit.scheduler)
    else:
        AuditTools.load(settings)

    def started(next_time: datetime | None) -> None:
        zone = schedule_zone(settings)
        click.echo(
            f"nightly audit scheduled ({settings.schedule.cron!r} in {zone}); "
            f"next run {next_time.isoformat() if next_time else 'never'}; stop with SIGTERM",
            err=True,
        )

    run_scheduler(settings, engine, on_start=started)
    click.echo("scheduler stopped", err=True)
