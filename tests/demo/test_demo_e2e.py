"""``auditor demo`` end to end: a small chain built from scratch, loaded and audited through the
real CLI with the bundled age model, on SQLite and on PostgreSQL, its verdicts set against what
the demo knows (``truth.csv``).

The small chain: Berlin (its clocks go forward on 31 March 2024) and Sydney (east of UTC: its
business day starts at 13:00 UTC the day before), 30 and 31 March, 15 alcohol sales per store
and day, every camera outcome in each store, the till's age check on every alcohol sale (Sydney's
lax cashier takes borrowed adult IDs from minors).
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result
from sqlalchemy.orm import Session

from auditor.audit.export import night_verdicts
from auditor.audit.rules import age_on
from auditor.audit.run import AuditTools, audit_nights
from auditor.cli import main
from auditor.db import make_engine
from auditor.db.models import AgeEstimate, AuditRun, Sale, SaleVerdict
from auditor.demo.chain import DAMAGED, EMPTY, FACE, MISSED, TWO_FACES
from auditor.demo.datasets import datasets_dir
from auditor.settings import Settings, load_settings
from tests.audit.night import with_threshold
from tests.conftest import create_pg_database, drop_pg_database

pytestmark = pytest.mark.slow

DEMO_ARGS = ["--seed", "7", "--stores", "2", "--days", "2", "--sales-per-day", "15"]
DATES = [date(2024, 3, 30), date(2024, 3, 31)]
STORES = ["BER1", "SYD1"]
MODEL_DIR = Path(__file__).resolve().parents[2] / "model" / "bundled"
Key = tuple[str, str]


@dataclass
class Demo:
    folder: Path
    output: str

    @property
    def settings_path(self) -> Path:
        return self.folder / "auditor.toml"

    def settings(self) -> Settings:
        return load_settings(self.settings_path)


def _needs_faces_and_model() -> None:
    if not (datasets_dir() / "faces200" / "labels.csv").is_file():
        pytest.skip(f"no faces200 under {datasets_dir()}")
    if not (MODEL_DIR / "model_card.json").is_file():
        pytest.skip(f"no bundled model in {MODEL_DIR}")


def _ok(result: Result) -> Result:
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 0, result.output
    return result


def run_demo(folder: Path) -> Demo:
    result = _ok(CliRunner().invoke(main, ["demo", "--out", str(folder), *DEMO_ARGS]))
    return Demo(folder, result.output)


def auditor(demo: Demo, *args: str, env: dict[str, str] | None = None) -> Result:
    command = ["--config", str(demo.settings_path), *args]
    return _ok(CliRunner().invoke(main, command, env=env))


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    _needs_faces_and_model()
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith("AUDITOR_") and name != "AUDITOR_TEST_PG_URL":
                patch.delenv(name)
        yield run_demo(tmp_path_factory.mktemp("demo") / "chain")


@pytest.fixture
def demo_copy(demo: Demo, tmp_path: Path) -> Demo:
    """A copy of the demo folder, database included, to audit again with other settings."""
    folder = tmp_path / "chain"
    shutil.copytree(demo.folder, folder)
    return Demo(folder, demo.output)


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def truth(demo: Demo) -> dict[Key, dict[str, str]]:
    return {(r["store_id"], r["receipt_id"]): r for r in read_csv(demo.folder / "truth.csv")}


def exported(demo: Demo, day: date) -> dict[Key, dict[str, str]]:
    rows = read_csv(demo.folder / "flags" / f"{day}.csv")
    return {(r["store_id"], r["receipt_id"]): r for r in rows}


def all_exported(demo: Demo) -> dict[Key, dict[str, str]]:
    return {key: row for day in DATES for key, row in exported(demo, day).items()}


def kinds(row: dict[str, str]) -> set[str]:
    return set(filter(None, row["flags"].split(";")))


def with_face(rows: dict[Key, dict[str, str]]) -> set[Key]:
    return {k for k, r in rows.items() if r["camera"] in (FACE, TWO_FACES)}


def saw_id(row: dict[str, str]) -> bool:
    """Whether the truth's till recorded an ID check."""
    return row["birth_date"] != "" or row["age_check"] in ("id_checked", "id_scanned")


def birth_years(row: dict[str, str]) -> int | None:
    """The age the recorded birth date gives on the day of the sale."""
    if not row["birth_date"]:
        return None
    return age_on(date.fromisoformat(row["birth_date"]), date.fromisoformat(row["sold_at"][:10]))


