"""``auditor threshold-report``: what each age threshold from 16 to 30 would mean."""

from __future__ import annotations

import csv
import json
from datetime import datetime
from typing import IO, TYPE_CHECKING

import click
from sqlalchemy.orm import Session

from auditor.audit.store import require_known_stores
from auditor.db.engine import database_errors
from auditor.threshold.figures import DEFAULT_NIGHTS, ThresholdReport, build_report
from auditor.threshold.inputs import load_inputs, read_model_card

if TYPE_CHECKING:
    from auditor.cli import AppContext

FORMATS = ("table", "csv", "json")
COLUMNS = (
    "threshold",
    "flags",
    "flags_per_night",
    "reviewed",
    "confirmed",
    "confirmed_share",
    "minors_flagged",
    "adults_flagged",
    "under_threshold",
    "cleared",
)


@click.command("threshold-report")
@click.option(
    "--nights",
    type=click.IntRange(1, 366),
    default=DEFAULT_NIGHTS,
    show_default=True,
    help="How many business dates, up to --until.",
)
@click.option(
    "--until",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="Last business date (YYYY-MM-DD). Default: the latest one audited.",
)
@click.option("--store", "store_ids", multiple=True, metavar="ID", help="Only this store.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@click.option(
    "-o",
    "--output",
    type=click.File("w", encoding="utf-8", lazy=True),
    default="-",
    help="Write here instead of standard output.",
)
@click.pass_obj
def threshold_command(
    app: AppContext,
    nights: int,
    until: datetime | None,
    store_ids: tuple[str, ...],
    fmt: str,
    output: IO[str],
) -> None:
    """For age thresholds 16 to 30: the review load and what the model card expects.

    Per threshold T, over the recent nights' succeeded audit runs: under threshold = audited
    alcohol sales with an estimated age under T; cleared = those whose till recorded an ID
    check (seen, scanned, or a birth date), which T does not flag; flags = under threshold -
    cleared; flags per night = flags / nights audited (the review load); confirmed share =
    among reviewed sales estimated under T, those whose latest decision on the threshold flag
    (under_age_threshold, no_id_check) is a confirmed violation; minors / adults flagged = the
    model card's expected shares of minors 10-17 and adults 25+ estimated under T. The
    configured threshold (the store's age_threshold with one --store, else
    audit.age_threshold) is marked, with what moving it would do. Changing it is a settings
    change, recorded with every audit run.
    """
    settings = app.settings
    engine = app.migrated_engine()
    with database_errors(engine.url), Session(engine) as session:
        require_known_stores(session, store_ids)
        inputs = load_inputs(
            session,
            nights=nights,
            until=until.date() if until else None,
            store_ids=list(store_ids),
        )
    configured = (
        settings.rules(store_ids[0]).age_threshold
        if len(set(store_ids)) == 1
        else settings.audit.age_threshold
    )
    report = build_report(inputs, configured=configured, card=read_model_card(settings.model_path))
    if fmt == "json":
        output.write(json.dumps(report.as_json_dict(), indent=2) + "\n")
    elif fmt == "csv":
        writer = csv.writer(output, lineterminator="\n")
        writer.writerow(COLUMNS)
        for row in report.rows:
            writer.writerow(["" if (v := getattr(row, c)) is None else v for c in COLUMNS])
    else:
        output.write(format_table(report))


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def format_table(report: ThresholdReport) -> str:
    i = report.inputs
    if i.first_night is None:
        head = "No audited night: run `auditor audit` first.\n"
    else:
        head = (
            f"{i.nights} nights audited from {i.first_night} to {i.last_night} "
            f"({i.store_nights} store-nights, stores {', '.join(i.stores)}); "
            f"configured threshold {report.configured}\n"
        )
        used = ", ".join(f"{t} ({n})" for t, n in i.run_thresholds.items())
        head += f"thresholds the runs used (store-nights): {used}\n"
        head += (
            f"age checks recorded on {i.with_checks} of {len(i.estimates)} sales with an "
            f"estimate; {len(i.cleared)} with an ID check count as cleared\n"
        )
    lines = [
        head,
        f"{'T':>3} {'under':>7} {'cleared':>7} {'flags':>7} {'/night':>7} {'reviewed':>8} "
        f"{'confirmed':>9} {'conf.%':>7} {'minors%':>8} {'adults%':>8}",
    ]
    for r in report.rows:
        per_night = "-" if r.flags_per_night is None else f"{r.flags_per_night:.1f}"
        mark = " <- configured" if r.threshold == report.configured else ""
        lines.append(
            f"{r.threshold:>3} {r.under_threshold:>7} {r.cleared:>7} {r.flags:>7} {per_night:>7} "
            f"{r.reviewed:>8} {r.confirmed:>9} "
            f"{_pct(r.confirmed_share):>7} {_pct(r.minors_flagged):>8} "
            f"{_pct(r.adults_flagged):>8}{mark}"
        )
    text = "\n".join(lines) + "\n"
    if report.changes:
        text += "\n" + "\n".join(report.changes) + "\n"
    if report.operating_point:
        point = report.operating_point
        text += (
            f"\nModel card operating point: threshold {point.get('threshold', 0):.1f} flags "
            f"{_pct(point.get('adults_flagged'))} of adults 25+ and "
            f"{_pct(point.get('minors_flagged'))} of minors.\n"
        )
    return text
