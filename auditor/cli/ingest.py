"""``auditor ingest ...``: load POS sales and snapshot metadata into the database."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click
from tqdm import tqdm

from auditor.db.migrations import require_current_schema
from auditor.errors import AuditorError
from auditor.ingest import Progress
from auditor.ingest.pos import ingest_sales_file
from auditor.ingest.rejects import Reject
from auditor.ingest.snapshots import ingest_snapshots

if TYPE_CHECKING:
    from auditor.cli import AppContext

SHOW_REJECTS = 20


@click.group("ingest")
def ingest_group() -> None:
    """Load POS sales and snapshot metadata into the database."""


@contextmanager
def _progress_bar(description: str, unit: str) -> Iterator[Progress]:
    """A progress bar on stderr when it is a terminal."""
    with tqdm(desc=description, unit=unit, disable=None, leave=False) as bar:

        def advance(n: int, total: int) -> None:
            if bar.total != total:
                bar.reset(total=total)
            bar.update(n)

        yield advance


def _echo_rejects(rejects: Sequence[Reject], rejects_path: Path | None) -> None:
    for reject in rejects[:SHOW_REJECTS]:
        click.echo(f"  {reject}", err=True)
    if len(rejects) > SHOW_REJECTS:
        click.echo(f"  ... and {len(rejects) - SHOW_REJECTS} more in {rejects_path}", err=True)


@ingest_group.command("sales")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.pass_obj
def sales(app: AppContext, files: tuple[Path, ...]) -> None:
    """Load POS sale lines from CSV or Parquet FILES.

    \b
    Header (is_alcohol optional: true/false/1/0):
    store_id,register_id,cashier_id,cashier_name,receipt_id,sold_at,
    sku,product_name,category,quantity,amount[,is_alcohol]

    A sold_at without offset is the store's local time. Each file loads in one
    transaction; a receipt already stored is replaced when its lines changed. Bad rows are
    listed as file:line: field: reason and written to <file>.rejects.csv beside the file;
    the good rows still load.
    """
    require_current_schema(app.engine)
    failed: list[str] = []
    for path in files:
        try:
            with _progress_bar(f"{path.name}: lines", "line") as progress:
                summary = ingest_sales_file(
                    path,
                    settings=app.settings,
                    session_factory=app.session_factory,
                    progress=progress,
                )
        except AuditorError as e:
            failed.append(str(e))
            click.echo(f"Error: {e}", err=True)
            continue
        click.echo(str(summary))
        _echo_rejects(summary.rejects, summary.rejects_path)
        if summary.unknown_stores:
            zone = app.settings.chain.default_timezone
            stores = ", ".join(summary.unknown_stores)
            click.echo(f"  stores not in the settings, times read in {zone}: {stores}", err=True)
    if failed:
        raise click.ClickException(f"{len(failed)} of {len(files)} files not loaded")


@ingest_group.command("snapshots")
@click.argument("path", type=click.Path(path_type=Path))
@click.pass_obj
def snapshots(app: AppContext, path: Path) -> None:
    """Record the frames in a snapshot folder or manifest CSV (PATH); images are not copied.

    A folder is laid out as <store_id>/<register_id>/<YYYY-MM-DD>/<HHMMSS>[_<ms>].jpg in store
    local time; a manifest has the header store_id,register_id,captured_at,path with paths
    relative to it. Every file must lie under the configured snapshot root. Files left out are
    listed and written to a .rejects.csv beside the folder or manifest.
    """
    require_current_schema(app.engine)
    with _progress_bar(f"{path.name}: frames", "file") as progress:
        summary = ingest_snapshots(
            path,
            settings=app.settings,
            session_factory=app.session_factory,
            progress=progress,
        )
    click.echo(str(summary))
    _echo_rejects(summary.rejects, summary.rejects_path)
