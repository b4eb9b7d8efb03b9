"""Fixtures for the model tests: small labelled sets of real faces and one tiny trained run."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[2]


def datasets_dir() -> Path:
    return Path(os.environ.get("AUDITOR_DATASETS", REPO.parent / "shared" / "datasets"))


def make_labelled_set(
    target: Path, source: str = "faces64", n: int = 240, seed: int = 0, stratify: bool = True
) -> Path:
    """Copy ``n`` real faces (spread over all ages) into a labelled set under ``target``."""
    src = datasets_dir() / source
    labels = pd.read_csv(src / "labels.csv")
    if stratify:
        labels = labels.sort_values(["real_age", "file_name"])
        step = max(1, len(labels) // n)
        chosen = labels.iloc[::step].head(n)
    else:
        chosen = labels.sample(n, random_state=seed)
    (target / "final_files").mkdir(parents=True, exist_ok=True)
    for name in chosen["file_name"]:
        shutil.copyfile(src / "final_files" / name, target / "final_files" / name)
    chosen.to_csv(target / "labels.csv", index=False)
    return target


@pytest.fixture(scope="session")
def faces_set(tmp_path_factory) -> Path:
    return make_labelled_set(tmp_path_factory.mktemp("faces") / "set64", n=240)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, faces_set):
    """A real (tiny) training run: MobileNetV2 at 32 px, DLDL head, 2 epochs on real faces."""
    from model.build import ModelConfig
    from model.data import SplitSpec
    from model.train import TrainConfig, train

    cfg = TrainConfig(
        model=ModelConfig(backbone="mobilenet_v2", head="dldl", input_size=32, learning_rate=1e-3),
        data=(str(faces_set),),
        batch_size=32,
        epochs=2,
        head_epochs=0,
        split=SplitSpec(test=0.2, val=0.2),
    )
    out = tmp_path_factory.mktemp("runs") / "tiny"
    result = train(cfg, out, progress=False)
    return cfg, result


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tiny_run):
    from model.export import export

    _, result = tiny_run
    out = tmp_path_factory.mktemp("models") / "tiny_model"
    export(result.out, out)
    return out
