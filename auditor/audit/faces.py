"""The face stage of the audit: read a snapshot, find the faces, pick the shopper's, crop it.

The crop is framed like the faces the age model was trained on (UTKFace, aligned and cropped).
How the detector and the framing were chosen, with the figures, is in ``docs/faces.md``.
"""

from __future__ import annotations

import functools
import io
import logging
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from auditor.errors import AuditorError

logger = logging.getLogger(__name__)

# Where the default Haar detector puts its box on a UTKFace aligned-and-cropped face, measured on
# faces200 (``benchmarks/faces.py margin``): the box side is this share of the crop side ...
UTKFACE_BOX_SIDE = 1.03
# ... and the box centre lies this many box sides below the crop centre (negative: above).
UTKFACE_BOX_DY = -0.08
# Margin around a detected box that gives the UTKFace framing: side x (1 + 2 x margin) = crop side.
DEFAULT_MARGIN = round((1 / UTKFACE_BOX_SIDE - 1) / 2, 3)

DEFAULT_MAX_PIXELS = 50_000_000
DEFAULT_DETECTOR = "haar-half"
# The smallest face looked for, in pixels of the frame given to ``detect``.
MIN_FACE_SIDE = 48


@dataclass(frozen=True)
class FaceBox:
    """A face found in (or placed into) an image, in that image's pixel coordinates."""

    x: int
    y: int
    w: int
    h: int
    score: float = 1.0

    @property
    def area(self) -> int:
        return self.w * self.h

    @property
    def centre(self) -> tuple[float, float]:
        return (self.x + self.w / 2, self.y + self.h / 2)

    def contains(self, x: float, y: float) -> bool:
        return self.x <= x < self.x + self.w and self.y <= y < self.y + self.h

    def iou(self, other: FaceBox) -> float:
        """Intersection over union of the two boxes (0 when they do not touch)."""
        ix = max(0, min(self.x + self.w, other.x + other.w) - max(self.x, other.x))
        iy = max(0, min(self.y + self.h, other.y + other.h) - max(self.y, other.y))
        inter = ix * iy
        union = self.area + other.area - inter
        return inter / union if union else 0.0


def box_found(truth: FaceBox, found: FaceBox, *, min_iou: float = 0.4) -> bool:
    """Whether ``found`` is a detection of the face ``truth``: IoU >= min_iou or centre inside."""
    return found.iou(truth) >= min_iou or truth.contains(*found.centre)


# --- detection -----------------------------------------------------------------------------


@dataclass(frozen=True)
class DetectorSpec:
    """A Haar cascade shipped with OpenCV, run on the frame resized by ``scale``."""

    cascade: str
    scale: float
    min_neighbors: int = 5
    scale_factor: float = 1.1


DETECTORS: dict[str, DetectorSpec] = {
    "haar": DetectorSpec("haarcascade_frontalface_default.xml", 1.0),
    "haar-half": DetectorSpec("haarcascade_frontalface_default.xml", 0.5),
    "haar-alt2": DetectorSpec("haarcascade_frontalface_alt2.xml", 1.0),
    "haar-alt2-half": DetectorSpec("haarcascade_frontalface_alt2.xml", 0.5),
}


class UnknownDetector(AuditorError):
    def __init__(self, name: str) -> None:
        super().__init__(f"unknown face detector {name!r}; known: {', '.join(DETECTORS)}")
        self.name = name


class FaceDetector:
    """Finds frontal faces in BGR images. Build one per process with ``get_detector``.

    A cascade classifier is not safe to share between threads; the audit runs one per process.
    """

    def __init__(self, name: str = DEFAULT_DETECTOR) -> None:
        if name not in DETECTORS:
            raise UnknownDetector(name)
        self.name = name
        self.spec = DETECTORS[name]
        path = Path(cv2.data.haarcascades) / self.spec.cascade
        self._cascade = cv2.CascadeClassifier(str(path))
        if self._cascade.empty():
            raise AuditorError(f"cannot load the face cascade {path}")
        logger.info("face detector %s loaded from %s", name, path)

    def detect(self, image_bgr: np.ndarray) -> list[FaceBox]:
        """Faces in ``image_bgr`` (BGR or grey, uint8), largest first, in its pixel coordinates."""
        grey = image_bgr if image_bgr.ndim == 2 else cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY)
        scale = self.spec.scale
        if scale != 1.0:
            grey = cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        grey = cv2.equalizeHist(grey)
        min_side = max(1, round(MIN_FACE_SIDE * scale))
        rects, neighbours = self._cascade.detectMultiScale2(
            grey,
            scaleFactor=self.spec.scale_factor,
            minNeighbors=self.spec.min_neighbors,
            minSize=(min_side, min_side),
        )
        boxes = [
            FaceBox(
                round(x / scale), round(y / scale), round(w / scale), round(h / scale), float(n)
            )
            for (x, y, w, h), n in zip(rects, neighbours, strict=True)
        ]
        return sorted(boxes, key=lambda b: (-b.area, -b.score))


@functools.cache
def get_detector(name: str = DEFAULT_DETECTOR) -> FaceDetector:
    """The process-wide detector of that name, loaded on first use."""
    return FaceDetector(name)


