"""What a checkout camera does to a face, as training augmentation and as a test of robustness.

Training faces can be stored with *context*: a square ``context`` times the side of the face
crop, centred on it (the auditor's face stage cuts them so). The crop the model sees is cut
from it with the box jitter a real detector has: scale and shift. Then flips, colour casts,
low light, grayscale, sensor noise, blur, JPEG and occlusion are applied at random.

The same perturbations, fixed instead of random, make the robustness table (``PERTURBATIONS``,
``perturb``): numpy only, so a benchmark can run them on any engine.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class CameraAugment:
    """Probabilities and ranges of the camera augmentation (each applied independently)."""

    scale: float = 0.20  # crop side x U(1 - scale, 1 + scale)
    shift: float = 0.10  # crop centre moved by U(-shift, shift) crop sides, in x and in y
    grayscale: float = 0.20
    low_light: float = 0.25  # brightness x U(0.35, 0.8), with a gamma
    colour_cast: float = 0.35  # per-channel gains U(0.8, 1.2)
    contrast: float = 0.25  # contrast x U(1 - contrast, 1 + contrast), always
    noise: float = 0.30  # Gaussian noise, sigma U(2, 16)
    blur: float = 0.25  # shrink to 25-75% and back
    jpeg: float = 0.30  # JPEG quality U(25, 90), on the stored image with context
    jpeg_final: float = 0.25  # JPEG quality U(20, 80) again on the model's crop, last
    hair: float = 0.15  # only the face oval shows
    band: float = 0.10  # a cap's band over the top of the crop
    border: float = 0.15  # one side of the crop's border covered


def face_oval(size: int) -> np.ndarray:
    """The face oval of a size x size crop (True inside): what shows under a hood or scarf."""
    yy, xx = np.mgrid[-1 : 1 : size * 1j, -1 : 1 : size * 1j]
    return (xx / 0.78) ** 2 + ((yy - 0.12) / 0.92) ** 2 <= 1.0


def context_margin(margin: float, context: float) -> float:
    """The crop margin that cuts a square ``context`` times the side of the margin's crop."""
    return (context * (1 + 2 * margin) - 1) / 2


def camera_augmenter(size: int, context: float, spec: CameraAugment = CameraAugment()):
    """A function of a batch of uint8 or float images with context (n, s, s, 3) that returns
    augmented float32 crops (n, size, size, 3) in 0..255."""
    import tensorflow as tf

    rng = _Random()

    def boxes(n):
        side = rng.uniform((n,), 1 - spec.scale, 1 + spec.scale) / context
        cx = 0.5 + rng.uniform((n,), -spec.shift, spec.shift) / context
        cy = 0.5 + rng.uniform((n,), -spec.shift, spec.shift) / context
        return tf.stack([cy - side / 2, cx - side / 2, cy + side / 2, cx + side / 2], axis=1)

    def coin(n, p):
        return tf.reshape(rng.uniform((n,)) < p, (n, 1, 1, 1))

    def apply(x):
        x = tf.cast(x, "float32")
        n = tf.shape(x)[0]
        x = tf.image.crop_and_resize(
            x, boxes(n), tf.range(n), (size, size), method="bilinear", extrapolation_value=0
        )
        x = tf.where(coin(n, 0.5), tf.reverse(x, axis=[2]), x)
        # colour: gains per channel, then grayscale, then low light (with a gamma)
        gains = rng.uniform((n, 1, 1, 3), 0.8, 1.2)
        x = tf.where(coin(n, spec.colour_cast), x * gains, x)
        luma = tf.reduce_sum(x * [0.299, 0.587, 0.114], axis=-1, keepdims=True)
        grey = tf.repeat(luma, 3, axis=-1)
        x = tf.where(coin(n, spec.grayscale), grey, x)
        x = tf.clip_by_value(x, 0.0, 255.0)
        dim = rng.uniform((n, 1, 1, 1), 0.35, 0.8)
        gamma = rng.uniform((n, 1, 1, 1), 1.0, 1.6)
        x = tf.where(coin(n, spec.low_light), 255.0 * (x / 255.0) ** gamma * dim, x)
        # contrast around each image's mean
        mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
        x = (x - mean) * rng.uniform((n, 1, 1, 1), 1 - spec.contrast, 1 + spec.contrast) + mean
        # blur: loss of resolution
        small = tf.cast(rng.uniform((), 0.25, 0.75) * size, tf.int32)
        blurred = tf.image.resize(tf.image.resize(x, (small, small), "area"), (size, size))
        x = tf.where(coin(n, spec.blur), blurred, x)
        # occlusion: the face oval only, a cap's band, a side of the border
        oval = tf.constant(face_oval(size)[None, :, :, None])
        fill = rng.uniform((n, 1, 1, 3), 10.0, 200.0)
        x = tf.where(coin(n, spec.hair) & ~oval, fill, x)
        rows = tf.reshape(tf.linspace(0.0, 1.0, size), (1, size, 1, 1))
        band = rows < tf.reshape(rng.uniform((n,), 0.12, 0.32), (n, 1, 1, 1))
        x = tf.where(coin(n, spec.band) & band, fill, x)
        columns = tf.reshape(tf.linspace(0.0, 1.0, size), (1, 1, size, 1))
        left = columns < tf.reshape(rng.uniform((n,), 0.05, 0.15), (n, 1, 1, 1))
        x = tf.where(coin(n, spec.border) & left, fill, x)
        # sensor noise
        sigma = rng.uniform((n, 1, 1, 1), 2.0, 16.0)
        noisy = x + rng.normal(tf.shape(x)) * sigma
        x = tf.where(coin(n, spec.noise), noisy, x)
        return tf.clip_by_value(x, 0.0, 255.0)

    return apply