def challenged(settings: Settings) -> set[Key]:
    """Sales of the current runs estimated under the threshold, with an ID check recorded."""
    engine = make_engine(settings.database_url)
    query = (
        sa.select(Sale.store_id, Sale.receipt_id)
        .join(SaleVerdict, SaleVerdict.sale_id == Sale.id)
        .join(AuditRun, AuditRun.id == SaleVerdict.run_id)
        .where(AuditRun.status == "succeeded", SaleVerdict.challenged)
    )
    try:
        with Session(engine) as session:
            return {(store_id, receipt) for store_id, receipt in session.execute(query)}
    finally:
        engine.dispose()


def file_hashes(folder: Path, *parts: str) -> dict[str, str]:
    found = {}
    for part in parts:
        for path in sorted((folder / part).rglob("*") if (folder / part).is_dir() else []):
            if path.is_file() and not path.name.endswith(".rejects.csv"):
                found[path.relative_to(folder).as_posix()] = hashlib.sha256(
                    path.read_bytes()
                ).hexdigest()
        if (folder / part).is_file():
            found[part] = hashlib.sha256((folder / part).read_bytes()).hexdigest()
    return found


def face_widths(demo: Demo, keys: list[Key]) -> dict[Key, list[int]]:
    """The widths of the face boxes the audit estimated for these sales."""
    engine = make_engine(demo.settings().database_url)
    query = (
        sa.select(Sale.store_id, Sale.receipt_id, AgeEstimate.face_w)
        .join(AgeEstimate, AgeEstimate.sale_id == Sale.id)
        .join(AuditRun, AuditRun.id == AgeEstimate.run_id)
        .where(AuditRun.status == "succeeded", AgeEstimate.face_w.is_not(None))
    )
    widths: dict[Key, list[int]] = {key: [] for key in keys}
    try:
        with Session(engine) as session:
            for store_id, receipt_id, width in session.execute(query):
                if (store_id, receipt_id) in widths:
                    widths[(store_id, receipt_id)].append(width)
    finally:
        engine.dispose()
    return widths


# -- the run and its summary ---------------------------------------------------------------------


def test_the_demo_says_what_it_did(demo: Demo) -> None:
    out = demo.output
    assert "BER1 Berlin Mitte (Europe/Berlin, clocks change on 2024-03-31)" in out
    assert "SYD1 Sydney Town Hall (Australia/Sydney)" in out
    assert "Audit: 60 of 60 alcohol sales audited" in out
    assert "no_frame, unreadable_frame, outside_legal_hours: exactly where the demo put them" in out
    assert "Reports: " in out and "Done in " in out
    for day in DATES:
        assert (demo.folder / "flags" / f"{day}.csv").is_file()
    rejects = sorted(p.name for p in (demo.folder / "exports").rglob("*.rejects.csv"))
    assert rejects.count("2024-03-30.csv.rejects.csv") == 2  # each store's first day has one
    log = (demo.folder / "demo.log").read_text(encoding="utf-8")
    assert "ingest sales" in log and "rejected (see " in log


def test_each_sale_is_audited_on_its_business_day(demo: Demo) -> None:
    """Every alcohol sale, on its store's local date, with its local time and offset: across
    the night Berlin's clocks go forward, and in Sydney, where a business day spans two UTC
    dates."""
    known = truth(demo)
    for day in DATES:
        rows = exported(demo, day)
        assert set(rows) == {k for k, t in known.items() if t["business_date"] == str(day)}
        for key, row in rows.items():
            assert row["sold_at"] == known[key]["sold_at"]
    berlin_night = [
        t["sold_at"]
        for t in known.values()
        if t["store_id"] == "BER1" and t["business_date"] == "2024-03-31" and t["night"] == "true"
    ]
    assert {text[-6:] for text in berlin_night} == {"+01:00", "+02:00"}
    sydney = [t for t in known.values() if t["store_id"] == "SYD1"]
    assert any(int(t["sold_at"][11:13]) < 11 for t in sydney)  # the UTC date before


