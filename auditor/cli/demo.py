"""``auditor demo``: build a demo chain from scratch and run the nightly audit on it."""

from __future__ import annotations

import csv
import io
import time
from collections import Counter
from collections.abc import Sequence
from contextlib import redirect_stderr, redirect_stdout
from datetime import date, datetime
from pathlib import Path
from typing import IO

import click
import sqlalchemy as sa
from sqlalchemy.orm import Session
from tqdm import tqdm

from auditor.db import make_engine
from auditor.db.models import Sale, SaleVerdict
from auditor.db.queries import current_run_ids
from auditor.demo.build import (
    BuiltDemo,
    plan_demo,
    prepare_folder,
    read_truth,
    write_demo,
    write_settings,
)
from auditor.demo.chain import (
    DAMAGED,
    DST_DAY,
    EMPTY,
    FACE,
    MISSED,
    STORES,
    TWO_FACES,
    DemoSpec,
    store_plans,
)
from auditor.demo.summary import compare, describe
from auditor.settings import Settings, load_settings

DATE = click.DateTime(formats=["%Y-%m-%d"])
LOG_FILE = "demo.log"
FLAGS_DIR = "flags"

# A command run by the demo: a label for the progress bar, the arguments after --config.
Step = tuple[str, tuple[str | Path, ...]]


def _shown(path: Path) -> str:
    """A path as the user would type it: relative to the working folder when under it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


class _Commands:
    """Runs ``auditor --config <demo settings> ARGS...`` in this process, output to the log."""

    def __init__(self, root: click.Command, settings_path: Path, log: IO[str]) -> None:
        self.root = root
        self.settings_path = settings_path
        self.log = log

    def get(self, name: str) -> click.Command | None:
        return self.root.commands.get(name) if isinstance(self.root, click.Group) else None

    def __call__(self, *args: str | Path) -> None:
        words = [str(a) for a in args]
        self.log.write(f"$ auditor --config {self.settings_path} {' '.join(words)}\n")
        output = io.StringIO()
        try:
            with redirect_stdout(output), redirect_stderr(output):
                self.root.main(
                    ["--config", str(self.settings_path), *words],
                    prog_name="auditor",
                    standalone_mode=False,
                )
        except click.ClickException as e:
            raise click.ClickException(
                f"auditor {' '.join(words[:2])}: {e.format_message()} "
                f"(the commands' output is in {_shown(Path(self.log.name))})"
            ) from e
        finally:
            self.log.write(output.getvalue() + "\n")
            self.log.flush()


def _report_steps(command: click.Command | None, dates: Sequence[date]) -> list[Step]:
    """How to render the nights' reports with ``auditor report``, if this version has it."""
    if command is None:
        return []
    options = {opt for param in command.params for opt in getattr(param, "opts", [])}
    first, last = dates[0].isoformat(), dates[-1].isoformat()
    if {"--since", "--date"} <= options:
        return [("report", ("report", "--since", first, "--date", last))]
    if "--date" in options:
        return [(f"report {day}", ("report", "--date", day.isoformat())) for day in dates]
    return [("report", ("report",))]


def _chain_lines(built: BuiltDemo) -> list[str]:
    plan = built.plan
    changes = plan.clock_changes()
    lines = ["Stores:"]
    for store in plan.stores:
        note = ""
        if store.id in changes:
            note = ", clocks change on " + ", ".join(map(str, changes[store.id]))
        lines.append(f"  {store.id} {store.name} ({store.timezone}{note})")
    alcohol = plan.alcohol_sales
    cameras = Counter(sale.camera for sale in alcohol)
    spoilt = sum(1 for sale in plan.sales for line in sale.lines if line.spoilt)
    lines += [
        f"POS exports: {len(built.sales_files)} files, {len(plan.sales):,} receipts, "
        f"{len(alcohol):,} with alcohol ({sum(s.night for s in alcohol)} at night), "
        f"{spoilt} malformed lines",
        f"Checkout frames: {built.frames_written:,} files; alcohol sales with the shopper's face "
        f"{cameras[FACE]}, with two people {cameras[TWO_FACES]}, with nobody in view "
        f"{cameras[EMPTY]}, without a frame {cameras[MISSED]}, with a damaged file "
        f"{cameras[DAMAGED]}",
    ]
    return lines