class _Random:
    """TensorFlow's stateful random ops (allowed in ``tf.data`` maps), seeded by the global seed."""

    def uniform(self, shape, low=0.0, high=1.0, dtype="float32"):
        import tensorflow as tf

        return tf.random.uniform(shape, low, high, dtype=dtype)

    def normal(self, shape):
        import tensorflow as tf

        return tf.random.normal(shape)


def jpeg_augmenter(probability: float, low: int = 25, high: int = 90):
    """A per-image function: JPEG compression at quality low-high with ``probability``;
    the image comes back as uint8."""
    import tensorflow as tf

    rng = _Random()

    def apply(image):
        image = tf.cast(tf.round(tf.clip_by_value(image, 0, 255)), tf.uint8)
        quality = rng.uniform((), low, high + 1, dtype=tf.int32)
        return tf.cond(
            rng.uniform(()) < probability,
            lambda: tf.image.adjust_jpeg_quality(image, quality),
            lambda: image,
        )

    return apply


def centre_crops(images: np.ndarray, context: float, size: int) -> np.ndarray:
    """The face crops (uint8, size x size) at the centre of images stored with context."""
    return np.stack([cut_crop(image, context, 1.0, 0.0, 0.0, size) for image in images])


def cut_crop(image: np.ndarray, context: float, scale: float, dx: float, dy: float, size: int):
    """A crop of ``scale`` crop sides, its centre moved by (dx, dy) crop sides, from an image
    stored with ``context``; resized to ``size`` as the audit resizes a face crop (cut at the
    image's own resolution, then ``resize_square``: area averaging when shrinking)."""
    from model.data import resize_square

    side = image.shape[0] / context
    crop = side * scale
    native = max(1, round(crop))
    x0 = image.shape[1] / 2 + dx * side - crop / 2
    y0 = image.shape[0] / 2 + dy * side - crop / 2
    step = crop / native
    matrix = np.array([[step, 0, x0], [0, step, y0]], dtype=np.float64)
    cut = cv2.warpAffine(
        image,
        matrix,
        (native, native),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REPLICATE,
    )
    return resize_square(cut, size)


# --- fixed perturbations: the robustness table ---------------------------------------------

PERTURBATIONS = (
    "clean",
    "looser_13",
    "tighter_13",
    "shifted_8",
    "grayscale",
    "noise_10",
    "half_brightness",
    "jpeg_40",
    "face_40px",
    "hair_hidden",
)


def perturb(images: np.ndarray, context: float, name: str, size: int, seed: int = 0) -> np.ndarray:
    """The face crops (uint8, size x size) of images stored with context, under one of
    ``PERTURBATIONS``; deterministic for a seed."""
    if name not in PERTURBATIONS:
        raise ValueError(f"unknown perturbation {name!r}; known: {', '.join(PERTURBATIONS)}")
    rng = np.random.default_rng(seed)
    scale, dx, dy = {"looser_13": (1.13, 0, 0), "tighter_13": (0.87, 0, 0)}.get(name, (1, 0, 0))
    out = []
    for image in images:
        if name == "shifted_8":
            angle = rng.uniform(0, 2 * np.pi)
            dx, dy = 0.08 * np.cos(angle), 0.08 * np.sin(angle)
        crop = cut_crop(image, context, scale, dx, dy, size)
        out.append(_photometric(crop, name, rng))
    return np.stack(out)


def _photometric(crop: np.ndarray, name: str, rng: np.random.Generator) -> np.ndarray:
    size = crop.shape[0]
    if name == "grayscale":
        grey = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
        return cv2.cvtColor(grey, cv2.COLOR_GRAY2RGB)
    if name == "noise_10":
        noisy = crop.astype(np.float32) + rng.normal(0, 10, crop.shape)
        return np.clip(noisy, 0, 255).round().astype(np.uint8)
    if name == "half_brightness":
        return (crop.astype(np.float32) * 0.5).round().astype(np.uint8)
    if name == "jpeg_40":
        bgr = cv2.cvtColor(crop, cv2.COLOR_RGB2BGR)
        ok, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 40])
        decoded = cv2.imdecode(data, cv2.IMREAD_COLOR)
        assert decoded is not None  # it was just encoded
        return cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)
    if name == "face_40px":
        small = cv2.resize(crop, (40, 40), interpolation=cv2.INTER_AREA)
        return cv2.resize(small, (size, size), interpolation=cv2.INTER_LINEAR)
    if name == "hair_hidden":
        hidden = crop.copy()
        hidden[~face_oval(size)] = (40, 40, 45)  # a dark hood
        return hidden
    return crop
