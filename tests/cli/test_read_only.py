"""Commands that only read never create a database: a missing SQLite file is named instead.
Nor do the commands that write to a database that must be there already (its schema made by
`auditor db upgrade`): they stop before creating an empty file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from auditor.cli import main
from tests.factories import write_config

READ_ONLY = [
    ["report", "--date", "2024-03-01"],
    ["flags", "--date", "2024-03-01"],
    ["threshold-report"],
    ["purge", "--dry-run"],
    ["purge"],
    ["serve", "--port", "1"],
    ["db", "current"],
    ["users", "list"],
]
NEEDS_SCHEMA = [
    ["audit", "--date", "2024-03-01"],
    ["schedule"],
    ["users", "add", "anna", "--role", "analyst", "--password-stdin"],
    ["users", "disable", "anna"],
    ["users", "enable", "anna"],
    ["users", "passwd", "anna", "--password-stdin"],
]


@pytest.fixture
def missing_db(tmp_path: Path) -> tuple[Path, Path]:
    """A settings file whose SQLite file, and the folder it would be in, do not exist."""
    database = tmp_path / "typo" / "auditor.db"
    config = write_config(tmp_path / "auditor.toml", database_url=f"sqlite:///{database}")
    return config, database


@pytest.mark.parametrize("args", READ_ONLY + NEEDS_SCHEMA, ids=" ".join)
def test_a_command_names_the_missing_file_and_creates_nothing(
    missing_db: tuple[Path, Path], args: list[str]
) -> None:
    config, database = missing_db
    result = CliRunner().invoke(
        main, ["--config", str(config), *args], input="a long enough password\n"
    )
    assert result.exit_code == 1, result.output
    assert result.stderr == (
        f"Error: database file {database} does not exist: `auditor db upgrade` creates it\n"
    )
    assert not database.parent.exists()


def test_config_show_does_not_touch_the_database(missing_db: tuple[Path, Path]) -> None:
    config, database = missing_db
    result = CliRunner().invoke(main, ["--config", str(config), "config", "show"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["database"]["url"] == f"sqlite:///{database}"
    assert not database.parent.exists()


def test_db_upgrade_creates_the_file_then_reading_works(missing_db: tuple[Path, Path]) -> None:
    config, database = missing_db
    result = CliRunner().invoke(main, ["--config", str(config), "db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert database.is_file()
    result = CliRunner().invoke(main, ["--config", str(config), "db", "current"])
    assert result.exit_code == 0, result.output
    assert "up to date" in result.output
