"""The reports and the review app load without the audit's heavy libraries: OpenCV, OpenVINO
and TensorFlow are the face stage's and the model's, imported only where those run."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("cv2", "openvino", "tensorflow")


def loaded_after(code: str, watched: tuple[str, ...] = HEAVY) -> list[str]:
    """The ``watched`` modules in ``sys.modules`` after running ``code`` in a fresh interpreter."""
    check = (
        f"{code}\nimport json, sys\nprint(json.dumps([m for m in {watched!r} if m in sys.modules]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", check], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "code",
    [
        "import auditor.reports\nfrom auditor.reports.build import write_night_reports",
        "import auditor.web\nfrom auditor.web.app import create_app",
    ],
    ids=["reports", "web"],
)
def test_loads_without_opencv_openvino_or_tensorflow(code: str) -> None:
    assert loaded_after(code) == []


def test_report_workers_load_without_the_review_app() -> None:
    """The reports link the review app's list with its filters' parameters, not its code: a
    report worker does not load Flask."""
    code = "from auditor.reports.build import write_night_reports"
    assert loaded_after(code, ("flask", "werkzeug", "auditor.web")) == []


def test_the_model_card_margin_is_the_face_stage_margin() -> None:
    """A model directory exported with the default margin crops faces at serving time as the
    face stage cut them for training."""
    from auditor.audit.boxes import DEFAULT_MARGIN
    from model.export import DEFAULT_FACE_CROP_MARGIN

    assert DEFAULT_FACE_CROP_MARGIN == DEFAULT_MARGIN
