"""Does a model gain from test-time augmentation over crop scales, or from calibrating its bias
by age on the validation split? Measured through the audit's face stage.

    python benchmarks/calibration.py [--model DIR] [--data DIR ...] [--limit N]

Both splits' faces are found and cut by the audit's face stage (with context around the crop,
so other crop scales can be cut). Then, on the test split (every age, and the minors 10-17 and
adults 25+ that the threshold separates), it prints for:

- ``clean``: one crop (and its mirror image, as the audit runs it);
- ``scales``: the mean estimate over crops of 0.93, 1.0 and 1.07 crop sides (three times the
  model's work);
- ``calibrated``: each estimate mapped through the validation split's mean true age by
  estimated age (a monotone piecewise-linear map fitted on the validation faces, never on the
  test faces);

MAE, bias, the share of minors 10-17 estimated under 25, the share of adults 25+ under 25,
and the share of minors caught at the threshold that flags 10% of adults 25+, with the crops
per second of each.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from auditor.audit.photos import face_stage_loader
from auditor.demo.datasets import datasets_dir
from model import AgeModel, bundled_model_dir, read_card
from model.augment import cut_crop
from model.data import read_sets
from model.evaluate import split_spec
from model.metrics import operating_point

CONTEXT = 1.2
SCALES = (0.93, 1.0, 1.07)


def crops_at(images: np.ndarray, scale: float, size: int) -> np.ndarray:
    return np.stack([cut_crop(image, CONTEXT, scale, 0.0, 0.0, size) for image in images])


def monotone_map(estimated: np.ndarray, true: np.ndarray, bins: int = 40):
    """A function mapping estimates to the mean true age of the faces estimated alike: bins of
    equal count, their means made non-decreasing, interpolated linearly between bins."""
    order = np.argsort(estimated)
    chunks = np.array_split(order, bins)
    x = np.array([estimated[c].mean() for c in chunks])
    y = np.maximum.accumulate(np.array([true[c].mean() for c in chunks]))
    return lambda values: np.interp(values, x, y)


def row(label: str, true: np.ndarray, pred: np.ndarray, per_second: float) -> str:
    error = pred - true
    minors = pred[(true >= 10) & (true <= 17)]
    adults = pred[true >= 25]
    op = operating_point(true, pred)
    return (
        f"{label:<11} {np.abs(error).mean():>6.2f} {error.mean():>+6.2f} "
        f"{(minors < 25).mean():>9.1%} {(adults < 25).mean():>9.1%} "
        f"{op['minors_flagged']:>11.1%} {per_second:>9.0f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--data", type=Path, nargs="+", default=None)
    parser.add_argument("--limit", type=int, default=None, help="at most this many per split")
    args = parser.parse_args()
    model_dir = args.model or bundled_model_dir()
    data = args.data or [datasets_dir() / "faces200", datasets_dir() / "faces64"]
    model = AgeModel.load(model_dir)
    margin = read_card(model_dir).get("preprocessing", {}).get("face_crop_margin", 0.01)
    df = read_sets(data, split_spec(model))
    load = face_stage_loader(CONTEXT, margin=margin)
    side = round(model.input_size * CONTEXT)
    faces = {}
    for split in ("val", "test"):
        rows = df[df["split"] == split].reset_index(drop=True)
        if args.limit and len(rows) > args.limit:
            rows = rows.sample(args.limit, random_state=0).reset_index(drop=True)
        faces[split] = load(rows, side)
    size = model.input_size
    print(
        f"model {model.version} ({model.engine}); {len(faces['val'].labels)} validation and "
        f"{len(faces['test'].labels)} test faces through the face stage"
    )
    print(
        f"{'':<11} {'MAE':>6} {'bias':>6} {'10-17 <25':>9} {'25+ <25':>9} "
        f"{'10-17 @10%':>11} {'crops/s':>9}"
    )
    true = faces["test"].labels["real_age"].to_numpy(float)
    val_true = faces["val"].labels["real_age"].to_numpy(float)

    started = time.perf_counter()
    clean = model.estimate(crops_at(faces["test"].images, 1.0, size)).ages
    clean_rate = len(true) / (time.perf_counter() - started)
    print(row("clean", true, clean, clean_rate))

    started = time.perf_counter()
    scaled = np.mean(
        [model.estimate(crops_at(faces["test"].images, s, size)).ages for s in SCALES], axis=0
    )
    print(row("scales", true, scaled, len(true) / (time.perf_counter() - started)))

    val_pred = model.estimate(crops_at(faces["val"].images, 1.0, size)).ages
    calibrate = monotone_map(val_pred, val_true)
    print(row("calibrated", true, calibrate(clean), clean_rate))


if __name__ == "__main__":
    main()
