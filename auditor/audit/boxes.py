"""Face boxes and where the shopper's face crop lies: pure geometry, no image library.

The crop is framed like the faces the age model was trained on (UTKFace, aligned and cropped).
How the framing was chosen, with the figures, is in ``docs/faces.md``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

# Where the default detector puts its box on a UTKFace aligned-and-cropped face, measured on all
# of faces200 (``benchmarks/faces.py margin``, figures in docs/faces.md): the box side is this
# share of the crop side ...
UTKFACE_BOX_SIDE = 0.98
# ... and the box centre lies this many box sides below the crop centre (negative: above).
UTKFACE_BOX_DY = -0.034
# Margin around a detected box that gives the UTKFace framing: side x (1 + 2 x margin) = crop side.
DEFAULT_MARGIN = round((1 / UTKFACE_BOX_SIDE - 1) / 2, 3)

# The smallest box taken for a shopper's face: the shopper stands at the checkout, near the
# camera; boxes smaller than this are shelf items or people far behind (and a crop that small
# would tell the age model little).
MIN_SHOPPER_SIDE = 32


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


def pick_shopper(
    boxes: Sequence[FaceBox],
    frame_size: tuple[int, int] | None = None,
    *,
    min_side: int = MIN_SHOPPER_SIDE,
) -> FaceBox | None:
    """The shopper's face: the largest box, as the shopper stands nearest the checkout camera.

    Boxes whose longer side is under ``min_side`` pixels are not faces at the checkout. Ties
    on area go to the highest score, then to the box whose centre is nearest the centre of the
    frame (``frame_size`` is width, height) or, without it, nearest the centre of the region
    the boxes span; a tie after that goes to the earliest box. ``None`` when there is no box.
    """
    boxes = [b for b in boxes if max(b.w, b.h) >= min_side]
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


def crop_box(box: FaceBox, margin: float = DEFAULT_MARGIN) -> FaceBox:
    """The square window ``crop_face`` cuts around ``box``, in image coordinates.

    Its side is the box's longer side x (1 + 2 x margin); its centre is the box centre moved
    down by ``-UTKFACE_BOX_DY`` box sides, as a detector's box sits higher on the face than the
    UTKFace crop does.
    """
    side = max(box.w, box.h)
    crop_side = max(1, round(side * (1 + 2 * margin)))
    cx, cy = box.centre
    cy -= UTKFACE_BOX_DY * side
    return FaceBox(
        round(cx - crop_side / 2), round(cy - crop_side / 2), crop_side, crop_side, box.score
    )
