"""The audit's face stage on photos: labelled sets for training and evaluation, or any picture.

A photo goes through what a checkout frame goes through: the detector finds the faces, the
shopper's (the largest) is picked and cut by ``crop_face`` with the model's margin. A photo
that is itself a tight face crop (a UTKFace aligned face) is first placed in a larger frame,
on a grey surround, so the detector sees a whole face.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from auditor.audit.boxes import (
    DEFAULT_MARGIN,
    UTKFACE_BOX_DY,
    UTKFACE_BOX_SIDE,
    FaceBox,
    pick_shopper,
)
from auditor.audit.detect import thread_detector
from auditor.audit.frames import UnreadableFrame, crop_face, read_frame
from auditor.detectors import DEFAULT_DETECTOR
from model import DatasetError, LoadedImages, context_margin

logger = logging.getLogger(__name__)

# A photo is placed in a frame this many of its sides wider on every side.
SURROUND = 0.3
SURROUND_GREY = 128


@dataclass(frozen=True)
class PhotoFace:
    """The shopper's face in one photo: its box in the photo, and the crop."""

    box: FaceBox
    crop: np.ndarray  # RGB uint8


def find_face(
    image_bgr: np.ndarray,
    *,
    detector: str = DEFAULT_DETECTOR,
    margin: float = DEFAULT_MARGIN,
    size: int | None = None,
) -> PhotoFace | None:
    """The largest face of a photo, found and cut as the audit does; None when none is found."""
    pad = round(SURROUND * max(image_bgr.shape[:2]))
    framed = cv2.copyMakeBorder(
        image_bgr, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(SURROUND_GREY,) * 3
    )
    box = pick_shopper(thread_detector(detector).detect(framed), framed.shape[1::-1])
    if box is None:
        return None
    crop = crop_face(framed, box, margin, size=size)
    return PhotoFace(FaceBox(box.x - pad, box.y - pad, box.w, box.h, box.score), crop)


def aligned_box(width: int, height: int) -> FaceBox:
    """Where the detector puts its box on a UTKFace-style aligned crop of that size (the
    figures in ``auditor.audit.boxes``): used for a training face the detector misses."""
    side = UTKFACE_BOX_SIDE * min(width, height)
    cx, cy = width / 2, height / 2 + UTKFACE_BOX_DY * side
    return FaceBox(round(cx - side / 2), round(cy - side / 2), round(side), round(side), 0.0)


def _training_face(path: str, side: int, wide: float, detector: str) -> tuple[np.ndarray, bool]:
    """A training face cut with margin ``wide`` at ``side`` px, and whether it was found."""
    image = read_frame(path)
    found = find_face(image, detector=detector)
    box = found.box if found is not None else aligned_box(image.shape[1], image.shape[0])
    # The context beyond the photo's edge is its mirror image: it looks like background, where
    # a flat surround would teach the model to read the face's size from the grey.
    pad = max(image.shape[:2])
    mirrored = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REFLECT_101)
    moved = FaceBox(box.x + pad, box.y + pad, box.w, box.h, box.score)
    return crop_face(mirrored, moved, wide, size=side), found is not None


def audit_face_loader(
    context: float,
    *,
    margin: float = DEFAULT_MARGIN,
    detector: str = DEFAULT_DETECTOR,
    workers: int = 2,
    progress: Callable[[int, int], None] | None = None,
) -> Callable[[pd.DataFrame, int], LoadedImages]:
    """A loader for ``model.train.train(load_faces=...)``: each face of a labelled set cut by
    the audit's face stage, with ``context`` times the crop's side around it, at the stored
    side it is asked for. The detector's misses are cut where it would have put its box on an
    aligned face, and counted in the labels' ``face_found`` column."""

    wide = context_margin(margin, context)

    def load(df: pd.DataFrame, side: int) -> LoadedImages:
        paths = list(df["path"])

        def one(path: str) -> tuple[np.ndarray, bool] | None:
            try:
                return _training_face(path, side, wide, detector)
            except UnreadableFrame as exc:
                logger.warning("%s", exc)
                return None

        with ThreadPoolExecutor(workers) as pool:
            results = []
            for done, result in enumerate(pool.map(one, paths), start=1):
                results.append(result)
                if progress is not None and (done % 1000 == 0 or done == len(paths)):
                    progress(done, len(paths))
        keep = [r is not None for r in results]
        labels = df[keep].reset_index(drop=True)
        kept = [r for r in results if r is not None]
        if not kept:
            raise DatasetError(f"no readable image among {len(df)} listed faces")
        labels["face_found"] = [found for _, found in kept]
        skipped = [p for p, ok in zip(paths, keep, strict=True) if not ok]
        misses = len(labels) - int(labels["face_found"].sum())
        logger.info(
            "cut %d faces by the face stage: %d missed by the detector (cut as aligned), "
            "%d unreadable",
            len(labels),
            misses,
            len(skipped),
        )
        return LoadedImages(np.stack([crop for crop, _ in kept]), labels, skipped)

    return load


def read_photo(path: str | Path) -> np.ndarray:
    """A photo as BGR uint8 (the audit's frame reader: truncated or bad files refused)."""
    return read_frame(path)
