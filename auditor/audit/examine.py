"""The heavy part of the audit: read each matched frame, find the shopper's face, estimate ages.

An adapter over the snapshot files, the face detector (``auditor.audit.detect``) and the age
model (``model``). The model is loaded once per process and model directory
(:func:`load_age_model`).

The stages overlap: worker threads (one per usable core by default, each with its own
detector) read the frames of a chunk, find the shopper's face, cut the crop and encode its
evidence JPEG, while the calling thread runs the model on the crops of the chunk before. Both
OpenCV and the model's runtime release Python's lock while they compute, so the threads run on
all cores. Frames are handled in chunks, in snapshot-id order: at most two chunks of crops are
held at once however big the night, and the same frames always go to the model in the same
batches, so a rerun gives the same numbers.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from auditor.audit.boxes import pick_shopper
from auditor.audit.detect import FaceDetector, thread_detector
from auditor.audit.frames import UnreadableFrame, crop_face, read_frame
from auditor.errors import AuditorError
from auditor.settings import usable_cores
from auditor.vocabulary import EstimateOutcome

if TYPE_CHECKING:
    from model import AgeModel

logger = logging.getLogger(__name__)

CHUNK_FRAMES = 128
BATCH_SIZE = 64
EVIDENCE_CROP_SIDE = 112
EVIDENCE_JPEG_QUALITY = 85

# Called after each frame with (frames done, frames in all).
FrameProgress = Callable[[int, int], None]


class AgeModelUnavailable(AuditorError):
    """The configured age model directory is missing or cannot be loaded."""


def load_age_model(model_dir: Path, engine: str = "auto", hint: str = "throughput") -> AgeModel:
    """The age model in ``model_dir`` on ``engine`` ([model] engine) with OpenVINO's performance
    ``hint`` ([model] hint), loaded on first use in this process."""
    return _load_age_model(str(Path(model_dir).resolve()), engine, hint)


@functools.lru_cache(maxsize=4)
def _load_age_model(model_dir: str, engine: str, hint: str) -> AgeModel:
    from model import AgeModel, ModelError

    if not Path(model_dir).is_dir():
        raise AgeModelUnavailable(
            f"age model directory {model_dir} not found: set [model] path in the settings "
            "(AUDITOR_MODEL__PATH) to an exported model directory"
        )
    try:
        loaded = AgeModel.load(model_dir, engine=engine, hint=hint)
    except ModelError as e:
        raise AgeModelUnavailable(f"age model directory {model_dir}: {e}") from e
    logger.info(
        "age model %s loaded from %s, %s engine on %s",
        loaded.version,
        model_dir,
        loaded.engine,
        compute_device(loaded.engine),
    )
    return loaded


def compute_device(engine: str = "keras") -> str:
    """Where a model on ``engine`` runs: OpenVINO's on the CPU (TensorFlow is not even
    imported); Keras's on the GPU when TensorFlow sees one, else on the CPU."""
    if engine.startswith("openvino"):
        return "CPU"
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
    problem: str | None = None  # why the ingest found the file unreadable


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
    """Seconds spent in each stage, summed over the threads that ran it (the stages overlap,
    so the sum can exceed the wall time)."""

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


@dataclass
class _Found:
    """A worker thread's work on one frame: its result, the crop if any, and the time taken."""

    result: FrameResult
    crop: np.ndarray | None = None
    read: float = 0.0
    detect: float = 0.0


def _find_face(frame: FrameToRead, detector_name: str, margin: float) -> _Found:
    """Read the frame, find the shopper's face and cut its crop, in the calling thread."""
    if frame.purged:
        return _Found(
            FrameResult(frame.snapshot_id, EstimateOutcome.UNREADABLE_FRAME, "frame purged")
        )
    if frame.problem is not None:
        return _Found(
            FrameResult(
                frame.snapshot_id, EstimateOutcome.UNREADABLE_FRAME, f"at ingest: {frame.problem}"
            )
        )
    if frame.path.is_symlink():  # swapped for a link after ingest: not the frame's own file
        return _Found(
            FrameResult(frame.snapshot_id, EstimateOutcome.UNREADABLE_FRAME, "symbolic link")
        )
    started = time.perf_counter()
    try:
        image = read_frame(frame.path)
    except UnreadableFrame as e:
        return _Found(
            FrameResult(frame.snapshot_id, EstimateOutcome.UNREADABLE_FRAME, e.reason),
            read=time.perf_counter() - started,
        )
    read_done = time.perf_counter()
    found = _Found(
        FrameResult(frame.snapshot_id, EstimateOutcome.NO_FACE), read=read_done - started
    )
    try:
        detector = thread_detector(detector_name)
        box = pick_shopper(detector.detect(image), (image.shape[1], image.shape[0]))
        if box is not None:
            found.crop = crop_face(image, box, margin)
            found.result = FrameResult(
                frame.snapshot_id,
                EstimateOutcome.ESTIMATED,
                box=(box.x, box.y, box.w, box.h),
                crop_jpeg=evidence_jpeg(found.crop),
            )
    except (cv2.error, ValueError) as e:  # an image the detector cannot take (e.g. 1 pixel)
        logger.warning("snapshot %s: face detection failed: %s", frame.snapshot_id, e)
        found.result = FrameResult(
            frame.snapshot_id, EstimateOutcome.UNREADABLE_FRAME, f"face detection failed: {e}"
        )
        found.crop = None
    found.detect = time.perf_counter() - read_done
    return found


def examine_frames(
    frames: Sequence[FrameToRead],
    *,
    detector: FaceDetector,
    model: AgeModel,
    margin: float,
    progress: FrameProgress | None = None,
    timings: ExamineTimings | None = None,
    workers: int | None = None,
) -> dict[int, FrameResult]:
    """Each frame's result by snapshot id. Bad frames become ``unreadable_frame``, never errors.

    ``detector`` names the detector each of the ``workers`` threads makes for itself (default:
    one thread per usable core).
    """
    timings = timings if timings is not None else ExamineTimings()
    ordered = sorted(frames, key=lambda f: f.snapshot_id)
    chunks = [ordered[i : i + CHUNK_FRAMES] for i in range(0, len(ordered), CHUNK_FRAMES)]
    results: dict[int, FrameResult] = {}
    done = 0
    with ThreadPoolExecutor(workers or usable_cores(), thread_name_prefix="examine") as pool:

        def submit(index: int) -> list[Future[_Found]]:
            if index >= len(chunks):
                return []
            return [pool.submit(_find_face, f, detector.name, margin) for f in chunks[index]]

        pending = submit(0)
        for index in range(len(chunks)):
            current = pending
            with_face: list[_Found] = []
            for future in current:
                found = future.result()
                timings.read += found.read
                timings.detect += found.detect
                results[found.result.snapshot_id] = found.result
                if found.crop is not None:
                    with_face.append(found)
                done += 1
                if progress is not None:
                    progress(done, len(ordered))
            pending = submit(index + 1)  # the next chunk's faces are found while the model runs
            if with_face:
                started = time.perf_counter()
                estimates = model.estimate(
                    [found.crop for found in with_face], batch_size=BATCH_SIZE, tta=True
                )
                for found, age, spread in zip(
                    with_face, estimates.ages, estimates.spreads, strict=True
                ):
                    found.result.age, found.result.spread = float(age), float(spread)
                timings.estimate += time.perf_counter() - started
    return results
