"""Face detectors on demo checkout frames, and how their boxes frame a UTKFace face.

    python benchmarks/faces.py detectors [--frames 300] [--seed 7]
    python benchmarks/faces.py margin [--faces 2000] [--seed 7]
    python benchmarks/faces.py framing [--detector blazeface-short] [--frames 400] [--seed 11]
    python benchmarks/faces.py ages [--detectors blazeface blazeface-short] [--frames 1000]
                                    [--model DIR]

``detectors`` composes demo frames (JPEG-encoded at quality 85 and decoded, as the audit reads
them) and prints, per detector: the share of true faces found (IoU >= 0.4 or centre inside),
false detections per frame, the share of frames whose picked shopper is the true shopper, and
frames per CPU second on one thread (detection only; CPU time, so other load on the machine
barely moves it). ``margin`` runs the full-range model (``blazeface``) on faces200 crops padded
by a grey border and prints where its box lies relative to the crop. ``framing`` compares a
detector's boxes with the full-range model's on the same demo faces: the ``box_scale`` and
``box_dy`` of a short-range detector are the figures it prints for that detector with them set
to 1 and 0. ``ages`` puts faces of the bundled model's test split aged 10 and over into demo
frames (as the shopper, with a second person in 40% of them), finds the shopper with each
detector, crops and estimates as the audit does, and prints the shopper found, the age error
by true age and the shares of minors (10-17) and adults (25+) estimated under the default
threshold (25), next to the model on the same faces' own files: what the detector's boxes cost
the estimates.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np

from auditor.audit.boxes import DEFAULT_MARGIN, FaceBox, box_found, pick_shopper
from auditor.audit.detect import FaceDetector
from auditor.audit.frames import crop_face
from auditor.demo.datasets import face_files
from auditor.demo.scene import compose_frame, load_face
from auditor.detectors import DEFAULT_DETECTOR, DETECTORS


def demo_frames(count: int, seed: int) -> Iterator[tuple[np.ndarray, list[FaceBox]]]:
    """Frames with no face (10%), the shopper alone (50%) or the shopper and another (40%)."""
    files = face_files("faces200")
    rng = np.random.default_rng(seed)
    for _ in range(count):
        n = int(rng.choice(3, p=[0.1, 0.5, 0.4]))
        faces = [load_face(files[i]) for i in rng.choice(len(files), n, replace=False)]
        frame, boxes = compose_frame(rng, faces)
        ok, jpeg = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 85])
        assert ok
        yield cv2.imdecode(jpeg, cv2.IMREAD_COLOR), boxes


def score(
    detect: Callable[[np.ndarray], list[FaceBox]],
    frames: list[tuple[np.ndarray, list[FaceBox]]],
) -> tuple[float, float, float, float]:
    """Recall, false detections per frame, shopper picked right, frames per second."""
    found = faces = false = shopper_right = with_shopper = 0
    elapsed = 0.0
    for frame, truth in frames:
        start = time.process_time()
        boxes = detect(frame)
        elapsed += time.process_time() - start
        faces += len(truth)
        found += sum(any(box_found(t, b) for b in boxes) for t in truth)
        false += sum(not any(box_found(t, b) for t in truth) for b in boxes)
        if truth:
            with_shopper += 1
            picked = pick_shopper(boxes, (frame.shape[1], frame.shape[0]))
            shopper_right += picked is not None and box_found(truth[0], picked)
    return found / faces, false / len(frames), shopper_right / with_shopper, len(frames) / elapsed


def detectors(args: argparse.Namespace) -> None:
    frames = list(demo_frames(args.frames, args.seed))
    faces = sum(len(t) for _, t in frames)
    height, width = frames[0][0].shape[:2]
    print(f"{len(frames)} demo frames {width}x{height}, {faces} faces, seed {args.seed}, 1 thread")
    print(
        f"{'detector':<24} {'looks at':>13} {'recall':>7} {'false/frame':>11} "
        f"{'shopper':>8} {'frames/s':>9}"
    )
    for name in DETECTORS:
        detector = FaceDetector(name)
        detector.detect(frames[0][0])  # compiles the network for the frame size: not timed
        recall, false, shopper, fps = score(detector.detect, frames)
        resolution = detector.input_size(width, height)
        mark = " (default)" if name == DEFAULT_DETECTOR else ""
        print(
            f"{name:<24} {resolution:>13} {recall:>7.1%} {false:>11.3f} {shopper:>8.1%} "
            f"{fps:>9.1f}{mark}"
        )


def margin(args: argparse.Namespace) -> None:
    files = face_files("faces200")
    rng = np.random.default_rng(args.seed)
    chosen = [files[i] for i in rng.choice(len(files), min(args.faces, len(files)), replace=False)]
    detector = FaceDetector("blazeface")
    pad = 60
    sides, heights, dxs, dys = [], [], [], []
    for path in chosen:
        crop = cv2.imread(str(path), cv2.IMREAD_COLOR)
        side = crop.shape[0]
        padded = cv2.copyMakeBorder(
            crop, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(128, 128, 128)
        )
        box = pick_shopper(detector.detect(padded))
        if box is None:
            continue
        cx, cy = box.centre
        sides.append(box.w / side)
        heights.append(box.h / side)
        dxs.append((cx - pad - side / 2) / box.w)
        dys.append((cy - pad - side / 2) / box.w)
    s, dx, dy = np.array(sides), np.array(dxs), np.array(dys)
    print(
        f"blazeface on {len(chosen)} faces200 crops padded by {pad} px grey, "
        f"seed {args.seed}: {len(s)} found ({len(s) / len(chosen):.1%})"
    )
    for label, values in [
        ("box width / crop side", s),
        ("box height / crop side", np.array(heights)),
        ("centre dx / box width", dx),
        ("centre dy / box width", dy),
    ]:
        q10, q50, q90 = np.quantile(values, [0.1, 0.5, 0.9])
        print(f"{label:<23} median {q50:+.3f}  p10 {q10:+.3f}  p90 {q90:+.3f}")
    median = float(np.median(s))
    print(f"margin so that box width x (1 + 2 x margin) = crop side: {(1 / median - 1) / 2:+.3f}")


def framing(args: argparse.Namespace) -> None:
    reference, detector = FaceDetector("blazeface"), FaceDetector(args.detector)
    scales, dxs, dys = [], [], []
    for frame, truth in demo_frames(args.frames, args.seed):
        found, expected = detector.detect(frame), reference.detect(frame)
        for face in truth:
            pair = [max(boxes, key=face.iou, default=None) for boxes in (found, expected)]
            if any(box is None or box.iou(face) < 0.4 for box in pair):
                continue
            box, ref = pair
            scales.append(ref.w / box.w)
            dxs.append((ref.centre[0] - box.centre[0]) / ref.w)
            dys.append((ref.centre[1] - box.centre[1]) / ref.w)
    print(
        f"{args.detector} against blazeface on {args.frames} demo frames, seed {args.seed}: "
        f"{len(scales)} faces found by both"
    )
    for label, values in [
        ("blazeface side / its side", scales),
        ("centre dx, in blazeface sides", dxs),
        ("centre dy, in blazeface sides", dys),
    ]:
        q10, q50, q90 = np.quantile(values, [0.1, 0.5, 0.9])
        print(f"{label:<30} median {q50:+.3f}  p10 {q10:+.3f}  p90 {q90:+.3f}")


def ages(args: argparse.Namespace) -> None:
    from auditor.audit.examine import crop_margin, load_age_model
    from auditor.demo.build import face_catalogue
    from auditor.demo.datasets import datasets_dir
    from auditor.settings import AuditSettings
    from model import bundled_model_dir

    threshold = AuditSettings.model_fields["age_threshold"].default
    model_dir = args.model or bundled_model_dir()
    model = load_age_model(model_dir)
    margin = crop_margin(model, DEFAULT_MARGIN)
    catalogue = face_catalogue(model_dir)
    folder = datasets_dir() / "faces200" / "final_files"
    test = [(name, age) for age, names in catalogue.items() if age >= 10 for name in names]
    rng = np.random.default_rng(args.seed)
    chosen = [test[i] for i in rng.choice(len(test), min(args.frames, len(test)), replace=False)]
    true_ages = np.array([age for _, age in chosen], dtype=float)
    originals = [load_face(folder / name) for name, _ in chosen]
    frames = []
    for face in originals:
        faces = [face]
        if rng.random() < 0.4:
            faces.append(load_face(folder / test[int(rng.integers(len(test)))][0]))
        frame, boxes = compose_frame(rng, faces)
        ok, jpeg = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 85])
        frames.append((cv2.imdecode(jpeg, cv2.IMREAD_COLOR), boxes[0]))
    print(
        f"{len(chosen)} faces of the test split of model {model.version} as the shopper in demo "
        f"frames (seed {args.seed}), engine {model.engine}"
    )
    bands = [(10, 17), (18, 24), (25, 40), (41, 120)]
    header = " ".join(f"{f'{lo}-{hi}' if hi < 120 else f'{lo}+':>12}" for lo, hi in bands)
    print(
        f"{'faces from':<24} {'shopper':>8} {'MAE':>6} {'bias':>6} {header} "
        f"{f'<{threshold}: 10-17':>11} {'25+':>6}"
    )

    def report(label: str, found: np.ndarray, estimates: np.ndarray) -> None:
        error = estimates - true_ages[found]
        cells = []
        for lo, hi in bands:
            band = error[(true_ages[found] >= lo) & (true_ages[found] <= hi)]
            cells.append(f"{np.abs(band).mean():5.2f}/{band.mean():+5.2f}" if len(band) else "-")
        ages, flagged = true_ages[found], estimates < threshold
        minors, adults = flagged[(ages >= 10) & (ages <= 17)], flagged[ages >= 25]
        print(
            f"{label:<24} {found.mean():>8.1%} {np.abs(error).mean():>6.2f} {error.mean():>+6.2f} "
            + " ".join(f"{c:>12}" for c in cells)
            + f" {minors.mean():>11.1%} {adults.mean():>6.1%}"
        )

    report("the face files", np.ones(len(chosen), bool), model.estimate(originals).ages)
    for name in args.detectors:
        detector = FaceDetector(name)
        crops, found = [], np.zeros(len(frames), bool)
        for i, (frame, truth) in enumerate(frames):
            box = pick_shopper(detector.detect(frame), (frame.shape[1], frame.shape[0]))
            if box is not None and box_found(truth, box):
                found[i] = True
                crops.append(crop_face(frame, box, margin))
        report(name, found, model.estimate(crops).ages)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    one = commands.add_parser("detectors")
    one.add_argument("--frames", type=int, default=300)
    one.add_argument("--seed", type=int, default=7)
    one.set_defaults(run=detectors)
    two = commands.add_parser("margin")
    two.add_argument("--faces", type=int, default=2000)
    two.add_argument("--seed", type=int, default=7)
    two.set_defaults(run=margin)
    three = commands.add_parser("framing")
    three.add_argument("--detector", default=DEFAULT_DETECTOR)
    three.add_argument("--frames", type=int, default=400)
    three.add_argument("--seed", type=int, default=11)
    three.set_defaults(run=framing)
    four = commands.add_parser("ages")
    four.add_argument("--detectors", nargs="+", default=["blazeface", "blazeface-short"])
    four.add_argument("--frames", type=int, default=1000)
    four.add_argument("--model", type=Path, help="a model directory (default: the bundled one)")
    four.add_argument("--seed", type=int, default=5)
    four.set_defaults(run=ages)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    args.run(args)


if __name__ == "__main__":
    main()
