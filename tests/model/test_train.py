import dataclasses
import json
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest

from model.build import ModelConfig
from model.data import SplitSpec, load_images, read_labels
from model.errors import ModelError
from model.export import run_summary
from model.inference import AgeModel
from model.train import LOG_FILE, TrainConfig, train


class Interrupt(Exception):
    pass


class InterruptAfterFirstEpoch(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        raise Interrupt(f"stopped after epoch {epoch}")


def test_training_lowers_the_loss(tiny_run):
    _, result = tiny_run
    log = pd.read_csv(result.out / LOG_FILE)
    assert list(log["epoch"]) == [0, 1]
    assert log["loss"].iloc[-1] < log["loss"].iloc[0]
    assert result.best_model.is_file()
    assert (result.out / "training_curves.svg").read_text().lstrip().startswith("<?xml")


def test_saved_model_reloads_with_identical_predictions(tiny_run, faces_set):
    _, result = tiny_run
    original = keras.saving.load_model(result.best_model, compile=False)
    faces = load_images(read_labels(faces_set).head(16), 32).images
    reloaded = AgeModel(keras.saving.load_model(result.best_model, compile=False))
    expected = np.asarray(original(faces.astype("float32"), training=False)["age"]).reshape(-1)
    got = reloaded.estimate(faces, tta=False).ages
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4)


def test_interrupted_training_resumes_from_its_checkpoint(tmp_path, faces_set):
    cfg = TrainConfig(
        model=ModelConfig(
            backbone="mobilenet_v2", head="regression", input_size=32, learning_rate=1e-3
        ),
        data=(str(faces_set),),
        batch_size=32,
        epochs=3,
        head_epochs=0,
        split=SplitSpec(test=0.2, val=0.2),
        max_train=96,
    )
    out = tmp_path / "run"
    with pytest.raises(Interrupt):
        train(cfg, out, progress=False, callbacks=[InterruptAfterFirstEpoch()])
    assert list(pd.read_csv(out / LOG_FILE)["epoch"]) == [0]
    assert any((out / "backup" / "finetune").iterdir())

    result = train(cfg, out, progress=False)
    assert list(pd.read_csv(out / LOG_FILE)["epoch"]) == [0, 1, 2]  # epoch 0 is not run again
    state = json.loads((out / "train_state.json").read_text())
    assert state["stages_done"] == ["finetune"]
    assert result.best_model.is_file()
    assert not (out / "backup" / "finetune").exists()


def test_a_run_folder_refuses_other_settings(tmp_path, tiny_run):
    cfg, result = tiny_run
    other = TrainConfig(
        model=ModelConfig(backbone="mobilenet_v2", head="dex", input_size=32), data=cfg.data
    )
    with pytest.raises(ModelError, match="holds a run with other settings") as error:
        train(other, result.out, progress=False)
    assert "model.head: 'dldl' -> 'dex'" in str(error.value)


def test_a_path_given_another_way_is_the_same_setting(tiny_run, monkeypatch):
    from model.train import config_changes

    cfg, _ = tiny_run
    [folder] = cfg.data
    monkeypatch.chdir(Path(folder).parent)
    relative = dataclasses.replace(cfg, data=(Path(folder).name,))
    assert config_changes(cfg.to_dict(), relative) == []
    other = dataclasses.replace(cfg, data=(f"{folder}-other",), batch_size=8)
    resolved = str(Path(folder).resolve())
    assert config_changes(cfg.to_dict(), other) == [
        "batch_size: 32 -> 8",
        f"data: {(resolved,)!r} -> {(resolved + '-other',)!r}",
    ]


def test_config_round_trips_through_json(tiny_run):
    cfg, _ = tiny_run
    assert TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert cfg.tag() == "mobilenet_v2-dldl-32px-lr0.001-bs32"


def test_interrupted_training_counts_the_epochs_it_finished(tmp_path, faces_set):
    cfg = TrainConfig(
        model=ModelConfig(backbone="mobilenet_v2", head="dldl", input_size=32),
        data=(str(faces_set),),
        epochs=2,
        head_epochs=0,
        split=SplitSpec(test=0.2, val=0.2),
        max_train=64,
    )
    out = tmp_path / "run"
    with pytest.raises(Interrupt):
        train(cfg, out, progress=False, callbacks=[InterruptAfterFirstEpoch()])
    state = json.loads((out / "train_state.json").read_text())
    assert state["stages_done"] == []
    assert state["seconds"] > 0


