"""The audit's face stage on photos: labelled sets for training and evaluation, or any picture.

A photo goes through what a checkout frame goes through: the detector finds the faces, the
shopper's (the largest) is picked and cut by ``crop_face`` with the model's margin. A photo
that is itself a tight face crop (a UTKFace aligned face) is first placed in a larger frame,
on a grey surround, so the detector sees a whole face.

For training, a share of the faces can instead be placed in a synthetic checkout scene (the
demo's compositor: shelves, counter, head and shoulders, relighting, blur, vignetting, sensor
noise) and found there, so the model also learns faces at a camera's scale with a scene's
surround.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd

from auditor.audit.boxes import (
    DEFAULT_MARGIN,
    UTKFACE_BOX_DY,
    UTKFACE_BOX_SIDE,
    FaceBox,
    box_found,
    pick_shopper,
)
from auditor.audit.detect import thread_detector
from auditor.audit.frames import UnreadableFrame, crop_face, read_frame
from auditor.detectors import DEFAULT_DETECTOR
from model import DatasetError, FaceLoader, LoadedImages, context_margin

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


def _labelled_face(
    path: str, side: int, wide: float, detector: str, fallback: bool
) -> tuple[np.ndarray, bool] | None:
    """A labelled face cut with margin ``wide`` at ``side`` px, and whether it was found;
    a face the detector misses is cut as an aligned face with ``fallback``, else None."""
    image = read_frame(path)
    found = find_face(image, detector=detector)
    if found is None and not fallback:
        return None
    box = found.box if found is not None else aligned_box(image.shape[1], image.shape[0])
    # The context beyond the photo's edge is its mirror image: it looks like background, where
    # a flat surround would teach the model to read the face's size from the grey.
    pad = max(image.shape[:2])
    mirrored = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REFLECT_101)
    moved = FaceBox(box.x + pad, box.y + pad, box.w, box.h, box.score)
    return crop_face(mirrored, moved, wide, size=side), found is not None


def in_scene(path: str, share: float) -> bool:
    """Whether a labelled face goes into a synthetic scene: a fixed draw from its file name,
    so a resumed run and its validation split see the same faces framed the same way."""
    return share > 0 and zlib.crc32(Path(path).name.encode()) % 10_000 < share * 10_000


def _scene_face(path: str, side: int, wide: float, detector: str) -> tuple[np.ndarray, bool]:
    """A labelled face placed as the shopper in a synthetic checkout scene, found there by the
    detector and cut with margin ``wide``; where the detector misses it (or boxes something
    else), it is cut at its true box, and the flag says so."""
    from auditor.demo.scene import compose_frame

    image = read_frame(path)
    rng = np.random.default_rng(zlib.crc32(Path(path).name.encode()))
    frame, (truth,) = compose_frame(rng, [cv2.cvtColor(image, cv2.COLOR_BGR2RGB)])
    found = pick_shopper(thread_detector(detector).detect(frame), frame.shape[1::-1])
    hit = found is not None and box_found(truth, found)
    box = found if found is not None and hit else truth
    pad = max(frame.shape[:2])
    mirrored = cv2.copyMakeBorder(frame, pad, pad, pad, pad, cv2.BORDER_REFLECT_101)
    moved = FaceBox(box.x + pad, box.y + pad, box.w, box.h, box.score)
    return crop_face(mirrored, moved, wide, size=side), hit


def face_stage_loader(
    context: float = 1.0,
    *,
    margin: float = DEFAULT_MARGIN,
    detector: str = DEFAULT_DETECTOR,
    fallback: bool = False,
    scenes: float = 0.0,
    workers: int = 2,
) -> FaceLoader:
    """A ``model.data.FaceLoader`` that runs the audit's face stage: each face of a labelled
    set found and cut as the audit cuts it, with ``context`` times the crop's side around it.

    With ``fallback`` (for training) a face the detector misses is cut where the detector
    puts its box on an aligned face, and the labels' ``face_found`` column says which; without
    it (for measuring) such photos are left out and listed in ``not_found``. ``scenes`` is the
    share of faces (for training; a fixed draw per file, see ``in_scene``) first placed in a
    synthetic checkout scene and found there (the labels' ``in_scene`` column).
    """
    if not 0.0 <= scenes <= 1.0:
        raise ValueError(f"scenes: {scenes} is not a share between 0 and 1")
    wide = context_margin(margin, context)

    def load(df: pd.DataFrame, side: int) -> LoadedImages:
        paths = list(df["path"])

        def one(path: str) -> tuple[np.ndarray, bool] | str:
            try:
                if in_scene(path, scenes):
                    return _scene_face(path, side, wide, detector)
                return _labelled_face(path, side, wide, detector, fallback) or "not found"
            except UnreadableFrame as exc:
                logger.warning("%s", exc)
                return "unreadable"

        with ThreadPoolExecutor(workers) as pool:
            results = list(pool.map(one, paths))
        keep = [not isinstance(r, str) for r in results]
        kept = [r for r in results if not isinstance(r, str)]
        if not kept:
            raise DatasetError(f"no face found and cut among {len(df)} listed photos")
        labels = df[keep].reset_index(drop=True)
        labels["face_found"] = [found for _, found in kept]
        labels["in_scene"] = [in_scene(p, scenes) for p in labels["path"]]
        skipped = [p for p, r in zip(paths, results, strict=True) if r == "unreadable"]
        not_found = [p for p, r in zip(paths, results, strict=True) if r == "not found"]
        misses = len(not_found) + len(labels) - int(labels["face_found"].sum())
        logger.info(
            "face stage: %d of %d photos cut (%d in a scene), %d without a face found%s, "
            "%d unreadable",
            len(labels),
            len(paths),
            int(labels["in_scene"].sum()),
            misses,
            " (cut as aligned or at the true box)" if fallback else "",
            len(skipped),
        )
        return LoadedImages(np.stack([crop for crop, _ in kept]), labels, skipped, not_found)

    return load


def estimate_photos(
    paths: Sequence[Path],
    model_dir: Path,
    *,
    detector: str = DEFAULT_DETECTOR,
    engine: str = "auto",
) -> list[dict[str, Any]]:
    """For each photo: its file, the shopper's face box, the estimated age and its spread,
    and a note when no face was found or the file cannot be read."""
    from auditor.audit.examine import crop_margin, load_age_model

    model = load_age_model(model_dir, engine)
    margin = crop_margin(model, DEFAULT_MARGIN)
    rows, crops = [], []
    for path in paths:
        row: dict[str, Any] = {"file": str(path), "x": None, "y": None, "w": None, "h": None}
        row.update(age=None, spread=None, note="")
        rows.append(row)
        try:
            face = find_face(read_frame(path), detector=detector, margin=margin)
        except UnreadableFrame as exc:
            row["note"] = f"unreadable: {exc.reason}"
            continue
        if face is None:
            row["note"] = "no face found"
            continue
        row.update(x=face.box.x, y=face.box.y, w=face.box.w, h=face.box.h)
        crops.append((row, face.crop))
    if crops:
        estimates = model.estimate([crop for _, crop in crops])
        for (row, _), age, spread in zip(crops, estimates.ages, estimates.spreads, strict=True):
            row.update(age=round(float(age), 2), spread=round(float(spread), 2))
    return rows