def test_evidence_flags_match_the_truth(demo: Demo) -> None:
    known, found = truth(demo), all_exported(demo)
    for key, t in known.items():
        raised = kinds(found[key])
        assert ("no_frame" in raised) == (t["camera"] == MISSED), key
        assert ("unreadable_frame" in raised) == (t["camera"] == DAMAGED), key
        assert ("outside_legal_hours" in raised) == (t["night"] == "true"), key
    # An empty checkout is flagged no_face, unless the detector boxed something on the shelves:
    # always far smaller than the smallest face a demo frame shows (60 px).
    empty = [k for k, t in known.items() if t["camera"] == EMPTY]
    seen = [k for k in empty if "no_face" not in kinds(found[k])]
    widths = face_widths(demo, seen)
    assert all(0 < max(widths[k]) < 40 for k in seen), widths
    assert len(seen) <= len(empty) / 2
    cameras = [t["camera"] for t in known.values()]
    assert cameras.count(DAMAGED) == 2 and cameras.count(MISSED) >= 2 and EMPTY in cameras
    faces = with_face(known)
    missed_faces = [k for k in faces if "no_face" in kinds(found[k])]
    assert len(missed_faces) <= 0.05 * len(faces)


def test_age_flags_follow_the_estimates_and_the_true_ages(demo: Demo) -> None:
    """Under the threshold without an ID check: no_id_check; with one: challenged, no flag."""
    known, found = truth(demo), all_exported(demo)
    checked = challenged(demo.settings())
    for key, t in known.items():
        row = found[key]
        assert "under_age_threshold" not in kinds(row)  # the POS records age checks
        if row["estimated_age"] != "":  # the export rounds the estimate to 0.1 year
            age = float(row["estimated_age"])
            under = "no_id_check" in kinds(row) or key in checked
            assert age <= 25.0 if under else age >= 25.0, row
            assert ("no_id_check" in kinds(row)) == (under and not saw_id(t)), row
            assert (key in checked) == (under and saw_id(t)), row
        else:
            assert "no_id_check" not in kinds(row) and key not in checked
    faces = with_face(known)
    minors = [k for k in faces if int(known[k]["shopper_age"]) < 18]
    elders = [k for k in faces if int(known[k]["shopper_age"]) >= 35]
    assert len(minors) >= 5  # the plan of this seed; the bounds below are the model's
    under = {k for k in faces if "no_id_check" in kinds(found[k]) or k in checked}
    assert len(under & set(minors)) > 0.5 * len(minors)
    assert len(under & set(elders)) <= 0.2 * len(elders)


def test_age_check_flags_match_the_truth(demo: Demo) -> None:
    """birth_date_under_age exactly where the truth has it (no model needed); id_contradicts_face
    only on an adult birth date, and on most minors with a borrowed adult ID; no_id_check only
    where no ID check was recorded, and on the minors without one the model puts under 25."""
    known, found = truth(demo), all_exported(demo)
    for key, t in known.items():
        raised, expected = kinds(found[key]), set(filter(None, t["expected_flags"].split(";")))
        legal = int(t["legal_age"])
        assert ("birth_date_under_age" in raised) == ("birth_date_under_age" in expected), key
        assert ("birth_date_under_age" in raised) == (
            birth_years(t) is not None and birth_years(t) < legal
        )
        if "id_contradicts_face" in raised:
            years = birth_years(t)
            assert years is not None and years >= legal and t["camera"] in (FACE, TWO_FACES)
        if "no_id_check" in raised:
            assert not saw_id(t), key
    faces = with_face(known)
    borrowed = [k for k in faces if known[k]["borrowed_id"] == "true"]
    assert len(borrowed) >= 3  # the plan of this seed: all at Sydney's lax cashier
    assert {known[k]["cashier_id"] for k in borrowed} == {"C02"}
    caught = sum("id_contradicts_face" in kinds(found[k]) for k in borrowed)
    assert caught >= len(borrowed) / 2
    assert sum("birth_date_under_age" in kinds(r) for r in found.values()) >= 1
    unchecked = [k for k in faces if int(known[k]["shopper_age"]) < 18 and not saw_id(known[k])]
    assert unchecked
    flagged = [k for k in unchecked if "no_id_check" in kinds(found[k])]
    estimated_under = [k for k in unchecked if float(found[k]["estimated_age"] or 99) < 25]
    assert flagged == estimated_under
    out = demo.output
    assert "Age checks at the till: " in out and "challenged" in out
    births = sum("birth_date_under_age" in kinds(r) for r in found.values())
    assert f"birth_date_under_age: {births} of {births} expected, {births} raised" in out
    assert f"caught {caught} of {len(borrowed)} " in out


