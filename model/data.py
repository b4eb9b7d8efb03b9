"""Labelled face sets: read, validate, split by file name, decode, and feed ``tf.data``.

A labelled set is a folder with ``labels.csv`` (``file_name,real_age`` and optional extra
columns such as ``gender`` and ``race``, kept for analysis) and the images in ``final_files/``.
A set labelled by age group has ``age_group`` (``10-19``, ``70+``) instead of ``real_age``:
its ``real_age`` is NaN, and it can be measured per group but not trained on.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from model.augment import CameraAugment
from model.errors import DatasetError
from model.metrics import group_bounds

log = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("file_name", "real_age")
SPLITS = ("train", "val", "test")
MAX_AGE = 120


@dataclass(frozen=True)
class SplitSpec:
    """Shares of the deterministic split; the rest is training data."""

    test: float = 0.15
    val: float = 0.10


DEFAULT_SPLIT = SplitSpec()


def split_of(file_name: str, spec: SplitSpec = DEFAULT_SPLIT) -> str:
    """Which split a face belongs to, from its file name alone.

    The same name lands in the same split in every folder, so a face that exists at two
    resolutions is never trained on in one and tested in the other.
    """
    bucket = int(hashlib.sha256(file_name.encode("utf-8")).hexdigest()[:8], 16) / 0xFFFFFFFF
    if bucket < spec.test:
        return "test"
    if bucket < spec.test + spec.val:
        return "val"
    return "train"


def read_labels(folder: str | Path) -> pd.DataFrame:
    """Read and validate ``labels.csv`` of one labelled set.

    Returns one row per face with ``file_name, real_age, path, source`` and any extra columns.
    Raises :class:`DatasetError` naming the file, line and field of the first bad row.
    """
    folder = Path(folder)
    labels = folder / "labels.csv"
    if not labels.is_file():
        raise DatasetError(f"{labels}: not found; a labelled set needs labels.csv and final_files/")
    try:
        df = pd.read_csv(labels, dtype=str, keep_default_na=False, encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{labels}: not UTF-8 text ({exc.reason})") from exc
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DatasetError(f"{labels}: not a readable CSV file ({exc})") from exc
    grouped = "real_age" not in df.columns and "age_group" in df.columns
    if grouped:  # apparent-age groups (e.g. 10-19) instead of ages
        df["real_age"] = "nan"
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise DatasetError(
            f"{labels}:1: header: missing column(s) {', '.join(missing)} "
            "(or age_group instead of real_age)"
        )
    if df.empty:
        raise DatasetError(f"{labels}: no rows")
    for line, (_, row) in enumerate(df.iterrows(), start=2):  # header is line 1
        if not row["file_name"].strip():
            raise DatasetError(f"{labels}:{line}: file_name: empty")
        if grouped:
            try:
                group_bounds(row["age_group"])
            except ValueError as exc:
                raise DatasetError(f"{labels}:{line}: age_group: {exc}") from None
            continue
        try:
            age = float(row["real_age"])
        except ValueError:
            raise DatasetError(
                f"{labels}:{line}: real_age: {row['real_age']!r} is not a number"
            ) from None
        if not 0 <= age <= MAX_AGE:
            raise DatasetError(f"{labels}:{line}: real_age: {age:g} is outside 0..{MAX_AGE}")
    duplicated = df["file_name"].duplicated()
    if duplicated.any():
        line = int(np.flatnonzero(duplicated.to_numpy())[0]) + 2
        raise DatasetError(f"{labels}:{line}: file_name: {df['file_name'][line - 2]!r} repeated")
    df["real_age"] = df["real_age"].astype(float)
    for extra, allowed in (("gender", "0 or 1"), ("race", "a whole number from 0")):
        if extra in df.columns:
            text = df[extra].str.strip()
            values = pd.to_numeric(text, errors="coerce")
            bad = (text != "") & ~(
                values.isin([0, 1]) if extra == "gender" else (values >= 0) & (values % 1 == 0)
            )
            if bad.any():  # UTKFace itself holds a few: not known, said once
                line = int(np.flatnonzero(bad.to_numpy())[0]) + 2
                log.warning(
                    "%s: %d %s value(s) not %s, read as not known (the first at line %d: %r)",
                    labels,
                    int(bad.sum()),
                    extra,
                    allowed,
                    line,
                    text.iloc[line - 2],
                )
            df[extra] = values.where(~bad).astype("Int64")
    df["path"] = [str(folder / "final_files" / name) for name in df["file_name"]]
    df["source"] = folder.name
    return df


def read_sets(folders: Sequence[str | Path], spec: SplitSpec = DEFAULT_SPLIT) -> pd.DataFrame:
    """Read several labelled sets; a face in more than one keeps the first folder's copy."""
    frames = [read_labels(folder) for folder in folders]
    kinds = {bool(f["real_age"].isna().all()) for f in frames}
    if len(kinds) > 1:
        grouped = [str(f["source"].iloc[0]) for f in frames if f["real_age"].isna().all()]
        raise DatasetError(
            f"{', '.join(grouped)}: labelled by age group, the other sets by real_age; "
            "give sets of one kind"
        )
    df = pd.concat(frames, ignore_index=True).drop_duplicates("file_name", keep="first")
    df["split"] = [split_of(name, spec) for name in df["file_name"]]
    return df.reset_index(drop=True)


