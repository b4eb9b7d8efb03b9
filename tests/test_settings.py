"""Settings: defaults, the TOML file, AUDITOR_* overrides, and errors that name the key."""

from __future__ import annotations

import json
from datetime import time
from pathlib import Path
from typing import Any, get_args
from zoneinfo import ZoneInfo

import pytest

from auditor.detectors import DETECTORS, DetectorName
from auditor.settings import (
    AuditSettings,
    RecordedAudit,
    SettingsError,
    load_settings,
    usable_cores,
)
from tests.factories import write_config


def test_defaults_without_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    assert settings.database_url == f"sqlite:///{tmp_path / 'var' / 'auditor.db'}"
    assert settings.snapshot_root == tmp_path / "var" / "snapshots"
    assert settings.report_dir == tmp_path / "var" / "reports"
    assert settings.audit.age_threshold == 25
    assert (settings.audit.legal_hours_start, settings.audit.legal_hours_end) == (
        time(8),
        time(23),
    )
    assert settings.schedule.cron == "30 2 * * *"
    assert settings.schedule.timezone == settings.chain.default_timezone
    assert settings.model_path.parts[-2:] == ("model", "bundled")
    assert "beer" in settings.alcohol_categories


def test_auditor_toml_in_working_directory_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "auditor.toml").write_text("[audit]\nage_threshold = 21\n")
    monkeypatch.chdir(tmp_path)
    assert load_settings().audit.age_threshold == 21


def test_file_values_and_relative_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "etc" / "auditor.toml"
    config.parent.mkdir()
    config.write_text(
        """
[database]
url = "sqlite:///db/audit.db"
[paths]
data_dir = "data"
[chain]
default_timezone = "Europe/Vienna"
alcohol_categories = ["Beer", " WINE ", "beer"]
[[stores]]
id = "S9"
[audit]
legal_hours_start = 07:30:00
legal_hours_end = "22:00"
"""
    )
    monkeypatch.chdir(tmp_path)
    settings = load_settings(config)
    assert settings.database_url == f"sqlite:///{config.parent / 'db' / 'audit.db'}"
    assert settings.paths.data_dir == config.parent / "data"
    assert settings.chain.alcohol_categories == ["beer", "wine"]
    assert settings.store("S9").timezone == "Europe/Vienna"
    assert settings.store_zone("S9") == ZoneInfo("Europe/Vienna")
    assert settings.store_zone("unknown") == ZoneInfo("Europe/Vienna")
    assert settings.audit.legal_hours_start == time(7, 30)
    assert settings.audit.legal_hours_end == time(22)


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = write_config(tmp_path / "auditor.toml", audit={"age_threshold": 21})
    monkeypatch.setenv("AUDITOR_AUDIT__AGE_THRESHOLD", "30")
    monkeypatch.setenv("AUDITOR_DATABASE__URL", "postgres://u:secret@db.example/auditor")
    monkeypatch.setenv("AUDITOR_CHAIN__ALCOHOL_CATEGORIES", '["cider"]')
    settings = load_settings(config)
    assert settings.audit.age_threshold == 30
    assert settings.audit.frames_per_sale == 3
    assert settings.database_url == "postgresql+psycopg://u:secret@db.example/auditor"
    assert settings.alcohol_categories == frozenset({"cider"})


