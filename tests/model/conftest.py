"""Fixtures for the model tests: small labelled sets of real faces and one tiny trained run."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.model import export_tiny_model, make_labelled_set, train_tiny_model


@pytest.fixture(scope="session")
def faces_set(tmp_path_factory) -> Path:
    return make_labelled_set(tmp_path_factory.mktemp("faces") / "set64", n=240)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, faces_set):
    """A real (tiny) training run: MobileNetV2 at 32 px, DLDL head, 2 epochs on real faces."""
    return train_tiny_model(faces_set, tmp_path_factory.mktemp("runs") / "tiny")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tiny_run):
    _, result = tiny_run
    return export_tiny_model(result.out, tmp_path_factory.mktemp("models") / "tiny_model")
