import json

import keras
import numpy as np
import pandas as pd
import pytest

from model.build import ModelConfig
from model.data import SplitSpec, load_images, read_labels
from model.errors import ModelError
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
    with pytest.raises(ModelError, match="holds a run with other settings"):
        train(other, result.out, progress=False)


def test_config_round_trips_through_json(tiny_run):
    cfg, _ = tiny_run
    assert TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert cfg.tag() == "mobilenet_v2-dldl-32px-lr0.001-bs32"
