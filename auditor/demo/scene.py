"""Synthetic checkout snapshots: a procedural checkout scene with real face crops blended in.

A frame shows a back wall with stocked shelves, the counter in the foreground, the shopper
(the largest face) and possibly a second, smaller person further back. Each face is an
aligned-and-cropped face image, relit, slightly blurred and blended through a soft elliptical
mask, so a detector sees a face rather than a pasted square.

The true box of a face is where the default detector boxes a UTKFace crop, measured on faces200
(see ``docs/faces.md``): a square ``UTKFACE_BOX_SIDE`` times the pasted crop's side, centred
``UTKFACE_BOX_DY`` box sides below the crop centre (it sits slightly above), clipped to the frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from auditor.audit.boxes import UTKFACE_BOX_DY, UTKFACE_BOX_SIDE, FaceBox

FRAME_SIZE = (640, 480)
# Sides of the true face boxes, in pixels of a 640x480 frame (scaled with smaller frames).
SHOPPER_SIDE = (90.0, 200.0)
OTHER_SIDE = (60.0, 0.75)  # smallest side, and largest as a share of the shopper's side


def load_face(path: Path | str) -> np.ndarray:
    """A face image file as an RGB uint8 array."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"{path}: not a readable image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


@dataclass(frozen=True)
class _Placement:
    x: int  # top-left corner of the pasted crop, may lie outside the frame
    y: int
    side: int  # side of the pasted (square) crop

    def true_box(self, width: int, height: int) -> FaceBox:
        box_side = UTKFACE_BOX_SIDE * self.side
        cx = self.x + self.side / 2
        cy = self.y + self.side / 2 + UTKFACE_BOX_DY * box_side
        x0, y0 = max(0, round(cx - box_side / 2)), max(0, round(cy - box_side / 2))
        x1 = min(width, round(cx + box_side / 2))
        y1 = min(height, round(cy + box_side / 2))
        return FaceBox(x0, y0, x1 - x0, y1 - y0, 1.0)


def compose_frame(
    rng: np.random.Generator,
    faces: list[np.ndarray],
    *,
    size: tuple[int, int] = FRAME_SIZE,
) -> tuple[np.ndarray, list[FaceBox]]:
    """A checkout snapshot (BGR uint8, ``size`` is width, height) and the true face boxes.

    ``faces`` are RGB crops: none, the shopper's, or the shopper's and a second person's. The
    shopper's face is the largest; the boxes come in the order of ``faces``. The same ``rng``
    state and faces give the same frame.
    """
    if len(faces) > 2:
        raise ValueError(f"a frame holds at most 2 faces, got {len(faces)}")
    width, height = size
    k = min(width / FRAME_SIZE[0], height / FRAME_SIZE[1])
    counter_top = round(height * rng.uniform(0.70, 0.80))
    frame = _wall_and_shelves(rng, width, height, counter_top)

    sides = _face_sides(rng, len(faces), k)
    placements = _place(rng, sides, width, height, counter_top)
    # Bodies first (the counter hides their lower part), then faces, the one further back first.
    lit = [_relight(rng, face, p.side) for face, p in zip(faces, placements, strict=True)]
    for face, p in reversed(list(zip(lit, placements, strict=True))):
        _draw_body(rng, frame, face, p)
    _draw_counter(rng, frame, counter_top)
    canvas = frame.astype(np.float32)
    for face, p in reversed(list(zip(lit, placements, strict=True))):
        _blend(canvas, face, p)
    canvas = _camera(rng, canvas)
    return canvas, [p.true_box(width, height) for p in placements]


# --- faces ---------------------------------------------------------------------------------


def _face_sides(rng: np.random.Generator, count: int, k: float) -> list[int]:
    """Sides of the pasted crops, from true-box sides drawn for the shopper and the other."""
    box_sides: list[float] = []
    if count >= 1:
        box_sides.append(rng.uniform(*SHOPPER_SIDE) * k)
    if count == 2:
        low = OTHER_SIDE[0] * k
        box_sides.append(rng.uniform(low, max(low, OTHER_SIDE[1] * box_sides[0])))
    return [max(8, round(s / UTKFACE_BOX_SIDE)) for s in box_sides]


