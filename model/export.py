"""Export a trained model as a model directory: the model, its card and its measurements.

A model directory holds ``age_model.keras`` (no optimizer state), ``model_card.json`` and
``evaluation/`` (``metrics.json``, ``predictions.csv``, ``evaluation.html``), and the engine
files in ``openvino/`` when an OpenVINO engine was chosen. The card's ``version`` is the first
12 hex digits of the SHA-256 of ``age_model.keras``; its metrics are the Keras model's. Its
``calibration`` turns an estimate into the probability of being under an age
(``model.calibration``): fitted on the validation split, measured on the test split.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import platform
import shutil
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd

from model.calibration import FIT_LIMITS, FORMULA, METHOD, Calibration
from model.data import FaceLoader, read_sets
from model.engine import build_engine
from model.errors import ModelError
from model.evaluate import (
    calibration_figures,
    evaluate,
    fit_on_split,
    load_any,
    predict_split,
    split_spec,
)
from model.inference import CARD_FILE, MODEL_FILE, load_keras_model, write_card
from model.runtime import file_hash, replace_dir
from model.train import BEST_FILE, LOG_FILE, STATE_FILE, TrainConfig

log = logging.getLogger(__name__)

#: How the auditor frames a detected face before estimating its age: the detector's box grows
#: by this share of its side on every side, which reproduces the framing of the training faces
#: (UTKFace aligned crops, or faces cut by the auditor's face stage with the same margin; it is
#: the auditor's ``auditor.audit.boxes.DEFAULT_MARGIN``, and a test checks that they agree).
DEFAULT_FACE_CROP_MARGIN = 0.01

DATA_TERMS = (
    "Trained on UTKFace (Zhang, Song and Qi, CVPR 2017), available for non-commercial research "
    "purposes only. A production deployment needs a model trained on data the operator is "
    "licensed to use."
)


def run_summary(run: Path) -> dict:
    """Settings, epochs and time of a training run folder."""
    state_path = run / STATE_FILE
    if not state_path.is_file():
        raise ModelError(f"{state_path}: not found; is {run} a training run folder?")
    state = json.loads(state_path.read_text())
    config = TrainConfig.from_dict(state["config"])
    history = pd.read_csv(run / LOG_FILE) if (run / LOG_FILE).is_file() else pd.DataFrame()
    best = float(history["val_age_mae"].min()) if "val_age_mae" in history else None
    return {
        "tag": config.tag(),
        "config": config.to_dict(),
        "epochs": int(len(history)),
        "train_seconds": round(float(state.get("seconds", 0.0)), 1),
        "best_val_mae": best,
        "stages_done": state.get("stages_done", []),
        **(
            {"previous_version": state["previous_version"]} if state.get("previous_version") else {}
        ),
    }


def export(
    run: str | Path,
    out: str | Path,
    *,
    data: Sequence[str | Path] | None = None,
    face_crop_margin: float = DEFAULT_FACE_CROP_MARGIN,
    candidates: Sequence[dict] = (),
    limit: int | None = None,
    engine: bool = True,
) -> dict:
    """Write a model directory from training run ``run``, measured on the held-out split.

    With ``engine`` the fast inference engine is built and chosen too (``model.engine``).
    """
    run, out = Path(run), Path(out)
    summary = run_summary(run)
    config = TrainConfig.from_dict(summary["config"])
    data = [str(d) for d in (data or config.data)]
    check_out_dir(out, keep=[run, *map(Path, data)])
    keras_model = load_keras_model(run / BEST_FILE)
    staging = out.with_name(out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    keras_model.save(staging / MODEL_FILE)
    version = file_hash(staging / MODEL_FILE)[:12]
    card: dict[str, Any] = {
        "name": "age-estimator",
        "version": version,
        "created_at": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        "architecture": {
            "backbone": config.model.backbone,
            "head": config.model.head,
            "input_size": config.model.input_size,
            "parameters": int(keras_model.count_params()),
            "outputs": list(keras_model.output.keys()),
        },
        "preprocessing": {
            "input": "RGB face crop, uint8 0..255, square, resized to input_size "
            "(area filter when shrinking, bilinear when enlarging)",
            "face_crop_margin": face_crop_margin,
            "test_time_augmentation": "mean of the face and its mirror image",
            "spread": "standard deviation of the averaged age distribution"
            if config.model.head != "regression"
            else "half the gap between face and mirror",
        },
        "training": {
            **summary,
            "data": data,
            "faces_per_split": read_sets(data, config.split)["split"].value_counts().to_dict(),
            "split": "by SHA-256 of the file name; a face is in the same split in every folder",
            "split_spec": asdict(config.split),
            "hardware": f"{platform.machine()}, CPU only" if not _gpu() else "GPU",
            "data_terms": DATA_TERMS,
        },
        "engine": {"default": "keras"},
    }
    write_card(staging, card)
    staged = load_any(staging)
    calibration, fit = fit_on_split(staged, data, spec=config.split, limit=limit)
    metrics = evaluate(
        staging,
        data,
        staging / "evaluation",
        spec=config.split,
        limit=limit,
        calibration=calibration,
    )
    card["metrics"] = {
        "split": "test",
        "n": metrics["n"],
        "mae": metrics["mae"],
        "bias": metrics["bias"],
        "by_age_band": metrics["by_age_band"],
        "operating_point": metrics["operating_point"],
    }
    card["threshold_table"] = metrics["thresholds"]
    card["calibration"] = calibration_section(
        calibration, fit, metrics["calibration"], data=data, engine=staged.engine
    )
    card["candidates"] = [
        *candidates,
        {
            "tag": summary["tag"],
            "test_mae": metrics["mae"],
            "best_val_mae": summary["best_val_mae"],
            "train_seconds": summary["train_seconds"],
            "chosen": True,
        },
    ]
    write_card(staging, card)
    if engine:
        card["engine"] = build_engine(staging, data, limit=limit)
    replace_dir(staging, out)
    log.info("exported %s (test MAE %.3f) -> %s", version, metrics["mae"], out)
    return card


def check_out_dir(out: Path, *, keep: Sequence[Path] = ()) -> None:
    """Refuse to write a model directory over anything but a model directory: ``out`` may be
    new, or a folder with a model card (replaced), but never a folder that holds, or is, one of
    ``keep`` (the run, the data)."""
    target = out.resolve()
    for path in keep:
        held = path.resolve()
        if held == target or target in held.parents:
            raise ModelError(f"{out}: holds {path}; give the model directory a folder of its own")
    if out.exists() and not (out / CARD_FILE).is_file():
        raise ModelError(
            f"{out}: exists and is not a model directory (no {CARD_FILE}); give a new folder, "
            "or a model directory to replace"
        )


def _gpu() -> bool:
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def bundled_dir() -> Path:
    """Where the model shipped with the auditor lives."""
    return Path(__file__).resolve().parent / "bundled"


def record_candidate(
    model_dir: str | Path, run: str | Path, *, data: Sequence[str | Path] | None = None
) -> dict:
    """Measure another training run on the model directory's test split and list it in the card.

    The run's best checkpoint is evaluated with the card's own split rule and data (or ``data``),
    its evaluation written into ``run/evaluation``, and its entry (replacing an earlier entry of
    the same run folder name) added to the card's ``candidates`` as not chosen. Returns it.
    """
    from model.data import SplitSpec
    from model.inference import read_card

    model_dir, run = Path(model_dir), Path(run)
    card = read_card(model_dir)
    summary = run_summary(run)
    training = card.get("training", {})
    data = [str(d) for d in (data or training.get("data") or summary["config"]["data"])]
    spec = SplitSpec(**training.get("split_spec", {}))
    metrics = evaluate(run / BEST_FILE, data, run / "evaluation", spec=spec)
    config = summary["config"]
    entry = {
        "tag": summary["tag"],
        "run": run.name,
        "test_mae": metrics["mae"],
        "best_val_mae": summary["best_val_mae"],
        "epochs": summary["epochs"],
        "train_seconds": summary["train_seconds"],
        "operating_point": metrics["operating_point"],
        "by_age_band": {
            band: metrics["by_age_band"][band]
            for band in ("10-17", "18-20", "21-25")
            if band in metrics["by_age_band"]
        },
        "warm_start": config.get("init_model"),
        "age_balance": config.get("age_balance", 0.0),
        "group_balance": config.get("group_balance", 0.0),
        "chosen": False,
    }
    others = [
        c for c in card.get("candidates", []) if c.get("chosen") or c.get("run") != entry["run"]
    ]
    card["candidates"] = [*others, entry]
    write_card(model_dir, card)
    return entry


def calibrate(
    model_dir: str | Path,
    data: Sequence[str | Path] | None = None,
    *,
    load_faces: FaceLoader | None = None,
    framing: str = "aligned crops",
    engine: str = "auto",
    limit: int | None = None,
) -> dict:
    """Fit a model directory's calibration on its validation split, measure it on its test
    split and write it into the card (``calibration``, replacing any); returns that section.

    The splits follow the card's rule; the sets are ``data``, else the card's. ``load_faces``
    reads the faces (e.g. through the audit's face stage, described by ``framing``); by
    default they are taken as aligned crops. ``engine`` runs the model (``auto``: the card's
    engine, what the audit runs). ``limit`` takes only the first N faces of each split.
    """
    from model.inference import read_card

    model_dir = Path(model_dir)
    card = read_card(model_dir)
    data = [str(d) for d in (data or card.get("training", {}).get("data") or ())]
    if not data:
        raise ModelError(f"{model_dir}: the card names no data; pass the labelled sets")
    age_model = load_any(model_dir, engine)
    spec = split_spec(age_model)
    calibration, fit = fit_on_split(age_model, data, spec=spec, limit=limit, load_faces=load_faces)
    labels, counts = predict_split(
        age_model, data, split="test", spec=spec, limit=limit, load_faces=load_faces
    )
    measured = {**counts, **calibration_figures(calibration, labels)}
    section = calibration_section(
        calibration, fit, measured, data=data, framing=framing, engine=age_model.engine
    )
    card["calibration"] = section
    write_card(model_dir, card)
    log.info("calibration %s written into %s", calibration, model_dir / CARD_FILE)
    return section


def calibration_section(
    calibration: Calibration,
    fit: dict,
    measured: dict,
    *,
    data: Sequence[str | Path],
    framing: str = "aligned crops",
    engine: str = "keras",
) -> dict:
    """The card's ``calibration``: the formula and its fitted figures, what it was fitted on
    (``fit`` of ``model.evaluate.fit_on_split``) and how it holds on the test split
    (``measured``, of ``model.evaluate.calibration_figures``)."""
    section: dict[str, Any] = {
        "method": METHOD,
        "formula": FORMULA,
        **calibration.to_dict(),
        "fitted_on": f"validation split ({fit['n']} faces)",
        "measured_on": f"test split ({measured['n']} faces)",
        "fit_limits": list(FIT_LIMITS),
        "faces": framing,
        "engine": engine,
        "data": [str(d) for d in data],
    }
    if "faces_not_found" in fit:
        section["faces_not_found"] = {
            "validation": fit["faces_not_found"],
            "test": measured.get("faces_not_found", 0),
        }
    section["log_loss"] = {
        "validation": {"calibrated": fit["log_loss"], "uncalibrated": fit["log_loss_uncalibrated"]},
        "test": {
            "calibrated": measured["log_loss"],
            "uncalibrated": measured["log_loss_uncalibrated"],
        },
    }
    for key in ("ece", "ece_uncalibrated", "reliability", "reliability_uncalibrated"):
        section[key] = measured[key]
    return section


def record_check(model_dir: str | Path, name: str, result: dict) -> None:
    """Keep a measurement of the model in its card under ``checks``, replacing one of that
    name (e.g. ``robustness``, or a photo set's name)."""
    from model.inference import read_card

    model_dir = Path(model_dir)
    card = read_card(model_dir)
    card.setdefault("checks", {})[name] = result
    write_card(model_dir, card)
