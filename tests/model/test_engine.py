"""The inference engine: OpenVINO IR built from the tiny real model, checked against Keras on
real faces, chosen by measurement, and Keras as the fallback when its files do not check out."""

import contextlib
import json
import logging
import shutil
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from click.testing import CliRunner

from auditor.audit.examine import load_age_model
from auditor.cli.model import model_group
from model import AgeModel, ModelDirectoryError, ModelError, read_card
from model.data import load_images, read_labels
from model.engine import CANDIDATES, choose
from model.inference import MODEL_FILE, file_hash
from model.runtime import IR_FILE, IR_WEIGHTS


@pytest.fixture(scope="module")
def engine_dir(tmp_path_factory, tiny_model_dir, faces_set):
    """A copy of the tiny model with its OpenVINO fp32 engine, built through the CLI."""
    target = tmp_path_factory.mktemp("engine") / "tiny_model"
    shutil.copytree(tiny_model_dir, target)
    result = CliRunner().invoke(
        model_group,
        ["engine", "--model", str(target), "--data", str(faces_set), "--choose", "openvino-fp32"],
    )
    assert result.exit_code == 0, result.output
    return target, result.output


@pytest.fixture
def engine_copy(engine_dir, tmp_path):
    target = tmp_path / "model"
    shutil.copytree(engine_dir[0], target)
    return target


@pytest.fixture(scope="module")
def faces(faces_set):
    images = load_images(read_labels(faces_set).head(40), 64).images
    return [images[0][:50, :40], *images[1:]]  # one crop of another size


def test_cli_writes_the_engine_section(engine_dir, tiny_model_dir):
    model_dir, output = engine_dir
    card = read_card(model_dir)
    section = card["engine"]
    assert section["default"] == "openvino" and section["chosen"] == "openvino-fp32"
    assert section["precision"] == "fp32"
    assert section["files"] == {name: file_hash(model_dir / name) for name in (IR_FILE, IR_WEIGHTS)}
    assert [m["engine"] for m in section["measurements"]] == list(CANDIDATES)
    assert all(m["images_per_s"] > 0 for m in section["measurements"])
    keras_mae, fp32_mae = (m["test_mae"] for m in section["measurements"][:2])
    assert fp32_mae == pytest.approx(keras_mae, abs=1e-3)
    assert section["measured_on"]["faces"] == card["metrics"]["n"]
    assert "chosen by hand" in section["rule"]
    # the version still names the Keras file, and the rest of the card is unchanged
    assert card["version"] == read_card(tiny_model_dir)["version"]
    assert card["version"] == file_hash(model_dir / MODEL_FILE)[:12]
    assert card["metrics"] == read_card(tiny_model_dir)["metrics"]
    assert "openvino-int8" in output and "chosen: openvino-fp32" in output


@pytest.mark.parametrize("hint", ["throughput", "latency"])
@pytest.mark.parametrize("tta", [True, False])
@pytest.mark.parametrize("batch_size", [1, 7, 64])
def test_openvino_gives_the_ages_and_spreads_of_keras(engine_dir, faces, tta, batch_size, hint):
    engine = AgeModel.load(engine_dir[0], engine="openvino", hint=hint)
    assert str(engine.runner.compiled.get_property("PERFORMANCE_HINT")) == hint.upper()
    keras = AgeModel.load(engine_dir[0], engine="keras")
    assert (engine.engine, keras.engine) == ("openvino-fp32", "keras")
    assert engine.keras_model is None and engine.input_size == keras.input_size
    got = engine.estimate(faces, batch_size=batch_size, tta=tta)
    expected = keras.estimate(faces, batch_size=batch_size, tta=tta)
    np.testing.assert_allclose(got.ages, expected.ages, atol=1e-3)
    np.testing.assert_allclose(got.spreads, expected.spreads, atol=1e-3)
    assert engine.estimate([]).ages.shape == (0,)


def test_auto_uses_the_card_engine(engine_dir, tiny_model_dir, caplog):
    with caplog.at_level(logging.WARNING):
        assert AgeModel.load(engine_dir[0]).engine == "openvino-fp32"
        assert AgeModel.load(tiny_model_dir).engine == "keras"  # its card chose none
    assert not caplog.records


@pytest.mark.parametrize(
    "damage, message",
    [
        ("remove xml", "age_model.xml: OpenVINO engine file not found"),
        ("remove bin", "age_model.bin: OpenVINO engine file not found"),
        ("alter xml", "age_model.xml: SHA-256 does not match"),
        ("alter bin", "age_model.bin: SHA-256 does not match"),
    ],
)
def test_auto_falls_back_to_keras_with_one_warning(engine_copy, caplog, damage, message):
    action, kind = damage.split()
    path = engine_copy / (IR_FILE if kind == "xml" else IR_WEIGHTS)
    if action == "remove":
        path.unlink()
    else:
        path.write_bytes(path.read_bytes()[:-1] + b" ")
    with caplog.at_level(logging.WARNING, logger="model"):
        loaded = AgeModel.load(engine_copy)
    assert loaded.engine == "keras"
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert message in warnings[0].getMessage() and "Keras" in warnings[0].getMessage()
    with pytest.raises(ModelDirectoryError, match=message):
        AgeModel.load(engine_copy, engine="openvino")


def test_auto_falls_back_when_openvino_cannot_be_imported(engine_dir, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "openvino", None)
    with caplog.at_level(logging.WARNING, logger="model"):
        assert AgeModel.load(engine_dir[0]).engine == "keras"
    assert "OpenVINO cannot be imported" in caplog.text


