"""The face detectors the audit can run, by name: what each runs, without loading anything.

``auditor.audit.detect`` runs them; the settings check ``[audit] detector`` against these names,
which is why this module sits outside ``auditor.audit`` and imports nothing of it.
How they were chosen, with the figures, is in ``docs/faces.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

# The names of :data:`DETECTORS`, for the settings to validate ``[audit] detector`` against.
DetectorName = Literal[
    "blazeface-short",
    "blazeface-short-opencv",
    "blazeface",
    "blazeface-letterbox",
    "blazeface-opencv",
    "haar",
    "haar-half",
    "haar-alt2",
    "haar-alt2-half",
    "haar-alt2-fine",
]
DEFAULT_DETECTOR: DetectorName = "blazeface-short"


@dataclass(frozen=True)
class DetectorSpec:
    """How a named detector runs.

    ``haar``: an OpenCV Haar cascade on the frame resized by ``scale``. ``blazeface``: one of
    MediaPipe's BlazeFace models (``model``), run by OpenVINO (``runtime="openvino"``, falling
    back to OpenCV when OpenVINO is not installed) or by OpenCV's DNN module
    (``runtime="opencv"``). The full-range model takes a 192x192 square: square tiles covering
    the frame (``tiles=True``) or the whole frame letterboxed into one. The short-range model is
    resized to the frame's shape: it looks at the whole frame scaled to ``long_side`` pixels on
    its longer side. ``box_scale`` and ``box_dy`` move its boxes onto the framing the full-range
    model gives (side x box_scale; centre moved down by box_dy box sides), which is where
    ``crop_box`` expects them.
    """

    kind: str
    cascade: str = ""
    scale: float = 1.0
    min_neighbors: int = 3
    scale_factor: float = 1.1
    model: str = "full_range"
    tiles: bool = True
    long_side: int = 0
    box_scale: float = 1.0
    box_dy: float = 0.0
    min_score: float = 0.5
    runtime: str = "openvino"


# The short-range model on the whole frame at 224 px, its boxes moved onto the full-range
# model's framing (measured on demo frames with ``benchmarks/faces.py framing``). Its false
# detections on the shelves score 0.50-0.68 and its faces 0.57 and up (99% over 0.74): a
# minimum score of 0.6 keeps 99.3% of the faces and drops 14 of 16 false ones (600 frames).
_SHORT = DetectorSpec(
    "blazeface",
    model="short_range",
    long_side=224,
    box_scale=1.058,
    box_dy=-0.066,
    min_score=0.6,
)
_HAAR = "haarcascade_frontalface_default.xml"
_HAAR_ALT2 = "haarcascade_frontalface_alt2.xml"
DETECTORS: dict[DetectorName, DetectorSpec] = {
    "blazeface-short": _SHORT,
    "blazeface-short-opencv": replace(_SHORT, runtime="opencv"),
    "blazeface": DetectorSpec("blazeface"),
    "blazeface-letterbox": DetectorSpec("blazeface", tiles=False),
    "blazeface-opencv": DetectorSpec("blazeface", runtime="opencv"),
    "haar": DetectorSpec("haar", _HAAR),
    "haar-half": DetectorSpec("haar", _HAAR, scale=0.5),
    "haar-alt2": DetectorSpec("haar", _HAAR_ALT2),
    "haar-alt2-half": DetectorSpec("haar", _HAAR_ALT2, scale=0.5),
    "haar-alt2-fine": DetectorSpec("haar", _HAAR_ALT2, scale_factor=1.05),
}
