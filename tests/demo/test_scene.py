"""Synthetic checkout frames, built from real faces200 crops."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from auditor.audit.frames import crop_face
from auditor.demo.datasets import DatasetsMissing, datasets_dir, face_files
from auditor.demo.scene import compose_frame, load_face


@pytest.fixture(scope="module")
def faces() -> list[np.ndarray]:
    try:
        files = face_files("faces200")
    except DatasetsMissing as exc:
        pytest.skip(str(exc))
    rng = np.random.default_rng(11)
    return [load_face(files[i]) for i in rng.choice(len(files), 6, replace=False)]


def test_same_seed_same_frame(faces: list[np.ndarray]) -> None:
    first, boxes = compose_frame(np.random.default_rng(5), faces[:2])
    again, boxes_again = compose_frame(np.random.default_rng(5), faces[:2])
    other, _ = compose_frame(np.random.default_rng(6), faces[:2])
    assert np.array_equal(first, again)
    assert boxes == boxes_again
    assert not np.array_equal(first, other)


@pytest.mark.parametrize("seed", range(8))
def test_frame_and_boxes(faces: list[np.ndarray], seed: int) -> None:
    count = seed % 3
    frame, boxes = compose_frame(np.random.default_rng(seed), faces[seed % 4 : seed % 4 + count])
    assert frame.shape == (480, 640, 3)
    assert frame.dtype == np.uint8
    assert len(boxes) == count
    for box in boxes:
        assert box.x >= 0 and box.x + box.w <= 640
        assert box.y >= 0 and box.y + box.h <= 480
        assert 55 <= box.w <= 205 and abs(box.w - box.h) <= 2
    if count == 2:
        shopper, other = boxes
        assert shopper.area > other.area
        assert shopper.iou(other) == 0
    ok, jpeg = cv2.imencode(".jpg", frame)
    assert ok and len(jpeg) > 10_000


def test_the_face_is_in_its_box(faces: list[np.ndarray]) -> None:
    """Cropping around the true box with the UTKFace framing gives back the pasted face."""
    for seed, face in enumerate(faces):
        frame, boxes = compose_frame(np.random.default_rng(seed), [face])
        crop = crop_face(frame, boxes[0], size=face.shape[0])
        middle = (slice(50, 150), slice(50, 150))
        grey = [cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)[middle].ravel() for image in (crop, face)]
        assert np.corrcoef(*grey)[0, 1] > 0.9, seed


def test_smaller_frame(faces: list[np.ndarray]) -> None:
    frame, boxes = compose_frame(np.random.default_rng(1), faces[:2], size=(320, 240))
    assert frame.shape == (240, 320, 3)
    assert all(b.x + b.w <= 320 and b.y + b.h <= 240 for b in boxes)
    assert boxes[0].w < 110


def test_at_most_two_faces(faces: list[np.ndarray]) -> None:
    with pytest.raises(ValueError, match="at most 2"):
        compose_frame(np.random.default_rng(0), faces[:3])


def test_load_face_is_rgb(tmp_path: Path) -> None:
    bgr = np.zeros((8, 8, 3), np.uint8)
    bgr[..., 0] = 255  # blue
    path = tmp_path / "blue.png"
    cv2.imwrite(str(path), bgr)
    rgb = load_face(path)
    assert rgb.shape == (8, 8, 3)
    assert (rgb[..., 2] == 255).all() and (rgb[..., 0] == 0).all()


def test_load_face_refuses_a_non_image(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("not a face")
    with pytest.raises(ValueError, match="notes.txt"):
        load_face(path)


def test_datasets_dir_override(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AUDITOR_DATASETS", str(tmp_path))
    assert datasets_dir() == tmp_path
    with pytest.raises(DatasetsMissing, match="AUDITOR_DATASETS"):
        face_files("faces200")
    monkeypatch.delenv("AUDITOR_DATASETS")
    assert datasets_dir().parts[-2:] == ("shared", "datasets")


def test_datasets_dir_without_a_checkout(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Installed from a wheel: ``../shared/datasets`` beside the working directory."""
    monkeypatch.setattr("auditor.demo.datasets.checkout_root", lambda: None)
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    assert datasets_dir() == tmp_path.resolve() / "shared" / "datasets"
    with pytest.raises(DatasetsMissing, match="AUDITOR_DATASETS"):
        face_files("faces200")
