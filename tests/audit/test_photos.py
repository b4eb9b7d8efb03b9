"""The audit's face stage on photos: `auditor model predict`, `evaluate --find-faces` and
`--perturb`, on real faces and a real (tiny) model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from auditor.audit.photos import face_stage_loader, find_face
from auditor.cli import main
from model.data import read_labels
from tests.helpers.model import datasets_dir, make_labelled_set

FAIRFACE = datasets_dir() / "fairface540"


def run(*args) -> object:
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> dict[str, Path]:
    """Real photos from another source, a grey picture with no face, and a file that is not
    an image."""
    folder = tmp_path_factory.mktemp("photos")
    names = sorted(p.name for p in (FAIRFACE / "final_files").iterdir())[:3]
    found = {
        f"face{i}": shutil.copy(FAIRFACE / "final_files" / n, folder) for i, n in enumerate(names)
    }
    cv2.imwrite(str(folder / "wall.jpg"), np.full((300, 400, 3), 128, np.uint8))
    (folder / "notes.jpg").write_text("not a picture")
    return {
        **{k: Path(v) for k, v in found.items()},
        "wall": folder / "wall.jpg",
        "notes": folder / "notes.jpg",
    }


@pytest.fixture(scope="module")
def grouped_set(tmp_path_factory, photos) -> Path:
    """Twelve fairface540 faces of three age groups, plus the grey picture (no face)."""
    folder = tmp_path_factory.mktemp("grouped") / "set"
    (folder / "final_files").mkdir(parents=True)
    labels = pd.read_csv(FAIRFACE / "labels.csv")
    chosen = pd.concat(labels[labels["age_group"] == g].head(4) for g in ("3-9", "20-29", "70+"))
    for name in chosen["file_name"]:
        shutil.copy(FAIRFACE / "final_files" / name, folder / "final_files")
    shutil.copy(photos["wall"], folder / "final_files" / "wall.jpg")
    rows = [*chosen[["file_name", "age_group"]].itertuples(index=False), ("wall.jpg", "20-29")]
    pd.DataFrame(rows, columns=["file_name", "age_group"]).to_csv(
        folder / "labels.csv", index=False
    )
    return folder


def test_find_face_cuts_the_face_of_a_photo(photos):
    image = cv2.imread(str(photos["face0"]))
    face = find_face(image, size=64)
    assert face is not None and face.crop.shape == (64, 64, 3)
    height, width = image.shape[:2]
    assert face.box.x >= 0 and face.box.x + face.box.w <= width
    assert face.box.y >= 0 and face.box.y + face.box.h <= height
    assert face.box.w > width / 5  # the portrait's face, not a speck
    assert find_face(cv2.imread(str(photos["wall"]))) is None


def test_the_face_stage_loader_counts_or_stands_in_for_missed_faces(grouped_set):
    df = read_labels(grouped_set)
    measured = face_stage_loader()(df, 48)
    assert measured.images.shape == (12, 48, 48, 3)
    assert [Path(p).name for p in measured.not_found] == ["wall.jpg"]
    assert "wall.jpg" not in set(measured.labels["file_name"])
    training = face_stage_loader(1.5, fallback=True)(df, 72)
    assert training.images.shape == (13, 72, 72, 3) and not training.not_found
    assert training.labels["face_found"].tolist() == [True] * 12 + [False]


def test_predict_prints_box_age_and_spread(photos, age_model_dir):
    result = run("model", "predict", "--model", age_model_dir, *photos.values())
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split()[:4] == ["file", "box", "age", "spread"]
    by_file = {Path(line.split()[0]).name: line for line in lines[1:]}
    assert "no face found" in by_file["wall.jpg"]
    assert "unreadable: not an image" in by_file["notes.jpg"]
    face = by_file[photos["face0"].name].split()
    assert "x" in face[2] and float(face[3]) > 0


def test_predict_json_and_csv_agree_with_the_face_stage(photos, age_model_dir):
    result = run(
        "model",
        "predict",
        "--model",
        age_model_dir,
        "--format",
        "json",
        photos["face0"],
        photos["wall"],
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    face = find_face(cv2.imread(str(photos["face0"])))
    assert (rows[0]["x"], rows[0]["y"], rows[0]["w"], rows[0]["h"]) == (
        face.box.x,
        face.box.y,
        face.box.w,
        face.box.h,
    )
    assert 0 < rows[0]["age"] < 100 and rows[0]["spread"] > 0
    assert rows[1]["age"] is None and rows[1]["note"] == "no face found"
    csv = run("model", "predict", "--model", age_model_dir, "--format", "csv", photos["face0"])
    header, line = csv.output.splitlines()
    assert header == "file,x,y,w,h,age,spread,note"
    assert line.split(",")[5] == str(rows[0]["age"])


def test_evaluate_find_faces_measures_a_set_by_age_group(grouped_set, age_model_dir, tmp_path):
    out = tmp_path / "eval"
    result = run(
        "model",
        "evaluate",
        "--model",
        age_model_dir,
        "--data",
        grouped_set,
        "--split",
        "all",
        "--find-faces",
        "--out",
        out,
    )
    assert result.exit_code == 0, result.output
    assert "1 of 13 photos: no face found" in result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["faces_not_found"] == 1 and metrics["n"] == 12
    predictions = pd.read_csv(out / "predictions.csv")
    groups = metrics["by_age_group"]
    assert [g["group"] for g in groups] == ["3-9", "20-29", "70+"]
    for row in groups:
        mine = predictions.loc[predictions["age_group"] == row["group"], "predicted_age"]
        assert row["n"] == 4
        assert row["median"] == pytest.approx(float(np.median(mine)))
        assert row["under"]["25"] == pytest.approx(float((mine < 25).mean()))
        assert row["under"]["16"] <= row["under"]["25"] <= row["under"]["30"]


def test_evaluate_perturb_writes_the_robustness_table_into_the_card(tmp_path, age_model_dir):
    faces = make_labelled_set(tmp_path / "faces", source="faces200", n=60)
    model_dir = shutil.copytree(age_model_dir, tmp_path / "model")
    out = tmp_path / "robust"
    result = run(
        "model",
        "evaluate",
        "--model",
        model_dir,
        "--data",
        faces,
        "--split",
        "all",
        "--perturb",
        "--card",
        "--out",
        out,
    )
    assert result.exit_code == 0, result.output
    table = json.loads((out / "robustness.json").read_text())
    assert table["faces"] + table["faces_not_found"] == int(
        (pd.read_csv(faces / "labels.csv")["real_age"] >= 10).sum()
    )
    rows = {r["perturbation"]: r for r in table["table"]}
    assert len(rows) == 10 and rows["clean"]["mae_change"] == 0
    for row in rows.values():
        assert row["mae_change"] == pytest.approx(row["mae"] - rows["clean"]["mae"])
        assert row["bias_change"] == pytest.approx(row["bias"] - rows["clean"]["bias"])
        assert row["mae"] >= abs(row["bias"])
    card = json.loads((Path(model_dir) / "model_card.json").read_text())
    assert card["checks"]["robustness"] == table
    assert "hair_hidden" in result.output


def test_card_needs_a_model_directory(tmp_path, age_model_dir):
    result = run(
        "model",
        "evaluate",
        "--model",
        Path(age_model_dir) / "age_model.keras",
        "--data",
        tmp_path,
        "--card",
        "--out",
        tmp_path / "x",
    )
    assert result.exit_code == 2 and "--card needs --model to be a model directory" in result.output


def test_the_face_stage_loader_places_a_share_of_faces_in_scenes(tmp_path):
    """Scene framing: the chosen faces are cut from a synthetic checkout frame (its shelves
    and counter show around the face), the same faces every time; the rest as before."""
    df = read_labels(make_labelled_set(tmp_path / "set", source="faces200", n=24))
    plain = face_stage_loader(1.6, fallback=True)(df, 64)
    mixed = face_stage_loader(1.6, fallback=True, scenes=0.5)(df, 64)
    again = face_stage_loader(1.6, fallback=True, scenes=0.5)(df, 64)
    chosen = mixed.labels["in_scene"].to_numpy()
    assert 0 < chosen.sum() < len(df) and not plain.labels["in_scene"].any()
    np.testing.assert_array_equal(mixed.images, again.images)
    np.testing.assert_array_equal(mixed.images[~chosen], plain.images[~chosen])
    changed = np.abs(mixed.images.astype(float) - plain.images).mean(axis=(1, 2, 3))
    assert (changed[chosen] > 10).all()
    assert mixed.labels["face_found"][chosen].mean() > 0.8  # the detector finds them there
    everything = face_stage_loader(1.6, fallback=True, scenes=1.0)(df, 64)
    assert everything.labels["in_scene"].all()
    with pytest.raises(ValueError, match="scenes"):
        face_stage_loader(scenes=1.5)
