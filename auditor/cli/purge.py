"""``auditor purge``: remove frames and face crops past their retention."""

from __future__ import annotations

import getpass
from typing import TYPE_CHECKING

import click

from auditor.retention import purge, rewrite_purged_pages

if TYPE_CHECKING:
    from auditor.cli import AppContext


@click.command("purge")
@click.option("--dry-run", is_flag=True, help="Say what would be removed; change nothing.")
@click.pass_obj
def purge_command(app: AppContext, dry_run: bool) -> None:
    """Remove checkout frames and face crops older than the [retention] settings allow.

    A frame older than retention.frame_days (30) has its file deleted under the snapshot root
    (its row stays, marked purged); so has the evidence of a flag (face crop, frame) whose sale
    is that old. Kept for retention.evidence_days (365): the evidence of flags still open (no
    decision yet) or confirmed as violations. Sales, receipt lines and verdicts are never
    touched. The report pages that showed a removed face crop are written again without it.
    The purge is recorded in the audit log; running it again removes nothing more.
    The nightly job (`auditor schedule`) runs it after the reports.
    """
    engine = app.migrated_engine()
    summary = purge(settings=app.settings, engine=engine, dry_run=dry_run, actor=f"cli:{_who()}")
    click.echo(str(summary))
    rewrite_purged_pages(app.settings, engine, summary)
    if summary.files_failed:
        raise click.ClickException(
            f"{len(summary.files_failed)} frame files could not be deleted (see the log); "
            "their rows are left as they were"
        )


def _who() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