@pytest.mark.parametrize(
    ("ages", "power", "expected"),
    [
        ([20, 20, 30, 30], 0.5, [1, 1, 1, 1]),  # as many faces at every age
        ([20, 20, 20, 20, 30], 0.0, [1, 1, 1, 1, 1]),  # no balancing asked for
        # median count 2.5: weights (2.5/4)**1 for age 20, (2.5/1)**1 for 30, then mean 1
        ([20, 20, 20, 20, 30], 1.0, np.array([0.625] * 4 + [2.5]) / 1.0),
        # median count 16.5: age 30 would weigh 16.5, clipped to 4
        ([20] * 32 + [30], 1.0, [16.5 / 32] * 32 + [4.0]),
    ],
)
def test_age_weights(ages, power, expected):
    from model.train import age_weights

    got = age_weights(ages, power)
    assert got.mean() == pytest.approx(1.0)
    expected = np.asarray(expected, dtype=float)
    np.testing.assert_allclose(got, expected / expected.mean(), rtol=1e-6)


def _band_scaled(raw: list[float]) -> list[float]:
    return list(np.asarray(raw) / np.mean(raw))


@pytest.mark.parametrize(
    ("ages", "groups", "power", "expected"),
    [
        # two groups, as many of each in the band: no change
        ([20, 21, 22, 23], [0, 0, 1, 1], 0.5, [1, 1, 1, 1]),
        # band 18-24: group 0 has 3 faces, group 1 one; mean 2 -> 2/3 and 2/1 at power 1,
        # then scaled so the band averages 1 (its total stays its 4 faces)
        ([20, 21, 22, 23], [0, 0, 0, 1], 1.0, _band_scaled([2 / 3, 2 / 3, 2 / 3, 2.0])),
        # power 0.5: the square roots, scaled the same way
        ([20, 21, 22, 23], [0, 0, 0, 1], 0.5, _band_scaled([(2 / 3) ** 0.5] * 3 + [2**0.5])),
        # bands are counted apart: the minor of group 1 is alone in its band, as is the adult
        ([15, 30, 30, 30], [1, 0, 0, 0], 1.0, [1, 1, 1, 1]),
        # band edges: 17 is a minor (10-17), 18 an adult (18-24), 9 a child (0-9)
        ([9, 10, 17, 18], [0, 1, 0, 1], 1.0, [1, 1, 1, 1]),
        ([10, 17, 17, 18], [1, 0, 0, 0], 1.0, [*_band_scaled([1.5, 0.75, 0.75]), 1.0]),
        # a face with no group weighs 1; clipped at 4 before the band's scaling
        (
            [20] * 10 + [21, 22],
            [0] * 10 + [1, None],
            1.0,
            [*_band_scaled([5.5 / 10] * 10 + [4.0]), 1.0],
        ),
        ([20, 21], [0, 1], 0.0, [1, 1]),
    ],
)
def test_group_weights(ages, groups, power, expected):
    from model.train import group_weights

    got = group_weights(ages, groups, power)
    assert got.mean() == pytest.approx(1.0)
    expected = np.asarray(expected, dtype=float)
    np.testing.assert_allclose(got, expected / expected.mean(), rtol=1e-6)


def test_group_weights_move_weight_within_a_band_not_between_bands():
    from model.train import group_weights

    # 100 minors of whom 97 of one group, 100 adults half and half
    ages = [15] * 100 + [30] * 100
    groups = [0] * 97 + [1] * 3 + [0] * 50 + [1] * 50
    got = group_weights(ages, groups, 0.5)
    assert got[:100].sum() == pytest.approx(100)
    assert got[100:].sum() == pytest.approx(100)
    assert got[97] > got[0]  # the rare minors gain, the common ones lose
    np.testing.assert_allclose(got[100:], 1.0, rtol=1e-6)