def test_auditing_again_gives_the_same_verdicts(demo: Demo) -> None:
    before = {day: (demo.folder / "flags" / f"{day}.csv").read_text("utf-8") for day in DATES}
    result = auditor(demo, "audit", "--since", str(DATES[0]), "--date", str(DATES[-1]))
    assert result.output.count(": 15 alcohol sales") == 4
    for day in DATES:
        again = auditor(demo, "flags", "--date", str(day)).output
        assert again == before[day]


# -- other thresholds ----------------------------------------------------------------------------


def _verdicts(settings: Settings) -> dict[Key, dict]:
    engine = make_engine(settings.database_url)
    try:
        with Session(engine) as session:
            rows = [
                row
                for day in DATES
                for row in night_verdicts(session, day=day, settings=settings).rows
            ]
    finally:
        engine.dispose()
    return {(r["store_id"], r["receipt_id"]): r for r in rows}


def _audit_with(settings: Settings) -> dict[Key, dict]:
    engine = make_engine(settings.database_url)
    try:
        summaries = audit_nights(
            engine=engine,
            settings=settings,
            tools=AuditTools.load(settings),
            nights=[(store, day) for store in STORES for day in DATES],
        )
    finally:
        engine.dispose()
    assert [s.status for s in summaries] == ["succeeded"] * 4
    return _verdicts(settings)


def test_threshold_200_flags_every_face_and_0_none(demo: Demo, demo_copy: Demo) -> None:
    """Under 200 every face without an ID check is flagged no_id_check; under 0 none is."""
    known = truth(demo)
    settings = demo_copy.settings()
    everyone = _audit_with(with_threshold(settings, 200))
    for key, row in everyone.items():
        face = row["estimated_age"] is not None
        assert ("no_id_check" in row["flags"]) == (face and not saw_id(known[key]))
    assert sum(row["estimated_age"] is not None for row in everyone.values()) >= 50
    nobody = _audit_with(with_threshold(settings, 0))
    assert not any("no_id_check" in row["flags"] for row in nobody.values())
    for key, row in nobody.items():  # the other flags stay as they were
        others = [k for k in everyone[key]["flags"] if k != "no_id_check"]
        assert row["flags"] == others


def test_a_higher_threshold_flags_more(demo: Demo, demo_copy: Demo) -> None:
    """AUDITOR_AUDIT__AGE_THRESHOLD=30: the expected set grows, and so do the flags."""
    known = truth(demo)
    faces = {k for k in with_face(known) if not saw_id(known[k])}
    expected = {t: {k for k in faces if int(known[k]["shopper_age"]) < t} for t in (25, 30)}
    assert expected[25] < expected[30]

    at_25 = {k for k, r in all_exported(demo).items() if "no_id_check" in kinds(r)}
    env = {"AUDITOR_AUDIT__AGE_THRESHOLD": "30"}
    auditor(demo_copy, "audit", "--since", str(DATES[0]), "--date", str(DATES[-1]), env=env)
    rows: dict[Key, dict[str, str]] = {}
    for day in DATES:
        text = auditor(demo_copy, "flags", "--date", str(day), env=env).output
        rows |= {(r["store_id"], r["receipt_id"]): r for r in csv.DictReader(io.StringIO(text))}
    at_30 = {k for k, r in rows.items() if "no_id_check" in kinds(r)}
    assert at_30 == {
        k
        for k, r in rows.items()
        if r["estimated_age"] and float(r["estimated_age"]) < 30 and not saw_id(known[k])
    }
    assert at_25 < at_30
    assert len(at_30 & expected[30]) >= len(at_25 & expected[25])


# -- the same demo on PostgreSQL -----------------------------------------------------------------


@pytest.mark.postgresql
def test_the_same_demo_on_postgresql(
    demo: Demo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same seed in another folder and on PostgreSQL: the same files, the same verdicts."""
    url = create_pg_database("auditor_demo")
    try:
        monkeypatch.setenv("AUDITOR_DATABASE__URL", url)
        on_pg = run_demo(tmp_path / "chain")
        assert "Audit: 60 of 60 alcohol sales audited" in on_pg.output
        parts = ("auditor.toml", "truth.csv", "exports", "snapshots")
        inputs = file_hashes(demo.folder, *parts)
        assert len(inputs) > 80
        assert file_hashes(on_pg.folder, *parts) == inputs
        assert not (on_pg.folder / "auditor.db").exists()
        for day in DATES:
            assert exported(on_pg, day) == exported(demo, day)
    finally:
        drop_pg_database(url)
