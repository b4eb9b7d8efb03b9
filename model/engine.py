"""Build the fast inference engine of a model directory and choose it by measurement.

Candidates: ``keras`` (the model file under ``tf.function``), ``openvino-fp32`` (the model
converted to OpenVINO IR) and ``openvino-int8`` (that IR quantized by NNCF, calibrated on
training-split faces). Each is timed on the held-out test split through
``AgeModel.estimate`` (batch 64, each face with its mirror) and its test MAE set against the
Keras one. The fastest within :data:`MAE_TOLERANCE` years of Keras becomes the card's default;
only its files are kept, under ``openvino/``, with their SHA-256 in the card's ``engine``
section. The card's ``version`` (the hash of ``age_model.keras``) does not change.
"""

from __future__ import annotations

import logging
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from model.data import SplitSpec, load_images, read_sets
from model.errors import ModelError
from model.inference import AgeModel, read_card, write_card
from model.runtime import (
    IR_FILE,
    IR_WEIGHTS,
    OPENVINO_DIR,
    OpenVinoRunner,
    file_hash,
    replace_dir,
)

log = logging.getLogger(__name__)

CANDIDATES = ("keras", "openvino-fp32", "openvino-int8")
MAE_TOLERANCE = 0.1  # years
CALIBRATION_FACES = 300
TIMING_BATCH = 64
RULE = f"fastest within {MAE_TOLERANCE} year of the Keras test MAE"
SIMD_FLAGS = (
    ("AVX2", "avx2"),
    ("AVX-512", "avx512f"),
    ("VNNI", "avx512_vnni"),
    ("AVX-VNNI", "avx_vnni"),
    ("AMX", "amx_int8"),
)


def convert_to_openvino(keras_model):
    """The Keras model as an OpenVINO model with a dynamic batch (via a TF SavedModel)."""
    import openvino as ov

    with tempfile.TemporaryDirectory() as saved:
        keras_model.export(saved, format="tf_saved_model", verbose=False)
        converted = ov.convert_model(saved)
    # The temporary folder's name would make every build's IR differ.
    converted.set_rt_info("age_model.keras", ["conversion_parameters", "input_model"])
    size = int(keras_model.inputs[0].shape[1])
    converted.reshape({converted.input(0): ov.PartialShape([-1, size, size, 3])})
    return converted


def quantize_int8(ov_model, calibration: np.ndarray):
    """Post-training int8 quantization (NNCF) calibrated on ``calibration`` faces."""
    import nncf

    nncf.set_log_level(logging.ERROR)
    dataset = nncf.Dataset(list(calibration.astype("float32")), lambda face: face[None])
    return nncf.quantize(
        ov_model,
        dataset,
        subset_size=len(calibration),
        preset=nncf.QuantizationPreset.PERFORMANCE,
    )


def save_ir(ov_model, folder: Path) -> Path:
    import openvino as ov

    xml = folder / Path(IR_FILE).name
    ov.save_model(ov_model, xml, compress_to_fp16=False)
    return xml


def measure(age_model: AgeModel, faces: np.ndarray, true_ages: np.ndarray) -> dict:
    """Crops per second through ``estimate`` (batch 64, mirror TTA) and the MAE; the ages too."""
    age_model.estimate(faces[:TIMING_BATCH], batch_size=TIMING_BATCH)  # warm up
    started = time.perf_counter()
    ages = age_model.estimate(faces, batch_size=TIMING_BATCH).ages
    seconds = time.perf_counter() - started
    return {
        "engine": age_model.engine,
        "images_per_s": round(len(faces) / seconds, 1),
        "test_mae": round(float(np.abs(ages - true_ages).mean()), 4),
        "ages": ages,
    }


def choose(measurements: list[dict], tolerance: float = MAE_TOLERANCE) -> str:
    """The fastest candidate whose test MAE is within ``tolerance`` years of Keras's."""
    keras_mae = next(m["test_mae"] for m in measurements if m["engine"] == "keras")
    eligible = [m for m in measurements if m["test_mae"] - keras_mae <= tolerance + 1e-9]
    return max(eligible, key=lambda m: m["images_per_s"])["engine"]


@dataclass
class EngineData:
    """The faces an engine is measured on (test split) and calibrated on (training split)."""

    test_faces: np.ndarray
    test_ages: np.ndarray
    calibration: np.ndarray


def engine_data(
    card: dict,
    data: Sequence[str | Path],
    size: int,
    *,
    limit: int | None = None,
    calibration_faces: int = CALIBRATION_FACES,
) -> EngineData:
    """The test split (its first ``limit`` faces) and a fixed sample of training faces."""
    spec = SplitSpec(**card.get("training", {}).get("split_spec", {}))
    faces = read_sets(data, spec)
    test = faces[faces["split"] == "test"].head(limit) if limit else faces[faces["split"] == "test"]
    train = faces[faces["split"] == "train"]
    if test.empty or train.empty:
        raise ModelError(f"no test or no training faces in {', '.join(map(str, data))}")
    loaded = load_images(test.reset_index(drop=True), size)
    sample = train.sample(min(calibration_faces, len(train)), random_state=0)
    calibration = load_images(sample.reset_index(drop=True), size).images
    return EngineData(loaded.images, loaded.labels["real_age"].to_numpy(float), calibration)


