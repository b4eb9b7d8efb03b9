"""The ``auditor`` command through click's runner: help, db, ingest, config, errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from auditor.cli import main
from tests.factories import receipt, sale_row, write_config, write_frame, write_sales_csv

RunCli = Callable[..., Result]


def assert_one_line_error(result: Result, exit_code: int, text: str) -> None:
    assert result.exit_code == exit_code, result.output
    assert "Traceback" not in result.output
    assert text in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["db"],
        ["db", "upgrade"],
        ["ingest"],
        ["ingest", "sales"],
        ["ingest", "snapshots"],
        ["config", "show"],
        ["model"],
    ],
)
def test_help_comes_from_docstrings(args: list[str]) -> None:
    result = CliRunner().invoke(main, [*args, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage: auditor" in result.output
    docstring = {
        (): "Audit cashiers' alcohol sales",
        ("ingest", "sales"): "Load POS sale lines from CSV or Parquet FILES.",
        ("ingest", "snapshots"): "Record the frames in a snapshot folder or manifest CSV",
        ("db", "upgrade"): "Create the database, or migrate it",
    }.get(tuple(args))
    assert docstring is None or docstring in result.output


def test_usage_errors_exit_2() -> None:
    assert CliRunner().invoke(main, ["ingest", "sales"]).exit_code == 2
    assert CliRunner().invoke(main, ["no-such-command"]).exit_code == 2


def test_upgrade_then_ingest_sales(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli("db", "upgrade")
    assert result.exit_code == 0, result.output
    assert "is at schema revision" in result.output
    assert "up to date" in run_cli("db", "current").output

    path = write_sales_csv(tmp_path / "sales.csv", [*receipt("1"), sale_row(amount="x")])
    result = run_cli("ingest", "sales", path)
    assert result.exit_code == 0, result.output
    # the beer receipt whose only line is rejected stays, to be audited with a pos_error flag
    assert "2 lines in 2 receipts (2 new or changed, 0 unchanged), 1 rejected" in result.stdout
    assert f"{path}:4: amount: not a number: 'x'" in result.stderr
    again = run_cli("ingest", "sales", path)
    assert "(0 new or changed, 2 unchanged)" in again.stdout


def test_unreadable_file_is_one_line_and_exit_1(run_cli: RunCli, tmp_path: Path) -> None:
    good = write_sales_csv(tmp_path / "good.csv", receipt("1"))
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"\x00\x01\x02 binary")
    result = run_cli("ingest", "sales", bad, good, tmp_path / "missing.csv")
    assert_one_line_error(result, 1, f"Error: {bad}: missing column(s)")
    assert f"{tmp_path / 'missing.csv'}: file not found" in result.stderr
    assert "2 of 3 files not loaded" in result.stderr
    assert "good.csv: 2 rows" in result.stdout


def test_ingest_before_upgrade_says_what_to_do(tmp_path: Path) -> None:
    fresh = write_config(
        tmp_path / "fresh" / "auditor.toml", database_url=f"sqlite:///{tmp_path / 'new.db'}"
    )
    result = CliRunner().invoke(main, ["--config", str(fresh), "ingest", "sales", "x.csv"])
    assert_one_line_error(result, 1, "run `auditor db upgrade`")


def test_snapshot_ingest(run_cli: RunCli, config_file: Path) -> None:
    root = config_file.parent / "snapshots"
    write_frame(root, "S1", "R1", datetime(2024, 3, 1, 21, 15))
    (root / "S1" / "R1" / "2024-03-01" / "junk.txt").write_text("x")
    result = run_cli("ingest", "snapshots", root)
    assert result.exit_code == 0, result.output
    assert "2 files, 1 frames (1 new or changed), 1 rejected" in result.stdout
    assert "junk.txt: time: file name 'junk.txt' is not HHMMSS" in result.stderr
    outside = run_cli("ingest", "snapshots", config_file.parent)
    assert_one_line_error(outside, 1, "folder is outside the snapshot root")


def test_bad_settings_name_the_key(tmp_path: Path) -> None:
    config = tmp_path / "auditor.toml"
    config.write_text("[audit]\nage_threshold = 3\n")
    result = CliRunner().invoke(main, ["--config", str(config), "config", "show"])
    assert_one_line_error(result, 1, "audit.age_threshold: Input should be greater than")
    missing = CliRunner().invoke(main, ["--config", str(tmp_path / "nope.toml"), "db", "upgrade"])
    assert_one_line_error(missing, 1, "config file not found")


def test_config_show_and_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = write_config(tmp_path / "auditor.toml")
    monkeypatch.setenv("AUDITOR_CONFIG", str(config))
    monkeypatch.setenv("AUDITOR_AUDIT__FRAMES_PER_SALE", "5")
    result = CliRunner().invoke(main, ["config", "show"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["audit"]["frames_per_sale"] == 5
    assert shown["stores"][1]["timezone"] == "America/New_York"


def test_unreachable_database_is_one_line(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "auditor.toml", database_url="postgresql://nobody@127.0.0.1:1/none"
    )
    result = CliRunner().invoke(main, ["--config", str(config), "db", "upgrade"])
    assert_one_line_error(result, 1, "Error: database postgresql+psycopg://nobody@127.0.0.1:1/none")
