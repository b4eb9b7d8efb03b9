"""Real faces and a real (tiny) trained age model, for tests of any package."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[2]


def datasets_dir() -> Path:
    """``../shared/datasets`` beside the repository, or ``$AUDITOR_DATASETS``."""
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


def train_tiny_model(faces: Path, work: Path, *, head: str = "dldl", epochs: int = 2):
    """Train MobileNetV2 at 32 px for a few epochs on ``faces``; returns (config, result)."""
    from model.build import ModelConfig
    from model.data import SplitSpec
    from model.train import TrainConfig, train

    cfg = TrainConfig(
        model=ModelConfig(backbone="mobilenet_v2", head=head, input_size=32, learning_rate=1e-3),
        data=(str(faces),),
        batch_size=32,
        epochs=epochs,
        head_epochs=0,
        split=SplitSpec(test=0.2, val=0.2),
    )
    return cfg, train(cfg, work, progress=False)


def export_tiny_model(run: Path, out: Path, *, engine: bool = False) -> Path:
    """A model directory (model, card, evaluation) from a tiny run; Keras only unless
    ``engine`` (then the fast engine is built and chosen by measurement too)."""
    from model.export import export

    export(run, out, engine=engine)
    return out
