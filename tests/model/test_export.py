import json
import zipfile

import numpy as np
import pytest
from click.testing import CliRunner

from auditor.cli.model import model_group
from model import AgeModel, ModelDirectoryError, read_card
from model.data import load_images, read_labels
from model.inference import MODEL_FILE, file_hash


def test_export_writes_a_versioned_model_directory(tiny_model_dir):
    card = read_card(tiny_model_dir)
    assert card["version"] == file_hash(tiny_model_dir / MODEL_FILE)[:12]
    assert card["architecture"]["input_size"] == 32
    assert card["architecture"]["head"] == "dldl"
    assert "non-commercial research" in card["training"]["data_terms"]
    assert [r["threshold"] for r in card["threshold_table"]] == list(range(16, 31))
    assert (
        card["metrics"]["n"]
        == json.loads((tiny_model_dir / "evaluation" / "metrics.json").read_text())["n"]
    )
    assert card["candidates"][-1]["chosen"] is True
    # the calibration: fitted on the validation split, measured on the test split
    calibration = card["calibration"]
    assert calibration["fitted_on"].startswith("validation split (")
    assert calibration["measured_on"] == f"test split ({card['metrics']['n']} faces)"
    assert calibration["faces"] == "aligned crops" and calibration["engine"] == "keras"
    assert all(0 <= e <= 1 for e in calibration["ece"].values())
    # no optimizer state in the shipped file
    with zipfile.ZipFile(tiny_model_dir / MODEL_FILE) as archive:
        assert not any("optimizer" in name for name in archive.namelist())


def test_age_model_estimates_any_crop_size_with_a_spread(tiny_model_dir, faces_set):
    model = AgeModel.load(tiny_model_dir)
    faces = load_images(read_labels(faces_set).head(6), 64).images
    crops = [faces[0], faces[1][:50, :40], faces[2]]  # different sizes
    estimates = model.estimate(crops)
    assert estimates.ages.shape == (3,) and estimates.spreads.shape == (3,)
    assert np.all((estimates.ages >= 0) & (estimates.ages <= 100))
    assert np.all(estimates.spreads > 0)
    assert model.estimate([]).ages.shape == (0,)
    again = model.estimate(crops)
    np.testing.assert_allclose(again.ages, estimates.ages, rtol=1e-6)


def test_evaluate_reproduces_the_model_card(tiny_model_dir, tmp_path):
    card = read_card(tiny_model_dir)
    result = CliRunner().invoke(
        model_group,
        [
            "evaluate",
            "--model",
            str(tiny_model_dir),
            "--out",
            str(tmp_path / "eval"),
            *sum((["--data", d] for d in card["training"]["data"]), []),
        ],
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    # same split rule as training: the card's split is 20% test for the tiny run
    assert metrics["n"] == card["metrics"]["n"]
    assert metrics["mae"] == pytest.approx(card["metrics"]["mae"], abs=1e-6)
    html = (tmp_path / "eval" / "evaluation.html").read_text()
    assert "<svg" in html and f"{card['metrics']['mae']:,.2f}" in html
    # the reliability chart and ECE table of the card's calibration, on the same test faces
    assert metrics["calibration"]["ece"] == pytest.approx(card["calibration"]["ece"])
    assert "P(true age &lt; 25)" in html
    assert f"{card['calibration']['ece']['18']:,.3f}" in html


def test_corrupt_model_file_is_one_clear_error(tiny_model_dir, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model_card.json").write_text((tiny_model_dir / "model_card.json").read_text())
    (broken / MODEL_FILE).write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ModelDirectoryError, match="not a loadable Keras model"):
        AgeModel.load(broken)


def test_model_directory_without_card(tmp_path):
    with pytest.raises(ModelDirectoryError, match="model_card.json: not found"):
        AgeModel.load(tmp_path)


def test_tampered_model_does_not_match_its_version(tiny_model_dir, tmp_path):
    copy = tmp_path / "copy"
    copy.mkdir()
    card = read_card(tiny_model_dir)
    card["version"] = "0" * 12
    (copy / "model_card.json").write_text(json.dumps(card))
    (copy / MODEL_FILE).write_bytes((tiny_model_dir / MODEL_FILE).read_bytes())
    with pytest.raises(ModelDirectoryError, match="does not match version"):
        AgeModel.load(copy)


def test_explore_page(faces_set, tmp_path):
    result = CliRunner().invoke(
        model_group, ["explore", "--data", str(faces_set), "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    html = (tmp_path / "explore.html").read_text()
    faces = len(read_labels(faces_set))
    assert f'<div class="value">{faces}</div><div class="label">faces</div>' in html
    assert html.count("data:image/jpeg;base64,") >= 7 * 4
    assert "<svg" in html


def test_another_run_is_recorded_as_a_candidate_once(tiny_model_dir, tiny_run, tmp_path):
    import shutil

    _, result = tiny_run
    model_dir = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model_dir)
    for _ in range(2):  # measured again, not listed twice
        outcome = CliRunner().invoke(
            model_group, ["candidate", "--model", str(model_dir), "--run", str(result.out)]
        )
        assert outcome.exit_code == 0, outcome.output
    assert "test MAE" in outcome.output
    card = read_card(model_dir)
    chosen = [c for c in card["candidates"] if c["chosen"]]
    others = [c for c in card["candidates"] if not c["chosen"]]
    assert len(chosen) == 1 and len(others) == 1
    # the same weights as the exported model, measured on the same split: the same MAE
    assert others[0]["test_mae"] == pytest.approx(card["metrics"]["mae"], abs=1e-3)
    assert others[0]["epochs"] == 2
    assert set(others[0]["operating_point"]) >= {"threshold", "minors_flagged", "adults_flagged"}
    assert (result.out / "evaluation" / "metrics.json").is_file()
    assert AgeModel.load(model_dir).version == card["version"]  # the model itself is untouched


@pytest.mark.parametrize(
    "card, message",
    [
        ([], "not a model card (a JSON object is expected)"),
        ({"version": "x", "preprocessing": []}, "preprocessing: not a JSON object"),
        ({"version": 12}, "version: not text"),
    ],
)
def test_a_card_of_the_wrong_shape_is_one_clear_error(tmp_path, card, message):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "model_card.json").write_text(json.dumps(card))
    with pytest.raises(ModelDirectoryError) as error:
        read_card(folder)
    assert str(error.value) == f"{folder / 'model_card.json'}: {message}"


def test_a_null_section_is_no_section(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "model_card.json").write_text('{"version": "v1", "preprocessing": null}')
    assert read_card(folder) == {"version": "v1"}


def test_export_never_writes_over_a_folder_that_is_not_a_model(tiny_run, tiny_model_dir, tmp_path):
    from model import export_model
    from model.errors import ModelError

    _, result = tiny_run
    other = tmp_path / "notes"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    with pytest.raises(ModelError, match="exists and is not a model directory"):
        export_model(result.out, other, engine=False, limit=8)
    with pytest.raises(ModelError, match="holds"):
        export_model(result.out, result.out.parent, engine=False, limit=8)
    with pytest.raises(ModelError, match="holds"):
        export_model(result.out, result.out, engine=False, limit=8)
    assert (other / "notes.txt").read_text() == "keep me"
    assert (result.out / "train_state.json").is_file()
