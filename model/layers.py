"""Custom layers saved inside the model file, so a model directory needs no extra code."""

from __future__ import annotations

import keras
from keras import ops

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)


@keras.saving.register_keras_serializable(package="auditor_model")
class Preprocess(keras.layers.Layer):
    """Turn RGB pixels in 0..255 into what a backbone was trained on.

    Modes: ``caffe`` (BGR, ImageNet mean subtracted: ResNet50), ``tf`` (-1..1: Keras
    MobileNetV2), ``torch`` (0..1, ImageNet mean and std: torchvision weights), ``none``
    (the backbone rescales itself: EfficientNet).
    """

    MODES = ("caffe", "tf", "torch", "none")

    def __init__(self, mode: str, **kwargs):
        super().__init__(**kwargs)
        if mode not in self.MODES:
            raise ValueError(f"unknown preprocessing mode {mode!r}; use one of {self.MODES}")
        self.mode = mode

    def call(self, x):
        x = ops.cast(x, self.compute_dtype)
        if self.mode == "caffe":
            return ops.flip(x, axis=-1) - ops.array(CAFFE_BGR_MEAN, dtype=self.compute_dtype)
        if self.mode == "tf":
            return x / 127.5 - 1.0
        if self.mode == "torch":
            mean = ops.array(IMAGENET_MEAN, dtype=self.compute_dtype)
            std = ops.array(IMAGENET_STD, dtype=self.compute_dtype)
            return (x / 255.0 - mean) / std
        return x

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


@keras.saving.register_keras_serializable(package="auditor_model")
class AgeExpectation(keras.layers.Layer):
    """Expected age of a distribution over ages 0..N-1 (the DEX read-out)."""

    def call(self, probs):
        ages = ops.arange(ops.shape(probs)[-1], dtype=probs.dtype)
        return ops.sum(probs * ages, axis=-1, keepdims=True)
