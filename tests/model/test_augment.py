"""The camera augmentation and the fixed perturbations of the robustness table, on real faces."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from model.augment import (
    PERTURBATIONS,
    CameraAugment,
    camera_augmenter,
    centre_crops,
    face_oval,
    perturb,
)
from model.data import CameraInput, decode_face, read_labels, tf_dataset

NONE = CameraAugment(**{name: 0.0 for name in CameraAugment.__dataclass_fields__})


@pytest.fixture(scope="module")
def faces(faces_set) -> np.ndarray:
    """Eight real faces at 160 px, as if stored with context 1.6 around a 100 px crop."""
    labels = read_labels(faces_set).head(8)
    return np.stack([decode_face(p, 160) for p in labels["path"]])


def test_every_perturbation_gives_model_inputs(faces):
    for name in PERTURBATIONS:
        crops = perturb(faces, 1.6, name, 48)
        assert crops.shape == (8, 48, 48, 3) and crops.dtype == np.uint8, name


def test_clean_is_the_centre_crop_and_looser_shows_more(faces):
    clean = perturb(faces, 1.6, "clean", 100)
    np.testing.assert_array_equal(clean, centre_crops(faces, 1.6, 100))
    # the centre crop of 100 px stored with context 1.6 is pixels 30..130 of the 160 px image
    np.testing.assert_allclose(clean.astype(float), faces[:, 30:130, 30:130].astype(float), atol=2)
    looser = perturb(faces, 1.6, "looser_13", 113).astype(float)  # pixels 23.5..136.5
    assert np.abs(looser - faces[:, 23:136, 23:136]).mean() < 3
    assert np.abs(looser - faces[:, 30:143, 30:143]).mean() > 10


def test_photometric_perturbations_do_what_they_say(faces):
    grey = perturb(faces, 1.6, "grayscale", 64)
    assert (grey[..., 0] == grey[..., 1]).all() and (grey[..., 1] == grey[..., 2]).all()
    dark = perturb(faces, 1.6, "half_brightness", 64).astype(float)
    clean = perturb(faces, 1.6, "clean", 64).astype(float)
    assert abs(dark.mean() - clean.mean() / 2) < 1
    hidden = perturb(faces, 1.6, "hair_hidden", 64)
    oval = face_oval(64)
    assert (hidden[:, ~oval] == (40, 40, 45)).all()
    np.testing.assert_array_equal(hidden[:, oval], clean.astype(np.uint8)[:, oval])
    noisy = perturb(faces, 1.6, "noise_10", 64).astype(float)
    assert 7 < (noisy - clean).std() < 11
    np.testing.assert_array_equal(noisy, perturb(faces, 1.6, "noise_10", 64).astype(float))


def test_an_unknown_perturbation_is_refused(faces):
    with pytest.raises(ValueError, match="unknown perturbation 'fog'"):
        perturb(faces, 1.6, "fog", 64)


def test_the_camera_augmentation_stays_inside_the_stored_image():
    """At its widest, the jittered crop (scale 1.2, shift 0.1) stays in an image stored with
    context 1.6: a white image gives white crops, never the black beyond its edge."""
    white = np.full((32, 160, 160, 3), 255, np.uint8)
    spec = CameraAugment(**{**NONE.__dict__, "scale": 0.2, "shift": 0.1})
    out = camera_augmenter(96, 1.6, spec)(white).numpy()
    assert out.shape == (32, 96, 96, 3)
    assert out.min() > 254


def test_without_jitter_or_noise_the_augmentation_is_the_centre_crop(faces):
    out = camera_augmenter(100, 1.6, NONE)(faces).numpy()
    flipped = out[:, :, ::-1]
    centre = centre_crops(faces, 1.6, 100).astype(float)
    for crop, mirror, want in zip(out, flipped, centre, strict=True):
        assert min(np.abs(crop - want).mean(), np.abs(mirror - want).mean()) < 3


def test_the_augmented_dataset_keeps_each_face_with_its_label(faces):
    """Image i is a flat grey of 20 x (i + 1) and labelled 20 + i: after shuffling, jitter and
    flips, every label comes once, each with its own grey."""
    flat = np.stack([np.full((160, 160, 3), 20 * (i + 1), np.uint8) for i in range(8)])
    ages = np.arange(8, dtype="float32") + 20
    jitter = CameraAugment(**{**NONE.__dict__, "scale": 0.2, "shift": 0.1})
    camera = CameraInput(64, 1.6, jitter)
    seen = []
    for x, y in tf_dataset(flat, ages, batch_size=3, training=True, camera=camera, seed=3):
        for crop, age in zip(x.numpy(), y["age"].numpy(), strict=True):
            assert crop.shape == (64, 64, 3)
            assert abs(crop.mean() - 20 * (age - 19)) < 0.5
            seen.append(float(age))
    assert sorted(seen) == ages.tolist()


def test_validation_takes_the_centre_crop_in_order(faces):
    ages = np.arange(len(faces), dtype="float32") + 20
    val = tf_dataset(faces, ages, batch_size=4, training=False, camera=CameraInput(64, 1.6))
    (x, y), *_ = list(val)
    np.testing.assert_array_equal(y["age"].numpy(), ages[:4])
    centre = centre_crops(faces[:4], 1.6, 64).astype(float)
    assert np.abs(x.numpy() - centre).mean() < 3


def test_a_set_labelled_by_age_group_reads_and_rejects_bad_groups(tmp_path):
    folder = tmp_path / "groups"
    (folder / "final_files").mkdir(parents=True)
    pd.DataFrame({"file_name": ["a.jpg", "b.jpg"], "age_group": ["10-19", "70+"]}).to_csv(
        folder / "labels.csv", index=False
    )
    labels = read_labels(folder)
    assert labels["real_age"].isna().all() and list(labels["age_group"]) == ["10-19", "70+"]
    pd.DataFrame({"file_name": ["a.jpg"], "age_group": ["teen"]}).to_csv(
        folder / "labels.csv", index=False
    )
    from model.errors import DatasetError

    with pytest.raises(DatasetError, match=r"labels.csv:2: age_group: 'teen' is not an age group"):
        read_labels(folder)


def test_the_last_jpeg_pass_compresses_the_model_crop_and_keeps_labels(faces):
    """With only the last JPEG pass, always on: the crops come back blocky (not equal to the
    centre crop, but close to it) and every face keeps its own label."""
    only_jpeg = CameraAugment(**{**NONE.__dict__, "jpeg_final": 1.0})
    ages = np.arange(len(faces), dtype="float32") + 20
    camera = CameraInput(64, 1.6, only_jpeg)
    centre = {20 + i: crop.astype(float) for i, crop in enumerate(centre_crops(faces, 1.6, 64))}
    seen = []
    for x, y in tf_dataset(faces, ages, batch_size=3, training=True, camera=camera, seed=1):
        for crop, age in zip(x.numpy(), y["age"].numpy(), strict=True):
            want = centre[int(age)]
            error = min(np.abs(crop - want).mean(), np.abs(crop[:, ::-1] - want).mean())
            assert 0.3 < error < 8, error
            assert crop.dtype == np.float32 and crop.shape == (64, 64, 3)
            seen.append(float(age))
    assert sorted(seen) == ages.tolist()