def test_sample_weights_multiply_the_age_and_group_balance():
    from model.train import age_weights, group_weights, sample_weights

    labels = pd.DataFrame(
        {"real_age": [12, 12, 12, 30, 30, 40], "race": pd.array([0, 0, 1, 0, 1, 1], "Int64")}
    )
    cfg = TrainConfig(data=("x",), age_balance=0.5, group_balance=1.0)
    both = age_weights(labels["real_age"], 0.5) * group_weights(
        labels["real_age"], labels["race"], 1.0
    )
    np.testing.assert_allclose(sample_weights(labels, cfg), both / both.mean(), rtol=1e-6)
    assert sample_weights(labels, TrainConfig(data=("x",))) is None
    with pytest.raises(ValueError, match="no race column"):
        sample_weights(labels.drop(columns="race"), cfg)
    assert cfg.tag().endswith("-bal0.5-grp1")


def test_warm_start_copies_the_exported_model_exactly(tiny_run, tiny_model_dir, faces_set):
    from model.build import build_model
    from model.train import _warm_start

    cfg, _ = tiny_run
    faces = load_images(read_labels(faces_set).head(16), 32).images.astype("float32")
    donor = AgeModel.load(tiny_model_dir)
    fresh = build_model(cfg.model)
    before = np.asarray(fresh(faces, training=False)["age"]).reshape(-1)
    _warm_start(fresh, tiny_model_dir)
    after = np.asarray(fresh(faces, training=False)["age"]).reshape(-1)
    np.testing.assert_allclose(after, donor.estimate(faces, tta=False).ages, rtol=1e-5, atol=1e-4)
    assert not np.allclose(before, after, atol=1e-3)


def test_a_warm_started_balanced_run_trains_one_stage(tmp_path, tiny_run, tiny_model_dir):
    cfg, _ = tiny_run
    warm = TrainConfig(
        model=cfg.model,
        data=cfg.data,
        epochs=1,
        head_epochs=2,
        backbone_weights="unused-with-init-model.h5",
        split=cfg.split,
        init_model=str(tiny_model_dir),
        age_balance=0.5,
    )
    assert warm.tag() == "mobilenet_v2-dldl-32px-lr0.001-bs32-warm-bal0.5"
    out = tmp_path / "warm"
    result = train(warm, out, progress=False)
    assert list(pd.read_csv(out / LOG_FILE)["epoch"]) == [0]
    state = json.loads((out / "train_state.json").read_text())
    assert state["stages_done"] == ["finetune"]
    donor = json.loads((tiny_model_dir / "model_card.json").read_text())["version"]
    assert state["previous_version"] == donor  # by version: the folder may change
    assert run_summary(out)["previous_version"] == donor
    assert result.best_model.is_file()


def test_warm_start_from_another_architecture_is_refused(tmp_path, tiny_run, tiny_model_dir):
    cfg, _ = tiny_run
    other = TrainConfig(
        model=ModelConfig(backbone="mobilenet_v2", head="regression", input_size=32),
        data=cfg.data,
        epochs=1,
        head_epochs=0,
        split=cfg.split,
        init_model=str(tiny_model_dir),
    )
    with pytest.raises(ModelError, match="architecture differs"):
        train(other, tmp_path / "other", progress=False)
    assert not (tmp_path / "other" / "train_state.json").exists()  # the folder stays reusable


def test_settings_that_do_not_go_together_are_refused():
    with pytest.raises(ValueError, match="aligned faces have none"):
        TrainConfig(context=1.6)
    with pytest.raises(ValueError, match="only the audit's face stage places faces in scenes"):
        TrainConfig(scenes=0.5)
    with pytest.raises(ValueError, match="not a share"):
        TrainConfig(framing="audit", context=1.6, augment="camera", scenes=1.5)
    scened = TrainConfig(framing="audit", context=1.6, augment="camera", scenes=0.5)
    assert scened.tag().endswith("-audit1.6-scenes0.5-camera")
    assert TrainConfig.from_dict(scened.to_dict()) == scened


@pytest.mark.parametrize(
    "option, value",
    [
        ("--batch-size", "0"),
        ("--epochs", "0"),
        ("--patience", "0"),
        ("--learning-rate", "0"),
        ("--dropout", "1"),
        ("--max-train", "-5"),
    ],
)
def test_train_refuses_a_setting_out_of_range_before_it_starts(tmp_path, faces_set, option, value):
    from click.testing import CliRunner

    from auditor.cli.model import model_group

    out = tmp_path / "run"
    args = ["train", "--data", str(faces_set), "--out", str(out), option, value]
    result = CliRunner().invoke(model_group, args)
    assert result.exit_code == 2
    assert f"Invalid value for '{option}'" in result.output
    assert not out.exists()
