"""The age model: build, data, train, evaluate, explore, export, and the inference API.

This package knows nothing of ``auditor``. The auditor uses only what is named here:

- inference (imported with the package): :class:`AgeModel`, :class:`Estimates`, :func:`read_card`,
  :func:`bundled_model_dir`, :func:`openvino_setup` and the errors;
- calibrated probabilities of being under an age: ``Calibration`` and ``read_calibration``;
- labelled sets and the training framing: ``FaceLoader``, ``LoadedImages``, ``SplitSpec``,
  ``split_of``, ``context_margin``;
- what the ``auditor model`` commands run: ``ModelConfig``, ``TrainConfig``, ``train_model``,
  ``BEST_FILE``, ``resolve_weights_file``, ``convert_torchvision_mobilenet_v2``,
  ``evaluate_model``, ``evaluate_robustness``, ``explore_dataset``, ``export_model``,
  ``run_summary``, ``record_candidate``, ``record_check``, ``calibrate_model``,
  ``DEFAULT_FACE_CROP_MARGIN`` and ``build_engine``.

The names of the last three groups are imported from their modules on first use, so ``import
model`` loads neither Keras nor TensorFlow.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from model.errors import DatasetError, ModelDirectoryError, ModelError, WeightsFileError
from model.inference import AgeModel, Estimates, read_card
from model.runtime import openvino_setup

if TYPE_CHECKING:
    from pathlib import Path

    from model.augment import context_margin
    from model.build import ModelConfig, convert_torchvision_mobilenet_v2
    from model.calibration import Calibration, read_calibration
    from model.data import FaceLoader, LoadedImages, SplitSpec, split_of
    from model.engine import build_engine
    from model.evaluate import evaluate as evaluate_model
    from model.evaluate import evaluate_robustness
    from model.explore import explore as explore_dataset
    from model.export import DEFAULT_FACE_CROP_MARGIN, record_candidate, record_check, run_summary
    from model.export import calibrate as calibrate_model
    from model.export import export as export_model
    from model.train import BEST_FILE, TrainConfig
    from model.train import train as train_model
    from model.weights import resolve_weights_file

# public name: (module, name in that module)
_ON_FIRST_USE = {
    "Calibration": ("model.calibration", "Calibration"),
    "read_calibration": ("model.calibration", "read_calibration"),
    "context_margin": ("model.augment", "context_margin"),
    "FaceLoader": ("model.data", "FaceLoader"),
    "LoadedImages": ("model.data", "LoadedImages"),
    "SplitSpec": ("model.data", "SplitSpec"),
    "split_of": ("model.data", "split_of"),
    "ModelConfig": ("model.build", "ModelConfig"),
    "convert_torchvision_mobilenet_v2": ("model.build", "convert_torchvision_mobilenet_v2"),
    "TrainConfig": ("model.train", "TrainConfig"),
    "BEST_FILE": ("model.train", "BEST_FILE"),
    "train_model": ("model.train", "train"),
    "resolve_weights_file": ("model.weights", "resolve_weights_file"),
    "evaluate_model": ("model.evaluate", "evaluate"),
    "evaluate_robustness": ("model.evaluate", "evaluate_robustness"),
    "explore_dataset": ("model.explore", "explore"),
    "export_model": ("model.export", "export"),
    "run_summary": ("model.export", "run_summary"),
    "record_candidate": ("model.export", "record_candidate"),
    "record_check": ("model.export", "record_check"),
    "calibrate_model": ("model.export", "calibrate"),
    "DEFAULT_FACE_CROP_MARGIN": ("model.export", "DEFAULT_FACE_CROP_MARGIN"),
    "build_engine": ("model.engine", "build_engine"),
}


def __getattr__(name: str) -> Any:
    try:
        module, attribute = _ON_FIRST_USE[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    return getattr(importlib.import_module(module), attribute)


def __dir__() -> list[str]:
    return sorted([*globals(), *_ON_FIRST_USE])


def bundled_model_dir() -> Path:
    """The model directory shipped inside this package."""
    from model.export import bundled_dir

    return bundled_dir()


__all__ = [
    "AgeModel",
    "BEST_FILE",
    "Calibration",
    "DEFAULT_FACE_CROP_MARGIN",
    "DatasetError",
    "Estimates",
    "FaceLoader",
    "LoadedImages",
    "ModelConfig",
    "ModelDirectoryError",
    "ModelError",
    "SplitSpec",
    "TrainConfig",
    "WeightsFileError",
    "build_engine",
    "bundled_model_dir",
    "calibrate_model",
    "context_margin",
    "convert_torchvision_mobilenet_v2",
    "evaluate_model",
    "evaluate_robustness",
    "explore_dataset",
    "export_model",
    "openvino_setup",
    "read_calibration",
    "read_card",
    "record_candidate",
    "record_check",
    "resolve_weights_file",
    "run_summary",
    "split_of",
    "train_model",
]