def test_as_json_dict_hides_the_password(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUDITOR_DATABASE__URL", "postgresql://u:pw-not-shown@db.example/auditor")
    monkeypatch.setenv("AUDITOR_WEB__SECRET_KEY", "key-not-shown-" + "k" * 32)
    record = load_settings(write_config(tmp_path / "auditor.toml")).as_json_dict()
    text = json.dumps(record)
    assert "not-shown" not in text
    assert record["database"]["url"] == "postgresql+psycopg://u:***@db.example/auditor"
    assert record["audit"]["legal_hours_start"] == "08:00:00"
    assert record["stores"][0]["id"] == "S1"


@pytest.mark.parametrize(
    "toml, key",
    [
        ("[audit]\nage_threshold = 5", "audit.age_threshold"),
        ("[audit]\nage_threshold = 'old'", "audit.age_threshold"),
        ("[audit]\nframes_per_sale = 0", "audit.frames_per_sale"),
        ("[audit]\nwindow_before_s = -1", "audit.window_before_s"),
        ("[audit]\nlegal_hours_start = '25:00'", "audit.legal_hours_start"),
        ("[audit]\nlegal_hours_start = '09:00'\nlegal_hours_end = '09:00'", "audit"),
        ("[audit]\nage_treshold = 21", "audit.age_treshold"),
        ("[audit]\nexecutor = 'spark'", "audit.executor"),
        ("[audit]\ndetector = 'yolo'", "audit.detector"),
        ("[model]\nhint = 'fastest'", "model.hint"),
        ("[audit]\nexecutor = 'dask'", "audit: executor 'dask' needs the address"),
        ("[audit]\nscheduler = 'tcp://10.0.0.5'", "audit.scheduler"),
        ("[audit]\nscheduler = 'http://10.0.0.5:8786'", "audit.scheduler"),
        ("[retention]\nframe_days = 0", "retention.frame_days"),
        ("[schedule]\ncron = 'every night'", "schedule.cron"),
        ("[schedule]\ncron = '30 2 * * 8'", "schedule.cron: not a crontab expression: day of"),
        ("[schedule]\ncron = '30 2 * * mon-funday'", "schedule.cron"),
        ("[audit]\nlegal_hours_end = '23:00Z'", "audit.legal_hours_end: 23:00:00+00:00 has a"),
        ("[audit]\nlegal_hours_end = 23", "audit.legal_hours_end: 23 is not a time of day"),
        (
            "[[stores]]\nid = 'S1'\nlegal_hours_start = '08:00+01:00'",
            "stores[0].legal_hours_start: 08:00:00+01:00 has a zone offset",
        ),
        ("[schedule]\ntimezone = 'Mars/Olympus'", "schedule.timezone"),
        ("[chain]\ndefault_timezone = 'Berlin'", "chain.default_timezone"),
        ("[chain]\nalcohol_categories = []", "chain.alcohol_categories"),
        ("[database]\nurl = 'mysql://x/y'", "database.url"),
        ("[database]\nurl = 'not a url'", "database.url"),
        ("[[stores]]\nid = 'S1'\ntimezone = 'Nowhere'", "stores[0].timezone"),
        ("[[stores]]\nid = 'S1'\n[[stores]]\nid = 'S1'", "stores"),
        ("[[stores]]\nname = 'no id'", "stores[0].id"),
        ("[[stores]]\nid = 'S1'\nlegal_age = 15", "stores[0].legal_age"),
        (
            "[[stores]]\nid = 'NY'\nlegal_age = 21\nage_threshold = 20",
            "stores[0] (NY): age_threshold 20",
        ),
        ("[chain]\nlegal_age = 21\n[audit]\nage_threshold = 20", "audit.age_threshold 20 is under"),
        (
            "[[stores]]\nid = 'S1'\nlegal_hours_start = '09:00'\nlegal_hours_end = '09:00'",
            "stores[0] (S1)",
        ),
        ("[audit]\nid_contradiction_probability = 0.4", "audit.id_contradiction_probability"),
        ("[reports]\nworkers = 0", "reports.workers"),
        ("colour = 'red'", "colour"),
    ],
)
def test_bad_value_names_the_key(tmp_path: Path, toml: str, key: str) -> None:
    config = tmp_path / "auditor.toml"
    config.write_text(toml)
    with pytest.raises(SettingsError) as error:
        load_settings(config)
    message = str(error.value)
    assert message.startswith(f"{config}: {key}")
    assert "\n" not in message


@pytest.mark.parametrize(
    "toml, key, value",
    [
        ("[audit]\nexecutor = 'spark'", "audit.executor", "'spark'"),
        ("[audit]\ndetector = 'yolo'", "audit.detector", "'yolo'"),
        ("[model]\nengine = 'tflite'", "model.engine", "'tflite'"),
        ("[model]\nhint = 'fastest'", "model.hint", "'fastest'"),
    ],
)
def test_bad_choice_names_the_value_and_the_choices(
    tmp_path: Path, toml: str, key: str, value: str
) -> None:
    config = tmp_path / "auditor.toml"
    config.write_text(toml)
    with pytest.raises(SettingsError) as error:
        load_settings(config)
    assert str(error.value).startswith(f"{config}: {key}: unknown value {value}; use one of '")


@pytest.mark.parametrize("cron", ["30 2 * * 7", "30 2 * * 0-7", "30 2 * * sun-tue", "0 3 * * 1/2"])
def test_crontab_weekdays_are_read_as_cron_reads_them(tmp_path: Path, cron: str) -> None:
    config = tmp_path / "auditor.toml"
    config.write_text(f"[schedule]\ncron = '{cron}'")
    assert load_settings(config).schedule.cron == cron


def test_legal_hours_are_local_times(tmp_path: Path) -> None:
    config = tmp_path / "auditor.toml"
    config.write_text(
        "[audit]\nlegal_hours_end = 22:30:00\n[[stores]]\nid = 'S1'\nlegal_hours_start = '09:15'"
    )
    settings = load_settings(config)
    assert settings.audit.legal_hours_end == time(22, 30)
    assert settings.rules("S1").legal_hours_start == time(9, 15)


@pytest.mark.parametrize(
    "name, value",
    [("AUDITOR_STORES", "[{"), ("AUDITOR_NOTIFY__LOSS_PREVENTION", "lp@chain.example")],
)
def test_an_environment_variable_that_is_not_json_is_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str, value: str
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as error:
        load_settings()
    assert str(error.value) == (
        f"settings: {name}: not valid JSON (a list or a table is given in JSON, "
        'such as ["lp@chain.example"])'
    )


def test_every_detector_is_a_choice_of_the_setting() -> None:
    assert sorted(get_args(DetectorName)) == sorted(DETECTORS)


def test_bad_environment_value_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AUDITOR_AUDIT__AGE_THRESHOLD", "old")
    with pytest.raises(SettingsError, match=r"audit\.age_threshold \(from AUDITOR_AUDIT__AGE"):
        load_settings()


@pytest.mark.parametrize(
    "content, message",
    [(None, "config file not found"), ("[audit", "not valid TOML"), (b"\xff\xfe", "not UTF-8")],
)
def test_unreadable_file(tmp_path: Path, content: str | bytes | None, message: str) -> None:
    config = tmp_path / "auditor.toml"
    if isinstance(content, bytes):
        config.write_bytes(content)
    elif content is not None:
        config.write_text(content)
    with pytest.raises(SettingsError, match=message):
        load_settings(config)


def test_example_config_is_valid_and_documents_every_key() -> None:
    example = Path(__file__).parents[1] / "auditor.example.toml"
    settings = load_settings(example)
    text = example.read_text()
    for section, values in settings.model_dump().items():
        assert f"[{section}]" in text or f"[[{section}]]" in text, section
        items = values[0] if isinstance(values, list) else values
        for key in items:
            assert f"{key} =" in text or f"# {key} =" in text, f"{section}.{key}"


def test_model_engine_from_the_file_and_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_settings().model.engine == "auto"
    config = write_config(tmp_path / "auditor.toml", model={"engine": "keras", "path": "m"})
    settings = load_settings(config)
    assert (settings.model.engine, settings.model_path) == ("keras", tmp_path / "m")
    monkeypatch.setenv("AUDITOR_MODEL__ENGINE", "openvino")
    assert load_settings(config).model.engine == "openvino"
    monkeypatch.setenv("AUDITOR_MODEL__ENGINE", "tflite")
    with pytest.raises(
        SettingsError, match=r"model\.engine \(from AUDITOR_MODEL__ENGINE\).*'tflite'"
    ):
        load_settings(config)


def test_store_pages_are_written_by_one_process_per_core_unless_told(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_settings().reports.workers is None
    assert load_settings().report_workers == usable_cores() >= 1
    config = write_config(tmp_path / "auditor.toml", reports={"workers": 1})
    assert load_settings(config).report_workers == 1
    monkeypatch.setenv("AUDITOR_REPORTS__WORKERS", "3")
    assert load_settings(config).report_workers == 3


def test_dask_executor_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AUDITOR_AUDIT__EXECUTOR", "dask")
    monkeypatch.setenv("AUDITOR_AUDIT__SCHEDULER", "10.0.0.5:8786")
    audit = load_settings().audit
    assert (audit.executor, audit.scheduler) == ("dask", "tcp://10.0.0.5:8786")
    assert load_settings().as_json_dict()["audit"]["scheduler"] == "tcp://10.0.0.5:8786"


def test_recorded_audit_reads_what_a_run_recorded() -> None:
    recorded = {"audit": AuditSettings().model_dump(mode="json")}  # as Settings.as_json_dict
    audit = RecordedAudit.of(recorded)
    assert audit == RecordedAudit(25, 5.0, 10.0, 3, "08:00:00", "23:00:00", 18)


@pytest.mark.parametrize(
    "settings,expected",
    [
        (None, RecordedAudit()),
        ({}, RecordedAudit()),
        ({"audit": None}, RecordedAudit()),
        ({"audit": {"age_threshold": 21}}, RecordedAudit(age_threshold=21)),
        ({"audit": {"age_threshold": "21", "legal_hours_end": 23}}, RecordedAudit()),
        ({"audit": {"frames_per_sale": 5, "retired_setting": 1}}, RecordedAudit(frames_per_sale=5)),
        # a store's own rules win over the [audit] section; without them the legal age is 18
        (
            {
                "audit": {"age_threshold": 25, "legal_hours_end": "23:00:00"},
                "rules": {"legal_age": 21, "age_threshold": 30, "legal_hours_end": "22:00:00"},
            },
            RecordedAudit(age_threshold=30, legal_hours_end="22:00:00", legal_age=21),
        ),
        ({"rules": {"legal_age": "21", "age_threshold": True}}, RecordedAudit(legal_age=18)),
        ({"rules": None, "audit": {"age_threshold": 21}}, RecordedAudit(age_threshold=21)),
    ],
)
def test_recorded_audit_of_partial_records(
    settings: dict[str, Any] | None, expected: RecordedAudit
) -> None:
    assert RecordedAudit.of(settings) == expected


def test_each_store_has_its_own_rules_or_the_chains(tmp_path: Path) -> None:
    config = tmp_path / "auditor.toml"
    config.write_text(
        "[chain]\nlegal_age = 18\n[audit]\nage_threshold = 25\nlegal_hours_end = '22:00'\n"
        "[[stores]]\nid = 'NY'\ntimezone = 'America/New_York'\nlegal_age = 21\n"
        "age_threshold = 30\nlegal_hours_start = '10:00'\n"
        "[[stores]]\nid = 'B'\n"
    )
    settings = load_settings(config)
    ny, berlin, unknown = (settings.rules(s) for s in ("NY", "B", "X"))
    assert (ny.legal_age, ny.age_threshold) == (21, 30)
    assert (ny.legal_hours_start.hour, ny.legal_hours_end.hour) == (10, 22)
    assert berlin == unknown == settings.rules(None)
    assert berlin.as_json_dict() == {
        "legal_age": 18,
        "age_threshold": 25,
        "legal_hours_start": "08:00:00",
        "legal_hours_end": "22:00:00",
    }
