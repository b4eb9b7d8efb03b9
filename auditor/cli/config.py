"""``auditor config ...``: look at the settings in force."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from auditor.cli import AppContext


@click.group("config")
def config_group() -> None:
    """Look at the settings in force."""


@config_group.command("show")
@click.pass_obj
def show(app: AppContext) -> None:
    """Check the settings and print them, defaults filled in, as JSON (password hidden)."""
    click.echo(json.dumps(app.settings.as_json_dict(), indent=2))