def test_forced_openvino_names_the_missing_engine(tiny_model_dir):
    with pytest.raises(ModelDirectoryError, match="no OpenVINO engine recorded.*auditor model"):
        AgeModel.load(tiny_model_dir, engine="openvino")
    with pytest.raises(ModelError, match="engine: unknown 'tflite'"):
        AgeModel.load(tiny_model_dir, engine="tflite")
    with pytest.raises(ModelError, match="performance hint: unknown 'fastest'"):
        AgeModel.load(tiny_model_dir, hint="fastest")


def test_the_audit_loads_the_configured_engine(engine_dir):
    assert load_age_model(engine_dir[0]).engine == "openvino-fp32"
    assert load_age_model(engine_dir[0], engine="keras").engine == "keras"
    latency = load_age_model(engine_dir[0], hint="latency")
    assert latency.runner.hint == "latency" and load_age_model(engine_dir[0]).runner.hint == (
        "throughput"
    )


def test_a_tampered_card_version_is_still_refused(engine_copy):
    card = read_card(engine_copy)
    card["version"] = "0" * 12
    (engine_copy / "model_card.json").write_text(json.dumps(card))
    with pytest.raises(ModelDirectoryError, match="does not match version"):
        AgeModel.load(engine_copy)


@pytest.mark.parametrize(
    "measured, chosen",
    [
        ([("keras", 40, 4.78), ("openvino-fp32", 80, 4.78), ("openvino-int8", 140, 4.81)], "int8"),
        ([("keras", 40, 4.78), ("openvino-fp32", 80, 4.78), ("openvino-int8", 140, 4.89)], "fp32"),
        ([("keras", 40, 4.78), ("openvino-fp32", 80, 4.88), ("openvino-int8", 140, 5.0)], "fp32"),
        ([("keras", 90, 4.78), ("openvino-fp32", 80, 4.78), ("openvino-int8", 140, 4.9)], "keras"),
        ([("keras", 40, 4.78), ("openvino-fp32", 80, 4.7), ("openvino-int8", 70, 4.6)], "fp32"),
    ],
)
def test_the_fastest_engine_within_a_tenth_of_a_year_is_chosen(measured, chosen):
    table = [{"engine": e, "images_per_s": s, "test_mae": mae} for e, s, mae in measured]
    assert choose(table).removeprefix("openvino-") == chosen


def test_openvino_is_set_up_once_before_any_other_thread_uses_it(monkeypatch):
    """Threads that start together: the bindings' first use runs once, in one of them, and
    finishes before any of them goes on to use OpenVINO."""
    from model import runtime

    first_use = runtime._first_use_of_bindings
    events: list[str] = []

    def recorded_first_use():
        events.append("first use starts")
        time.sleep(0.2)  # long enough for the other threads to be waiting on the lock
        first_use()
        events.append("first use ends")

    monkeypatch.setattr(runtime, "_openvino_bindings_ready", False)
    monkeypatch.setattr(runtime, "_first_use_of_bindings", recorded_first_use)
    start = threading.Barrier(4)

    def uses_openvino():
        start.wait()
        with runtime.openvino_setup():
            events.append("uses OpenVINO")

    threads = [threading.Thread(target=uses_openvino) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert events == ["first use starts", "first use ends"] + ["uses OpenVINO"] * 4
    with runtime.openvino_setup():  # later set-ups do not repeat it
        pass
    assert events.count("first use starts") == 1


def test_the_detector_and_the_age_model_compile_under_the_set_up_lock(engine_dir, monkeypatch):
    from auditor.audit import detect as detect_module
    from model import runtime

    holding: list[str] = []
    real = runtime.openvino_setup

    @contextlib.contextmanager
    def recorded(who):
        with real():
            holding.append(who)
            yield

    monkeypatch.setattr(runtime, "openvino_setup", lambda: recorded("age model"))
    monkeypatch.setattr(detect_module, "openvino_setup", lambda: recorded("detector"))
    detect_module._openvino_blazeface.cache_clear()
    AgeModel.load(engine_dir[0], engine="openvino")
    detect_module.FaceDetector("blazeface-short").detect(np.zeros((48, 64, 3), np.uint8))
    assert holding == ["age model", "detector", "detector"]  # compile; the infer request


def test_the_audit_on_openvino_does_not_import_tensorflow(engine_dir):
    """A Dask worker or a nightly run on the OpenVINO engine starts without TensorFlow."""
    script = (
        "import sys\n"
        "import numpy as np\n"
        "from auditor.audit.examine import load_age_model\n"
        "from auditor.audit.detect import get_detector\n"
        f"model = load_age_model({str(engine_dir[0])!r}, 'openvino')\n"
        "get_detector('blazeface-short').detect(np.zeros((480, 640, 3), np.uint8))\n"
        "print(model.engine, len(model.estimate([np.zeros((50, 40, 3), np.uint8)]).ages))\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["openvino-fp32", "1"]


def test_keras_cuts_a_large_batch_into_calls_and_keeps_the_order(tiny_model_dir, faces):
    from model.runtime import KERAS_CALL_BATCH

    model = AgeModel.load(tiny_model_dir, engine="keras")
    x = model.prepare(faces)
    batch = np.concatenate([x, x[:, :, ::-1]])  # 80 images: calls of 32, 32 and 16
    assert len(batch) > 2 * KERAS_CALL_BATCH
    whole = model.runner(batch)
    singly = [model.runner(batch[i : i + 1]) for i in range(len(batch))]
    for key in whole:
        assert whole[key].shape[0] == len(batch)
        expected = np.concatenate([one[key] for one in singly])
        np.testing.assert_allclose(whole[key], expected, rtol=1e-4, atol=1e-4)