@dataclass
class LoadedImages:
    """Decoded faces (uint8 RGB, all resized to one size) with their label rows."""

    images: np.ndarray
    labels: pd.DataFrame
    skipped: list[str] = field(default_factory=list)
    # Photos read but left out because a face stage found no face in them.
    not_found: list[str] = field(default_factory=list)


# Reads the faces of a labelled set's rows as images of a given side: (rows, side) -> images.
FaceLoader = Callable[[pd.DataFrame, int], LoadedImages]


def decode_face(path: str | Path, size: int) -> np.ndarray | None:
    """Read an image file as RGB resized to ``size`` x ``size``; None when unreadable."""
    data = np.fromfile(path, dtype=np.uint8) if Path(path).is_file() else None
    if data is None or data.size == 0:
        return None
    image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if image is None:
        return None
    image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    return resize_square(image, size)


def resize_square(image: np.ndarray, size: int) -> np.ndarray:
    """Resize an RGB image to ``size`` x ``size`` (area filter when shrinking)."""
    if image.shape[:2] == (size, size):
        return image
    shrinking = min(image.shape[:2]) > size
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(image, (size, size), interpolation=interpolation)


def load_images(df: pd.DataFrame, size: int, workers: int = 4) -> LoadedImages:
    """Decode every face of ``df``; unreadable files are skipped, logged and counted."""
    with ThreadPoolExecutor(workers) as pool:
        decoded = list(pool.map(lambda p: decode_face(p, size), df["path"]))
    keep = [image is not None for image in decoded]
    skipped = [path for path, ok in zip(df["path"], keep, strict=True) if not ok]
    for path in skipped:
        log.warning("%s: unreadable image, skipped", path)
    images = [image for image in decoded if image is not None]
    if not images:
        folders = sorted({str(Path(path).parent) for path in df["path"]})
        where = f" in {', '.join(folders[:3])}{' ...' if len(folders) > 3 else ''}"
        missing = [f for f in folders[:3] if not Path(f).is_dir()]
        hint = f" ({', '.join(missing)}: no such folder)" if missing else ""
        raise DatasetError(f"no readable image among {len(df)} listed faces{where}{hint}")
    return LoadedImages(np.stack(images), df[keep].reset_index(drop=True), skipped)


def tf_dataset(
    images: np.ndarray,
    ages: Iterable[float],
    *,
    batch_size: int,
    training: bool,
    targets: Sequence[str] = ("age",),
    seed: int = 0,
    weights: np.ndarray | None = None,
    camera: CameraInput | None = None,
):
    """A batched, prefetched ``tf.data.Dataset`` of (image, {target: age}) with augmentation.

    With ``weights`` (one per image) each element also carries {target: weight}, Keras's
    per-sample loss weights. With ``camera`` the images are stored with context and the
    camera augmentation cuts the model's input from them (``model.augment``); without it they
    are the model's input and get the basic augmentation.
    """
    import tensorflow as tf

    ages = np.asarray(list(ages), dtype="float32")
    if weights is not None:
        weights = np.asarray(weights, dtype="float32")
        if weights.shape != ages.shape:
            raise ValueError(f"{len(weights)} weights for {len(ages)} faces")
        ds = tf.data.Dataset.from_tensor_slices((images, ages, weights))
        ds = ds.map(lambda x, y, w: (x, (y, w)))  # keep the (image, label) pair shape below
    else:
        ds = tf.data.Dataset.from_tensor_slices((images, ages))
    if training:
        ds = ds.shuffle(len(ages), seed=seed, reshuffle_each_iteration=True)
    if camera is not None:
        ds = _camera_pipeline(ds, camera, batch_size=batch_size, training=training)
    else:
        ds = ds.batch(batch_size, drop_remainder=False)
        if training:
            augment = augmenter(images.shape[1], seed)
            ds = ds.map(lambda x, y: (augment(x), y), num_parallel_calls=tf.data.AUTOTUNE)
        else:
            ds = ds.map(lambda x, y: (tf.cast(x, "float32"), y))
    if weights is not None:
        ds = ds.map(
            lambda x, yw: (x, {name: yw[0] for name in targets}, {name: yw[1] for name in targets})
        )
    else:
        ds = ds.map(lambda x, y: (x, {name: y for name in targets}))
    return ds.prefetch(tf.data.AUTOTUNE)