def build_candidates(reference: AgeModel, calibration: np.ndarray, work: Path) -> dict[str, Path]:
    """The OpenVINO candidates of a Keras ``AgeModel`` as IR files under ``work``."""
    fp32 = convert_to_openvino(reference.keras_model)
    return {
        "openvino-fp32": save_ir(fp32, _mkdir(work / "fp32")),
        "openvino-int8": save_ir(quantize_int8(fp32, calibration), _mkdir(work / "int8")),
    }


def open_candidate(name: str, xml: Path, reference: AgeModel, **runner_options) -> AgeModel:
    runner = OpenVinoRunner(xml, name.removeprefix("openvino-"), **runner_options)
    return AgeModel(None, reference.card, reference.version, runner=runner)


def build_engine(
    model_dir: str | Path,
    data: Sequence[str | Path],
    *,
    limit: int | None = None,
    chosen: str | None = None,
    calibration_faces: int = CALIBRATION_FACES,
) -> dict:
    """Build, measure and choose the engine of ``model_dir``; returns the card's new section.

    ``chosen`` names the candidate to keep whatever the measurements say.
    """
    import nncf
    import openvino as ov

    if chosen is not None and chosen not in CANDIDATES:
        raise ModelError(f"engine: unknown {chosen!r}; use one of {', '.join(CANDIDATES)}")
    model_dir = Path(model_dir)
    card = read_card(model_dir)
    reference = AgeModel.load(model_dir, engine="keras")
    faces = engine_data(
        card, data, reference.input_size, limit=limit, calibration_faces=calibration_faces
    )
    log.info(
        "measuring on %d test faces, calibrating int8 on %d",
        len(faces.test_ages),
        len(faces.calibration),
    )
    results = [measure(reference, faces.test_faces, faces.test_ages)]
    with tempfile.TemporaryDirectory() as work:
        built = build_candidates(reference, faces.calibration, Path(work))
        for name, xml in built.items():
            candidate = open_candidate(name, xml, reference)
            results.append(measure(candidate, faces.test_faces, faces.test_ages))
        keras_ages = results[0].pop("ages")
        for result in results[1:]:
            change = np.abs(result.pop("ages") - keras_ages)
            result["max_age_change"] = round(float(change.max()), 3)
            result["p99_age_change"] = round(float(np.percentile(change, 99)), 3)
        default = chosen or choose(results)
        staging = model_dir / (OPENVINO_DIR + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        section: dict[str, Any] = {
            "default": "keras" if default == "keras" else "openvino",
            "chosen": default,
            "rule": RULE if chosen is None else f"chosen by hand ({chosen}); the rule: {RULE}",
        }
        if default != "keras":
            target = _mkdir(staging)
            for suffix in (".xml", ".bin"):
                shutil.copyfile(built[default].with_suffix(suffix), target / f"age_model{suffix}")
            section["precision"] = default.removeprefix("openvino-")
            section["files"] = {
                name: file_hash(staging / Path(name).name) for name in (IR_FILE, IR_WEIGHTS)
            }
    section.update(
        measurements=results,
        measured_on={
            "split": "test",
            "faces": len(faces.test_ages),
            "images_per_s": f"face crops per second through estimate(batch_size={TIMING_BATCH}, "
            "tta=True): each crop runs with its mirror image",
            "machine": machine(),
        },
        calibration={"split": "train", "faces": len(faces.calibration), "preset": "performance"},
        built_with={"openvino": ov.__version__.split("-")[0], "nncf": nncf.__version__},
    )
    card["engine"] = section
    # the new files, then the card that names them: a failure between the two leaves files
    # the card's hashes do not match, which the engine refuses (and falls back to Keras)
    if staging.exists():
        replace_dir(staging, model_dir / OPENVINO_DIR)
    else:
        shutil.rmtree(model_dir / OPENVINO_DIR, ignore_errors=True)
    write_card(model_dir, card)
    log.info("engine of %s: %s (%s)", model_dir, default, section["rule"])
    return section


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def machine() -> str:
    """The CPU the figures were measured on: cores, model, the vector instructions that matter
    for int8, and the load average (the figures are noisy when it is above the core count)."""
    cpu, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    simd = [name for name, flag in SIMD_FLAGS if flag in flags] or ["no AVX2"]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{os.cpu_count()} cores ({usable} usable), {cpu}, {'/'.join(simd)}, "
        f"load average {load:.1f}"
    )