def _challenged(settings: Settings, dates: Sequence[date]) -> set[tuple[str, str]]:
    """The sales of the nights' current runs estimated under the threshold where the till
    recorded an ID check (not flagged, so not in the flags export)."""
    query = (
        sa.select(Sale.store_id, Sale.receipt_id)
        .join(SaleVerdict, SaleVerdict.sale_id == Sale.id)
        .where(
            SaleVerdict.run_id.in_(current_run_ids(first=min(dates), last=max(dates))),
            SaleVerdict.challenged,
        )
    )
    engine = make_engine(settings.database_url)
    try:
        with Session(engine) as session:
            return {(store_id, receipt_id) for store_id, receipt_id in session.execute(query)}
    finally:
        engine.dispose()


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@click.command("demo")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("var/demo"),
    show_default=True,
    help="Folder of the demo. An earlier demo there is replaced; a folder with other content "
    "is refused.",
)
@click.option("--seed", type=int, default=1, show_default=True, help="Same seed, same demo.")
@click.option(
    "--stores",
    type=click.IntRange(1, len(STORES)),
    default=4,
    show_default=True,
    help=f"How many of the stores {', '.join(s.id for s in STORES)}, in that order.",
)
@click.option("--days", type=click.IntRange(1, 62), default=7, show_default=True)
@click.option(
    "--sales-per-day",
    type=click.IntRange(1, 300),
    default=40,
    show_default=True,
    help="Alcohol sales per store and day.",
)
@click.option(
    "--start",
    type=DATE,
    help=f"First business date. Default: the days centred on {DST_DAY}, when the clocks go "
    "forward in Berlin and London.",
)
@click.pass_context
def demo_command(
    ctx: click.Context,
    out: Path,
    seed: int,
    stores: int,
    days: int,
    sales_per_day: int,
    start: datetime | None,
) -> None:
    """Build a demo chain from scratch and run the nightly audit on it.

    \b
    Writes into --out:
      auditor.toml   the chain's settings: stores and zones, paths, a SQLite file
      exports/       POS exports per store and day, with a few malformed lines
      snapshots/     checkout frames (640x480 JPEG) in the snapshot layout, showing
                     faces the bundled model never trained on
      truth.csv      per alcohol sale: true age, the till's age check, what the camera
                     did, expected flags

    Then runs the commands on them as a user would: db upgrade, ingest sales, ingest
    snapshots, audit (each store-night), flags (into flags/<date>.csv) and report when this
    version has it; their output goes to demo.log. Prints the verdicts set against the truth.
    The POS exports record each sale's age check (age_check, birth_date) and the stores
    their country's legal age. The same options give the same files and the same verdicts.

    AUDITOR_* variables still apply: with AUDITOR_DATABASE__URL the demo loads into that
    database, which should be empty. The settings given with --config are not used.
    """
    started = time.perf_counter()
    spec = DemoSpec(
        seed=seed,
        stores=stores,
        days=days,
        sales_per_day=sales_per_day,
        start=start.date() if start is not None else None,
    )
    folder = out.absolute()
    prepare_folder(folder)
    settings_path = write_settings(folder, store_plans(spec.stores))
    settings = load_settings(settings_path)
    click.echo(
        f"Building the demo chain in {_shown(folder)}: {spec.stores} stores, "
        f"{spec.dates[0]} to {spec.dates[-1]}, seed {seed}"
    )
    plan = plan_demo(spec, settings)
    with tqdm(total=len(plan.frames), desc="frames", unit="frame", disable=None) as bar:
        built = write_demo(folder, plan, settings, progress=bar.update)
    for line in _chain_lines(built):
        click.echo(line)

    flags_dir = folder / FLAGS_DIR
    flags_dir.mkdir(exist_ok=True)
    log_path = folder / LOG_FILE
    with log_path.open("w", encoding="utf-8") as log:
        commands = _Commands(ctx.find_root().command, settings_path, log)
        steps: list[Step] = [
            ("db upgrade", ("db", "upgrade")),
            ("ingest sales", ("ingest", "sales", *built.sales_files)),
            ("ingest snapshots", ("ingest", "snapshots", built.snapshot_root)),
        ]
        steps += [
            (f"audit {store.id} {day}", ("audit", "--date", str(day), "--store", store.id))
            for store in plan.stores
            for day in plan.dates
        ]
        steps += [
            (f"flags {day}", ("flags", "--date", str(day), "-o", flags_dir / f"{day}.csv"))
            for day in plan.dates
        ]
        report_steps = _report_steps(commands.get("report"), plan.dates)
        with tqdm(steps + report_steps, desc="commands", unit="step", disable=None) as bar:
            for label, args in bar:
                bar.set_postfix_str(label)
                commands(*args)

    challenged = _challenged(settings, plan.dates)
    verdicts = [
        {**row, "challenged": (row["store_id"], row["receipt_id"]) in challenged}
        for day in plan.dates
        for row in _read_csv(flags_dir / f"{day}.csv")
    ]
    result = compare(read_truth(built.truth_path), verdicts)
    for line in describe(result, settings.audit.age_threshold):
        click.echo(line)
    click.echo(f"Flags: {_shown(flags_dir)}/<date>.csv")
    if report_steps:
        index = settings.report_dir / "index.html"
        click.echo(f"Reports: {_shown(index if index.is_file() else settings.report_dir)}")
    else:
        click.echo("Reports: not rendered, this version of the auditor has no `report` command")
    click.echo(f"Truth: {_shown(built.truth_path)}; the commands' output: {_shown(log_path)}")
    click.echo(
        f"Next: auditor --config {_shown(settings_path)} flags --date {plan.dates[-1]} "
        f"--store {plan.stores[0].id}"
    )
    minutes, seconds = divmod(round(time.perf_counter() - started), 60)
    click.echo(f"Done in {minutes} min {seconds:02d} s.")
