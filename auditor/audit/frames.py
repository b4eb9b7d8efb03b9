"""Reading a snapshot file, and cutting the shopper's face out of it.

A file is checked before it is decoded (size from the header, the end marker of a JPEG or a
PNG); the crop is the window :func:`~auditor.audit.boxes.crop_box` gives, as RGB.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from auditor.audit.boxes import DEFAULT_MARGIN, FaceBox, crop_box
from auditor.errors import AuditorError

DEFAULT_MAX_PIXELS = 50_000_000


def crop_face(
    image_bgr: np.ndarray,
    box: FaceBox,
    margin: float = DEFAULT_MARGIN,
    *,
    size: int | None = None,
) -> np.ndarray:
    """A square RGB uint8 crop of the face in ``box``, framed like a UTKFace aligned crop.

    The window is ``crop_box(box, margin)``; parts of it beyond the image are filled by
    replicating the image's edge. ``size`` resizes the crop to size x size.
    """
    window = crop_box(box, margin)
    x0, y0, side = window.x, window.y, window.w
    height, width = image_bgr.shape[:2]
    inner = image_bgr[max(0, y0) : min(height, y0 + side), max(0, x0) : min(width, x0 + side)]
    if inner.size == 0:
        raise ValueError(f"face box {box} lies outside the {width}x{height} image")
    pads = (max(0, -y0), max(0, y0 + side - height), max(0, -x0), max(0, x0 + side - width))
    if any(pads):
        inner = cv2.copyMakeBorder(inner, *pads, cv2.BORDER_REPLICATE)
    if size is not None and size != side:
        interpolation = cv2.INTER_AREA if size < side else cv2.INTER_LINEAR
        inner = cv2.resize(inner, (size, size), interpolation=interpolation)
    if inner.ndim == 2:
        return cv2.cvtColor(inner, cv2.COLOR_GRAY2RGB)
    return cv2.cvtColor(inner, cv2.COLOR_BGR2RGB)


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
        if path.stat().st_size == 0:
            raise UnreadableFrame(path, "empty file")
        kind, width, height = _header(path)
        if width * height > max_pixels:
            raise UnreadableFrame(
                path, f"{width}x{height} is over the limit of {max_pixels:,} pixels"
            )
        data = path.read_bytes()
    except OSError as exc:
        raise UnreadableFrame(path, exc.strerror or str(exc)) from exc
    if kind == "JPEG" and not data.rstrip(b"\x00").endswith(_JPEG_EOI):
        raise UnreadableFrame(path, "truncated JPEG (no end-of-image marker)")
    if kind == "PNG" and not data.endswith(_PNG_IEND):
        raise UnreadableFrame(path, "truncated PNG (no IEND chunk)")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise UnreadableFrame(path, f"{kind} data that cannot be decoded")
    if image.shape[:2] not in ((height, width), (width, height)):  # EXIF may turn it
        raise UnreadableFrame(
            path, f"decoded {image.shape[1]}x{image.shape[0]}, header said {width}x{height}"
        )
    return image


def _header(path: Path) -> tuple[str, int, int]:
    """Format, width and height from the header alone (Pillow decodes no pixels on open)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                return str(image.format), *image.size
    except Image.DecompressionBombError as exc:
        raise UnreadableFrame(path, f"image over the decompression limit: {exc}") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise UnreadableFrame(path, f"not an image ({exc})") from exc