# --- the shopper's face and its crop -------------------------------------------------------


def pick_shopper(
    boxes: Sequence[FaceBox], frame_size: tuple[int, int] | None = None
) -> FaceBox | None:
    """The shopper's face: the largest box, as the shopper stands nearest the checkout camera.

    Ties on area go to the highest score, then to the box whose centre is nearest the centre of
    the frame (``frame_size`` is width, height) or, without it, nearest the centre of the region
    the boxes span; a tie after that goes to the earliest box. ``None`` when there is no box.
    """
    if not boxes:
        return None
    if frame_size is not None:
        cx, cy = frame_size[0] / 2, frame_size[1] / 2
    else:
        left = min(b.x for b in boxes)
        top = min(b.y for b in boxes)
        right = max(b.x + b.w for b in boxes)
        bottom = max(b.y + b.h for b in boxes)
        cx, cy = (left + right) / 2, (top + bottom) / 2

    def rank(box: FaceBox) -> tuple[float, float, float]:
        bx, by = box.centre
        return (-box.area, -box.score, math.hypot(bx - cx, by - cy))

    return min(boxes, key=rank)


def crop_face(
    image_bgr: np.ndarray,
    box: FaceBox,
    margin: float = DEFAULT_MARGIN,
    *,
    size: int | None = None,
) -> np.ndarray:
    """A square RGB crop around ``box``, framed like a UTKFace aligned-and-cropped face.

    The crop side is the box's longer side x (1 + 2 x margin), centred on the box centre moved
    down by ``-UTKFACE_BOX_DY`` box sides (a detector's box sits higher on the face than the
    UTKFace crop). Parts beyond the image are filled by replicating its edge. ``size`` resizes
    the crop to size x size.
    """
    side = max(box.w, box.h)
    crop_side = max(1, round(side * (1 + 2 * margin)))
    cx, cy = box.centre
    cy -= UTKFACE_BOX_DY * side
    x0 = round(cx - crop_side / 2)
    y0 = round(cy - crop_side / 2)
    height, width = image_bgr.shape[:2]
    pad_left, pad_top = max(0, -x0), max(0, -y0)
    pad_right = max(0, x0 + crop_side - width)
    pad_bottom = max(0, y0 + crop_side - height)
    inner = image_bgr[
        max(0, y0) : min(height, y0 + crop_side), max(0, x0) : min(width, x0 + crop_side)
    ]
    if inner.size == 0:
        raise ValueError(f"face box {box} lies outside the {width}x{height} image")
    if pad_left or pad_top or pad_right or pad_bottom:
        inner = cv2.copyMakeBorder(
            inner, pad_top, pad_bottom, pad_left, pad_right, cv2.BORDER_REPLICATE
        )
    if size is not None and size != crop_side:
        interpolation = cv2.INTER_AREA if size < crop_side else cv2.INTER_LINEAR
        inner = cv2.resize(inner, (size, size), interpolation=interpolation)
    if inner.ndim == 2:
        return cv2.cvtColor(inner, cv2.COLOR_GRAY2RGB)
    return cv2.cvtColor(inner, cv2.COLOR_BGR2RGB)


# --- reading a snapshot --------------------------------------------------------------------


class UnreadableFrame(AuditorError):
    """A snapshot file that cannot be used: empty, truncated, not an image, or too large."""

    def __init__(self, path: Path | str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = Path(path)
        self.reason = reason


_JPEG_EOI = b"\xff\xd9"
_PNG_IEND = b"IEND\xaeB`\x82"


def read_frame(path: Path | str, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """The snapshot at ``path`` as a BGR uint8 array.

    The image size is read from the file header before anything is decoded, so an image over
    ``max_pixels`` is refused without decoding it. A JPEG must end with its end-of-image marker
    (trailing zero bytes allowed) and a PNG with its IEND chunk: a decoder otherwise returns the
    part it got from a file cut short in transfer, with grey or garbage where the rest was.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UnreadableFrame(path, exc.strerror or str(exc)) from exc
    if not data:
        raise UnreadableFrame(path, "empty file")
    kind, width, height = _header(path, data)
    if width * height > max_pixels:
        raise UnreadableFrame(path, f"{width}x{height} is over the limit of {max_pixels:,} pixels")
    if kind == "JPEG" and not data.rstrip(b"\x00").endswith(_JPEG_EOI):
        raise UnreadableFrame(path, "truncated JPEG (no end-of-image marker)")
    if kind == "PNG" and not data.endswith(_PNG_IEND):
        raise UnreadableFrame(path, "truncated PNG (no IEND chunk)")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise UnreadableFrame(path, f"{kind} data that cannot be decoded")
    if image.shape[:2] != (height, width):
        raise UnreadableFrame(
            path, f"decoded {image.shape[1]}x{image.shape[0]}, header said {width}x{height}"
        )
    return image


def _header(path: Path, data: bytes) -> tuple[str, int, int]:
    """Format, width and height from the header alone (Pillow decodes no pixels on open)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                return str(image.format), *image.size
    except Image.DecompressionBombError as exc:
        raise UnreadableFrame(path, f"image over the decompression limit: {exc}") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise UnreadableFrame(path, f"not an image ({exc})") from exc