@dataclass(frozen=True)
class CameraInput:
    """Images stored with ``context`` (see ``model.augment``), cut to ``size`` for the model."""

    size: int
    context: float
    augment: CameraAugment = CameraAugment()


def _camera_pipeline(ds, camera: CameraInput, *, batch_size: int, training: bool):
    """Batches of model inputs cut from images with context: jittered and perturbed when
    training (JPEG per image, the rest per batch), the centre crop otherwise."""
    import tensorflow as tf

    from model.augment import camera_augmenter, jpeg_augmenter

    if not training:
        inner = 1.0 / camera.context
        box = [[0.5 - inner / 2, 0.5 - inner / 2, 0.5 + inner / 2, 0.5 + inner / 2]]

        def centre(x):
            x = tf.cast(x, "float32")
            n = tf.shape(x)[0]
            boxes = tf.repeat(tf.constant(box, "float32"), n, axis=0)
            size = (camera.size, camera.size)
            return tf.image.crop_and_resize(x, boxes, tf.range(n), size, method="bilinear")

        ds = ds.batch(batch_size, drop_remainder=False)
        return ds.map(lambda x, y: (centre(x), y), num_parallel_calls=tf.data.AUTOTUNE)
    jpeg = jpeg_augmenter(camera.augment.jpeg)
    augment = camera_augmenter(camera.size, camera.context, camera.augment)
    ds = ds.map(lambda x, y: (jpeg(x), y), num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.batch(batch_size, drop_remainder=False)
    ds = ds.map(lambda x, y: (augment(x), y), num_parallel_calls=tf.data.AUTOTUNE)
    if not camera.augment.jpeg_final:
        return ds
    # The camera encodes last, after noise and blur: JPEG once more on the model's own crop.
    last = jpeg_augmenter(camera.augment.jpeg_final, 20, 80)
    ds = ds.unbatch().map(
        lambda x, y: (tf.cast(last(x), "float32"), y), num_parallel_calls=tf.data.AUTOTUNE
    )
    return ds.batch(batch_size, drop_remainder=False)


def augmenter(size: int, seed: int = 0):
    """Flip, small shifts and zoom, brightness/contrast, and random loss of resolution.

    The last one teaches the model faces as a checkout camera sees them: fewer pixels than a
    portrait, upscaled.
    """
    import keras
    import tensorflow as tf

    layers = keras.Sequential(
        [
            keras.layers.RandomFlip("horizontal", seed=seed),
            keras.layers.RandomTranslation(0.06, 0.06, fill_mode="reflect", seed=seed),
            keras.layers.RandomZoom((-0.08, 0.08), fill_mode="reflect", seed=seed),
            keras.layers.RandomRotation(0.03, fill_mode="reflect", seed=seed),
            keras.layers.RandomBrightness(0.2, value_range=(0, 255), seed=seed),
            keras.layers.RandomContrast(0.25, seed=seed),
        ],
        name="augment",
    )
    low = max(16, size // 4)

    def degrade(x):
        small = tf.random.uniform((), low, size + 1, dtype=tf.int32)
        shrunk = tf.image.resize(x, (small, small), method="area")
        return tf.image.resize(shrunk, (size, size), method="bilinear")

    def apply(x):
        x = layers(tf.cast(x, "float32"), training=True)
        x = tf.cond(tf.random.uniform(()) < 0.4, lambda: degrade(x), lambda: x)
        return tf.clip_by_value(x, 0.0, 255.0)

    return apply
