"""Time the age model's inference engines and the test-MAE change each one brings.

    python benchmarks/engines.py                        # the bundled model, ../shared/datasets
    python benchmarks/engines.py --model var/models/m --faces 256 --mae-limit 1000

For Keras (``tf.function``), OpenVINO fp32 and OpenVINO int8 (both built afresh in a temporary
folder the way ``auditor model engine`` builds them): face crops per second through
``AgeModel.estimate`` at batch sizes 1, 16, 64 and 128, without and with the mirror test-time
augmentation (with it every crop runs twice, in the same engine call), on the first ``--faces``
test faces; then each engine's test MAE over the whole test split (batch 64, with the mirror)
and its change from Keras; then OpenVINO's two performance hints at batch 64 with the mirror.
The machine is printed with the figures; on a busy machine run it twice.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from model import AgeModel, bundled_model_dir
from model.engine import build_candidates, engine_data, machine, open_candidate

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
BATCH_SIZES = (1, 16, 64, 128)


def crops_per_second(model: AgeModel, faces: np.ndarray, batch_size: int, tta: bool) -> float:
    model.estimate(faces[:batch_size], batch_size=batch_size, tta=tta)  # warm up this shape
    started = time.perf_counter()
    model.estimate(faces, batch_size=batch_size, tta=tta)
    return len(faces) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=bundled_model_dir())
    parser.add_argument(
        "--data",
        type=Path,
        action="append",
        help="labelled set (repeat); default faces200 and faces64 under ../shared/datasets",
    )
    parser.add_argument("--faces", type=int, default=512, help="test faces timed per setting")
    parser.add_argument("--mae-limit", type=int, help="measure the MAE on the first N test faces")
    args = parser.parse_args()
    data = args.data or [DATASETS / "faces200", DATASETS / "faces64"]

    print(f"machine: {machine()}", flush=True)
    keras = AgeModel.load(args.model, engine="keras")
    faces = engine_data(keras.card, data, keras.input_size, limit=args.mae_limit)
    timed = faces.test_faces[: args.faces]
    with tempfile.TemporaryDirectory() as work:
        started = time.perf_counter()
        built = build_candidates(keras, faces.calibration, Path(work))
        print(f"built the OpenVINO candidates in {time.perf_counter() - started:.0f} s")
        engines = {"keras": keras} | {
            name: open_candidate(name, xml, keras) for name, xml in built.items()
        }
        print(f"\nface crops per second on {len(timed)} test faces (with TTA: crop + mirror)")
        columns = [f"b{b}{' tta' if tta else ''}" for tta in (False, True) for b in BATCH_SIZES]
        print(f"{'engine':<15}" + "".join(f"{c:>10}" for c in columns))
        for name, model in engines.items():
            figures = [
                crops_per_second(model, timed, batch, tta)
                for tta in (False, True)
                for batch in BATCH_SIZES
            ]
            print(f"{name:<15}" + "".join(f"{f:>10.1f}" for f in figures), flush=True)

        print(f"\ntest MAE on {len(faces.test_ages)} test faces (batch 64, with TTA)")
        keras_mae = None
        for name, model in engines.items():
            ages = model.estimate(faces.test_faces, batch_size=64).ages
            mae = float(np.abs(ages - faces.test_ages).mean())
            keras_mae = mae if keras_mae is None else keras_mae
            print(f"{name:<15}{mae:>8.3f}{mae - keras_mae:>+9.3f}", flush=True)

        print("\nOpenVINO performance hints, crops per second at batch 64 with TTA")
        for name, xml in built.items():
            figures = {
                hint: crops_per_second(open_candidate(name, xml, keras, hint=hint), timed, 64, True)
                for hint in ("LATENCY", "THROUGHPUT")
            }
            print(f"{name:<15}" + "".join(f"{h:>12}{f:>8.1f}" for h, f in figures.items()))


if __name__ == "__main__":
    main()