def _place(
    rng: np.random.Generator, sides: list[int], width: int, height: int, counter_top: int
) -> list[_Placement]:
    """Non-overlapping spots, faces fully in the frame, above or just over the counter."""
    spans = [round(side * 1.1) for side in sides]  # the true box is a little wider than the crop
    gap = 12
    free = width - sum(spans) - gap * (len(sides) - 1) - 4
    if free < 0:
        raise ValueError(f"the faces do not fit side by side in a frame {width} wide")
    cuts = np.sort(rng.uniform(0, free, len(sides))) if sides else np.array([])
    order = list(range(len(sides)))
    rng.shuffle(order)  # the shopper stands left or right of the other person
    placements: dict[int, _Placement] = {}
    left = 2.0
    previous_cut = 0.0
    for i, cut in zip(order, cuts, strict=True):
        left += cut - previous_cut
        previous_cut = cut
        side = sides[i]
        top_low = 0.12 * side + 2
        top_high = min(height - side - 2, counter_top - 1.25 * side)
        top = rng.uniform(top_low, max(top_low, top_high))
        x = round(left + (spans[i] - side) / 2)
        placements[i] = _Placement(x, round(top), side)
        left += spans[i] + gap
    return [placements[i] for i in range(len(sides))]


def _relight(rng: np.random.Generator, face_rgb: np.ndarray, side: int) -> np.ndarray:
    """The face resized to ``side``, in BGR float32, with new brightness, contrast, cast, blur."""
    interpolation = cv2.INTER_AREA if side < face_rgb.shape[0] else cv2.INTER_LINEAR
    face = cv2.resize(face_rgb, (side, side), interpolation=interpolation)
    face = cv2.cvtColor(face, cv2.COLOR_RGB2BGR).astype(np.float32)
    mean = float(face.mean())
    contrast = rng.uniform(0.7, 1.15)
    gain = rng.uniform(0.65, 1.25)
    cast = rng.uniform(0.88, 1.12, 3).astype(np.float32)
    face = ((face - mean) * contrast + mean) * gain * cast
    sigma = rng.uniform(0.0, 1.3)
    if sigma > 0.3:
        face = cv2.GaussianBlur(face, (0, 0), sigma)
    return np.clip(face, 0, 255)


def _alpha(side: int) -> np.ndarray:
    """A soft rounded mask filling the crop (a superellipse, so the cheeks and brow stay): opaque
    in the middle, fading to nothing at the crop's edge over the outer quarter of its radius."""
    grid = np.abs((np.arange(side, dtype=np.float32) + 0.5) / side - 0.5) / 0.5
    radius = (grid[None, :] ** 3 + grid[:, None] ** 3) ** (1 / 3)
    t = np.clip((1.0 - radius) / 0.25, 0.0, 1.0)
    return (t * t * (3 - 2 * t))[..., None]  # smoothstep


def _blend(canvas: np.ndarray, face: np.ndarray, p: _Placement) -> None:
    height, width = canvas.shape[:2]
    x0, y0 = max(0, p.x), max(0, p.y)
    x1, y1 = min(width, p.x + p.side), min(height, p.y + p.side)
    if x0 >= x1 or y0 >= y1:
        return
    alpha = _alpha(p.side)[y0 - p.y : y1 - p.y, x0 - p.x : x1 - p.x]
    patch = face[y0 - p.y : y1 - p.y, x0 - p.x : x1 - p.x]
    region = canvas[y0:y1, x0:x1]
    region[...] = region * (1 - alpha) + patch * alpha


# Hair colours, BGR: black, dark brown, brown, auburn, blond, grey.
HAIR = ((20, 20, 25), (25, 35, 55), (40, 65, 100), (40, 60, 130), (110, 170, 210), (150, 150, 155))


