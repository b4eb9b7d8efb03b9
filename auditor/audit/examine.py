"""The heavy part of the audit: read each matched frame, find the shopper's face, estimate ages.

An adapter over the snapshot files, the face detector (``auditor.audit.faces``) and the age
model (``model``). The model is loaded once per process and model directory
(:func:`load_age_model`); the detector once per process (``faces.get_detector``). Frames are
handled in chunks, in snapshot-id order, so that memory stays flat and the same frames always
go to the model in the same batches: a rerun gives the same numbers.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from auditor.audit.faces import FaceDetector, UnreadableFrame, crop_face, pick_shopper, read_frame
from auditor.audit.rules import ESTIMATED, NO_FACE, UNREADABLE
from auditor.errors import AuditorError

if TYPE_CHECKING:
    from model import AgeModel

logger = logging.getLogger(__name__)

CHUNK_FRAMES = 256
BATCH_SIZE = 64
EVIDENCE_CROP_SIDE = 112
EVIDENCE_JPEG_QUALITY = 85

# Called after each frame with (frames done, frames in all).
FrameProgress = Callable[[int, int], None]


class AgeModelUnavailable(AuditorError):
    """The configured age model directory is missing or cannot be loaded."""


def load_age_model(model_dir: Path) -> AgeModel:
    """The age model in ``model_dir``, loaded on first use in this process."""
    return _load_age_model(str(Path(model_dir).resolve()))


@functools.lru_cache(maxsize=4)
def _load_age_model(model_dir: str) -> AgeModel:
    from model import AgeModel, ModelError

    if not Path(model_dir).is_dir():
        raise AgeModelUnavailable(
            f"age model directory {model_dir} not found: set [model] path in the settings "
            "(AUDITOR_MODEL__PATH) to an exported model directory"
        )
    try:
        loaded = AgeModel.load(model_dir)
    except ModelError as e:
        raise AgeModelUnavailable(f"age model directory {model_dir}: {e}") from e
    logger.info("age model %s loaded from %s on %s", loaded.version, model_dir, compute_device())
    return loaded


def compute_device() -> str:
    """Where the model runs: ``GPU`` when TensorFlow sees one, else ``CPU``."""
    import tensorflow as tf

    return "GPU" if tf.config.list_physical_devices("GPU") else "CPU"


def crop_margin(model: AgeModel, default: float) -> float:
    """The face-crop margin the model was trained for, from its card."""
    margin = model.card.get("preprocessing", {}).get("face_crop_margin")
    return float(margin) if margin is not None else default


@dataclass(frozen=True)
class FrameToRead:
    snapshot_id: int
    path: Path
    purged: bool = False


@dataclass
class FrameResult:
    """What came of one frame: an outcome, the shopper's face box, the estimate, a small crop."""

    snapshot_id: int
    outcome: str
    reason: str = ""
    box: tuple[int, int, int, int] | None = None
    age: float | None = None
    spread: float | None = None
    crop_jpeg: bytes | None = field(default=None, repr=False)


@dataclass
class ExamineTimings:
    read: float = 0.0
    detect: float = 0.0
    estimate: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return {"read": self.read, "detect": self.detect, "estimate": self.estimate}


def evidence_jpeg(crop_rgb: np.ndarray) -> bytes:
    """A face crop as a small JPEG, kept as evidence when the sale is flagged."""
    side = EVIDENCE_CROP_SIDE
    small = cv2.resize(crop_rgb, (side, side), interpolation=cv2.INTER_AREA)
    ok, data = cv2.imencode(
        ".jpg",
        cv2.cvtColor(small, cv2.COLOR_RGB2BGR),
        [cv2.IMWRITE_JPEG_QUALITY, EVIDENCE_JPEG_QUALITY],
    )
    if not ok:
        raise ValueError("cannot encode the face crop")
    return data.tobytes()


def _find_face(
    frame: FrameToRead, detector: FaceDetector, margin: float, timings: ExamineTimings
) -> tuple[FrameResult, np.ndarray | None]:
    """The frame's outcome and, when a face was found, its crop (RGB, not yet estimated)."""
    if frame.purged:
        return FrameResult(frame.snapshot_id, UNREADABLE, "frame purged"), None
    started = time.perf_counter()
    try:
        image = read_frame(frame.path)
    except UnreadableFrame as e:
        return FrameResult(frame.snapshot_id, UNREADABLE, e.reason), None
    finally:
        timings.read += time.perf_counter() - started
    started = time.perf_counter()
    try:
        box = pick_shopper(detector.detect(image), (image.shape[1], image.shape[0]))
        crop = crop_face(image, box, margin) if box is not None else None
    except (cv2.error, ValueError) as e:  # an image the detector cannot take (e.g. 1 pixel)
        logger.warning("snapshot %s: face detection failed: %s", frame.snapshot_id, e)
        return FrameResult(frame.snapshot_id, UNREADABLE, f"face detection failed: {e}"), None
    finally:
        timings.detect += time.perf_counter() - started
    if box is None or crop is None:
        return FrameResult(frame.snapshot_id, NO_FACE), None
    return FrameResult(frame.snapshot_id, ESTIMATED, box=(box.x, box.y, box.w, box.h)), crop


def examine_frames(
    frames: Sequence[FrameToRead],
    *,
    detector: FaceDetector,
    model: AgeModel,
    margin: float,
    progress: FrameProgress | None = None,
    timings: ExamineTimings | None = None,
) -> dict[int, FrameResult]:
    """Each frame's result by snapshot id. Bad frames become ``unreadable_frame``, never errors."""
    timings = timings if timings is not None else ExamineTimings()
    ordered = sorted(frames, key=lambda f: f.snapshot_id)
    results: dict[int, FrameResult] = {}
    done = 0
    for start in range(0, len(ordered), CHUNK_FRAMES):
        with_face: list[tuple[FrameResult, np.ndarray]] = []
        for frame in ordered[start : start + CHUNK_FRAMES]:
            result, crop = _find_face(frame, detector, margin, timings)
            results[frame.snapshot_id] = result
            if crop is not None:
                with_face.append((result, crop))
            done += 1
            if progress is not None:
                progress(done, len(ordered))
        if with_face:
            started = time.perf_counter()
            crops = [crop for _, crop in with_face]
            estimates = model.estimate(crops, batch_size=BATCH_SIZE, tta=True)
            for (result, crop), age, spread in zip(
                with_face, estimates.ages, estimates.spreads, strict=True
            ):
                result.age, result.spread = float(age), float(spread)
                result.crop_jpeg = evidence_jpeg(crop)
            timings.estimate += time.perf_counter() - started
    return results
