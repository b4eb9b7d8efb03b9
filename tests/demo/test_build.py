"""Writing the demo chain out: settings, POS exports, frames and truth, the same for a seed."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import pytest

from auditor.audit.frames import UnreadableFrame, read_frame
from auditor.demo.build import (
    DemoError,
    build_demo,
    face_catalogue,
    prepare_folder,
    read_truth,
    write_settings,
)
from auditor.demo.chain import DAMAGED, DemoSpec, store_plans
from auditor.demo.datasets import datasets_dir
from auditor.settings import load_settings
from model import read_card
from model.data import SplitSpec, split_of

TINY = DemoSpec(seed=2, stores=1, days=1, sales_per_day=6)
MODEL_DIR = Path(__file__).resolve().parents[2] / "model" / "bundled"


@pytest.fixture(autouse=True)
def _needs_faces_and_model() -> None:
    if not (datasets_dir() / "faces200" / "labels.csv").is_file():
        pytest.skip(f"no faces200 under {datasets_dir()}")
    if not (MODEL_DIR / "model_card.json").is_file():
        pytest.skip(f"no bundled model card in {MODEL_DIR}")


def file_hashes(folder: Path) -> dict[str, str]:
    return {
        path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def test_same_spec_same_files(tmp_path: Path) -> None:
    first = build_demo(tmp_path / "a", TINY)
    again = build_demo(tmp_path / "b", TINY)
    other = build_demo(tmp_path / "c", DemoSpec(seed=3, stores=1, days=1, sales_per_day=6))
    hashes = file_hashes(first.folder)
    assert hashes == file_hashes(again.folder)
    assert hashes.keys() >= {"auditor.toml", "truth.csv", "exports/BER1/2024-03-31.csv"}
    assert sum(name.startswith("snapshots/BER1/") for name in hashes) == first.frames_written
    other_hashes = file_hashes(other.folder)
    assert other_hashes["auditor.toml"] == hashes["auditor.toml"]
    assert other_hashes["exports/BER1/2024-03-31.csv"] != hashes["exports/BER1/2024-03-31.csv"]


def test_what_is_written(tmp_path: Path) -> None:
    built = build_demo(tmp_path / "demo", TINY)
    settings = load_settings(built.settings_path)
    assert settings.snapshot_root == built.snapshot_root == tmp_path / "demo" / "snapshots"
    assert settings.database_url == f"sqlite:///{tmp_path / 'demo' / 'auditor.db'}"
    assert [s.id for s in settings.stores] == ["BER1"]
    assert str(settings.store_zone("BER1")) == "Europe/Berlin"

    truth = read_truth(built.truth_path)
    assert len(truth) == len(built.plan.alcohol_sales) == TINY.sales_per_day
    with (built.folder / "exports" / "BER1" / "2024-03-31.csv").open(encoding="utf-8") as f:
        pos = {row["receipt_id"]: row for row in csv.DictReader(f)}
    for row in truth:  # the till's age check, as the POS export gives it
        assert row["legal_age"] == "18"
        assert (row["age_check"], row["birth_date"]) == (
            pos[row["receipt_id"]]["age_check"],
            pos[row["receipt_id"]]["birth_date"],
        )
        assert row["age_check"] in ("none", "visual", "id_checked", "id_scanned")
    spec = SplitSpec(**read_card(MODEL_DIR)["training"]["split_spec"])
    assert all(split_of(row["face_file"], spec) == "test" for row in truth)

    for sale in built.plan.sales:
        for frame in sale.frames:
            path = built.snapshot_root / frame.path
            if sale.camera == DAMAGED:
                with pytest.raises(UnreadableFrame):
                    read_frame(path)
            else:
                assert read_frame(path).shape == (480, 640, 3)


def test_stores_are_audited_by_their_countrys_legal_age(tmp_path: Path) -> None:
    settings = load_settings(write_settings(tmp_path, store_plans(5)))
    rules = {s.id: settings.rules(s.id) for s in settings.stores}
    assert {store: r.legal_age for store, r in rules.items()} == {
        "BER1": 18,
        "SYD1": 18,
        "NYC1": 21,
        "LON1": 18,
        "TYO1": 20,
    }
    assert {r.age_threshold for r in rules.values()} == {25}  # the chain's


def test_faces_are_those_the_model_never_trained_on() -> None:
    faces = face_catalogue(MODEL_DIR)
    spec = SplitSpec(**read_card(MODEL_DIR)["training"]["split_spec"])
    names = [name for group in faces.values() for name in group]
    assert len(names) > 1000
    assert all(split_of(name, spec) == "test" for name in names)
    assert all(name.startswith(f"{age}_") for age, group in faces.items() for name in group)


def test_a_model_card_without_its_split(tmp_path: Path) -> None:
    (tmp_path / "model_card.json").write_text('{"version": "x"}', encoding="utf-8")
    with pytest.raises(DemoError, match="split_spec"):
        face_catalogue(tmp_path)


def test_prepare_folder_replaces_a_demo_and_refuses_anything_else(tmp_path: Path) -> None:
    built = build_demo(tmp_path / "demo", TINY)
    (built.folder / "auditor.db").write_bytes(b"old database")
    (built.folder / "notes.txt").write_text("mine", encoding="utf-8")
    prepare_folder(built.folder)
    assert sorted(p.name for p in built.folder.iterdir()) == ["notes.txt"]

    with pytest.raises(DemoError, match="holds no demo"):
        prepare_folder(built.folder)
    cut_short = tmp_path / "cut-short"  # settings written, then the face set was missing
    cut_short.mkdir()
    write_settings(cut_short, [])
    prepare_folder(cut_short)
    assert not any(cut_short.iterdir())
    (tmp_path / "file").write_text("x", encoding="utf-8")
    with pytest.raises(DemoError, match="not a folder"):
        prepare_folder(tmp_path / "file")
    prepare_folder(tmp_path / "new" / "demo")
    assert (tmp_path / "new" / "demo").is_dir()