def _draw_body(
    rng: np.random.Generator, frame: np.ndarray, face: np.ndarray, p: _Placement
) -> None:
    """Neck, shoulders and hair around the face: skin taken from the face, a clothing colour.

    The head's outline matters: a face blended straight onto shelves lacks the contour of a
    head, and detectors (Haar cascades most) miss a good share of such faces.
    """
    side = p.side
    middle = face[side // 3 : 2 * side // 3, side // 3 : 2 * side // 3]
    skin = tuple(float(c) * 0.85 for c in middle.reshape(-1, 3).mean(axis=0))
    cloth = tuple(float(c) for c in rng.integers(20, 220, 3))
    cx = p.x + side // 2
    cv2.rectangle(
        frame,
        (cx - round(0.17 * side), p.y + round(0.7 * side)),
        (cx + round(0.17 * side), p.y + round(1.15 * side)),
        skin,
        -1,
    )
    shoulders_y = p.y + round(1.3 * side)
    half = round(0.95 * side)
    cv2.ellipse(frame, (cx, shoulders_y), (half, round(0.28 * side)), 0, 180, 360, cloth, -1)
    cv2.rectangle(frame, (cx - half, shoulders_y), (cx + half, 10**4), cloth, -1)
    hair = np.array(HAIR[int(rng.integers(len(HAIR)))], np.float64) * rng.uniform(0.8, 1.2)
    head = (cx, p.y + round(0.4 * side))
    cv2.ellipse(
        frame,
        head,
        (round(0.53 * side), round(0.58 * side)),
        0,
        0,
        360,
        tuple(float(c) for c in np.clip(hair, 0, 255)),
        -1,
    )


# --- the scene -----------------------------------------------------------------------------


def _colour(rng: np.random.Generator, low: int, high: int) -> tuple[float, float, float]:
    b, g, r = rng.integers(low, high, 3)
    return (float(b), float(g), float(r))


def _wall_and_shelves(
    rng: np.random.Generator, width: int, height: int, counter_top: int
) -> np.ndarray:
    """A back wall lit from above, with two to four shelves of goods."""
    top = np.array(_colour(rng, 120, 230), np.float32)
    bottom = np.array(_colour(rng, 60, 170), np.float32)
    ramp = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    wall = top * (1 - ramp) + bottom * ramp
    frame = np.ascontiguousarray(np.broadcast_to(wall, (height, width, 3))).astype(np.uint8)

    shelves = int(rng.integers(2, 5))
    ys = np.linspace(0.1 * height, counter_top - 0.08 * height, shelves + 1)
    board = _colour(rng, 90, 230)
    for upper, lower in zip(ys[:-1], ys[1:], strict=True):
        shelf_y = round(lower)
        room = max(8, round(lower - upper) - 6)
        x = int(rng.integers(0, 12))
        while x < width:
            w = int(rng.integers(14, 48))
            if rng.random() < 0.85:  # now and then a gap on the shelf
                h = int(rng.integers(max(6, room // 3), room + 1))
                colour = _colour(rng, 20, 250)
                cv2.rectangle(frame, (x, shelf_y - h), (x + w - 2, shelf_y), colour, -1)
                label = tuple(min(255.0, c + 70) for c in colour)
                cv2.rectangle(
                    frame, (x + 2, shelf_y - 2 * h // 3), (x + w - 4, shelf_y - h // 3), label, -1
                )
            x += w
        cv2.rectangle(frame, (0, shelf_y), (width, shelf_y + int(rng.integers(5, 11))), board, -1)
    return frame


def _draw_counter(rng: np.random.Generator, frame: np.ndarray, counter_top: int) -> None:
    """The checkout counter across the bottom: its top, a conveyor belt and a card terminal."""
    height, width = frame.shape[:2]
    left = counter_top + int(rng.integers(-15, 16))
    right = counter_top + int(rng.integers(-15, 16))
    top = np.array([[0, left], [width, right], [width, height], [0, height]], np.int32)
    cv2.fillPoly(frame, [top], _colour(rng, 60, 200))
    belt = round((height - counter_top) * 0.4)
    edge = round((height - counter_top) * 0.15)
    belt_poly = np.array(
        [
            [0, left + edge],
            [width, right + edge],
            [width, right + edge + belt],
            [0, left + edge + belt],
        ],
        np.int32,
    )
    cv2.fillPoly(frame, [belt_poly], _colour(rng, 15, 60))
    tx = int(rng.integers(0, max(1, width - 80)))
    ty = max(left, right) + edge
    cv2.rectangle(frame, (tx, ty), (tx + 60, ty + 36), _colour(rng, 10, 50), -1)
    cv2.rectangle(frame, (tx + 8, ty + 5), (tx + 52, ty + 18), _colour(rng, 120, 220), -1)


def _camera(rng: np.random.Generator, canvas: np.ndarray) -> np.ndarray:
    """Vignetting and sensor noise of a cheap checkout camera; back to uint8."""
    height, width = canvas.shape[:2]
    ys = (np.arange(height, dtype=np.float32) / height - 0.5)[:, None]
    xs = (np.arange(width, dtype=np.float32) / width - 0.5)[None, :]
    vignette = 1.0 - rng.uniform(0.15, 0.35) * (xs * xs + ys * ys) * 2
    canvas = canvas * vignette[..., None]
    canvas += rng.normal(0.0, rng.uniform(1.5, 5.0), canvas.shape).astype(np.float32)
    return np.clip(canvas + 0.5, 0, 255).astype(np.uint8)
