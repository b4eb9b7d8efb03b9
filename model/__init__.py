"""The age model: build, data, train, evaluate, explore, export, and the inference API.

This package knows nothing of ``auditor``. The auditor uses only what is imported here.
"""

from model.errors import DatasetError, ModelDirectoryError, ModelError, WeightsFileError
from model.inference import AgeModel, Estimates, read_card
from model.runtime import openvino_setup


def bundled_model_dir():
    """The model directory shipped inside this package."""
    from model.export import bundled_dir

    return bundled_dir()


__all__ = [
    "AgeModel",
    "DatasetError",
    "Estimates",
    "ModelDirectoryError",
    "ModelError",
    "WeightsFileError",
    "bundled_model_dir",
    "openvino_setup",
    "read_card",
]
