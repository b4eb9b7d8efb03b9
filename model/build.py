"""Build the age model: a ``keras.applications`` backbone, pooling and an age head.

The default is the original study's recipe: ResNet50 without its top, global average pooling,
one linear unit, Adam at 1e-4, MSE loss, MAE metric. Other backbones and two distribution heads
(DEX: softmax over ages 0..100 read out as an expectation; DLDL: the same trained against a
Gaussian label distribution plus an L1 term on the expectation) are options.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import keras
from keras import ops

from model.errors import WeightsFileError
from model.layers import AgeExpectation, Preprocess
from model.weights import (
    KERAS_IMAGENET_FILES,
    TORCHVISION_MOBILENET_V2_FILE,
    find_packaged_torchvision_weights,
    load_torchvision_mobilenet_v2,
    resolve_weights_file,
)

log = logging.getLogger(__name__)

NUM_AGES = 101  # ages 0..100 for the distribution heads; older labels are clipped to 100

BACKBONES = {
    # name: (keras.applications constructor name, preprocessing mode)
    "resnet50": ("ResNet50", "caffe"),
    "mobilenet_v2": ("MobileNetV2", "tf"),
    "mobilenet_v2_tv": ("MobileNetV2", "torch"),
    "efficientnet_b0": ("EfficientNetB0", "none"),
}
HEADS = ("regression", "dex", "dldl")
# The ages at which ``ModelConfig.threshold_loss`` scores P(age < L): legal ages and the usual
# policy threshold.
THRESHOLD_AGES = (18, 21, 25)


@dataclass(frozen=True)
class ModelConfig:
    backbone: str = "resnet50"
    head: str = "regression"
    input_size: int = 224
    dropout: float = 0.0
    learning_rate: float = 1e-4
    dldl_sigma: float = 2.0
    dldl_l1_weight: float = 0.05
    # DLDL only: weight of a term that scores the distribution's P(age < L) against the label,
    # for each L in THRESHOLD_AGES (binary cross-entropy, averaged over them), so training
    # weighs the decisions the audit takes at its legal ages and thresholds, not the mean only.
    threshold_loss: float = 0.0

    def __post_init__(self) -> None:
        if self.backbone not in BACKBONES:
            raise ValueError(f"backbone: unknown {self.backbone!r}; use one of {sorted(BACKBONES)}")
        if self.head not in HEADS:
            raise ValueError(f"head: unknown {self.head!r}; use one of {HEADS}")
        if not 32 <= self.input_size <= 512:
            raise ValueError(f"input_size: {self.input_size} is outside 32..512")
        if self.threshold_loss < 0:
            raise ValueError(f"threshold_loss: {self.threshold_loss} is negative")
        if self.threshold_loss and self.head != "dldl":
            raise ValueError("threshold_loss: only the dldl head has a distribution to score")


def _symmetric_padding_clone(base: keras.Model) -> keras.Model:
    """Clone a Keras MobileNetV2 so it computes exactly what torchvision's does.

    Keras pads stride-2 convolutions by one pixel at the bottom/right only ("same" padding and
    ``correct_pad``); torchvision pads one pixel on every side. The output sizes agree, the
    pixels differ by a one-pixel shift. BatchNorm epsilon is 1e-5 in torchvision, 1e-3 in Keras.
    """

    def clone_layer(layer):
        config = layer.get_config()
        if isinstance(layer, keras.layers.ZeroPadding2D):
            config["padding"] = ((1, 1), (1, 1))
        elif isinstance(layer, keras.layers.BatchNormalization):
            config["epsilon"] = 1e-5
        elif layer.name == "Conv1":
            config["padding"] = "valid"
        return layer.__class__.from_config(config)

    def call_layer(layer, *args, **kwargs):
        if layer.name == "Conv1":
            args = (keras.layers.ZeroPadding2D(((1, 1), (1, 1)), name="Conv1_pad")(args[0]),)
        return layer(*args, **kwargs)

    return keras.models.clone_model(base, clone_function=clone_layer, call_function=call_layer)


def build_backbone(name: str, *, input_size: int, weights=None) -> keras.Model:
    """A headless backbone taking preprocessed pixels; ``weights`` is a local file or None."""
    constructor, _ = BACKBONES[name]
    shape = (input_size, input_size, 3)
    base = getattr(keras.applications, constructor)(
        include_top=False, weights=None, input_shape=shape
    )
    if name == "mobilenet_v2_tv":
        base = _symmetric_padding_clone(base)
    path = resolve_weights_file(name, weights)
    if path is not None:
        if path.suffix == ".pth":
            load_torchvision_mobilenet_v2(base, path)
        else:
            try:
                base.load_weights(path)
            except Exception as exc:
                raise WeightsFileError(f"{path}: does not fit the {name} backbone ({exc})") from exc
        log.info("loaded %s weights from %s", name, path)
    return base


def convert_torchvision_mobilenet_v2(pth: Path | None, out: Path) -> Path:
    """Write torchvision's MobileNetV2 ImageNet weights as a Keras ``.weights.h5`` file."""
    pth = Path(pth) if pth else find_packaged_torchvision_weights()
    if not pth.is_file():
        raise WeightsFileError(f"{pth}: file not found; provide {TORCHVISION_MOBILENET_V2_FILE}")
    out = Path(out)
    if out.is_dir():
        out = out / KERAS_IMAGENET_FILES["mobilenet_v2_tv"]
    if not out.name.endswith(".weights.h5"):
        raise WeightsFileError(f"{out}: the output file name must end in .weights.h5")
    backbone = build_backbone("mobilenet_v2_tv", input_size=224, weights=None)
    load_torchvision_mobilenet_v2(backbone, pth)
    out.parent.mkdir(parents=True, exist_ok=True)
    backbone.save_weights(out)
    log.info("wrote %s from %s", out, pth)
    return out


def build_model(cfg: ModelConfig, *, backbone_weights=None) -> keras.Model:
    """The full model: raw RGB 0..255 in, ``{"age": (batch, 1)}`` (and ``"dist"``) out."""
    backbone = build_backbone(cfg.backbone, input_size=cfg.input_size, weights=backbone_weights)
    inputs = keras.Input((cfg.input_size, cfg.input_size, 3), name="image")
    x = Preprocess(BACKBONES[cfg.backbone][1], name="preprocess")(inputs)
    x = backbone(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    if cfg.dropout:
        x = keras.layers.Dropout(cfg.dropout, name="dropout")(x)
    if cfg.head == "regression":
        age = keras.layers.Dense(
            1, name="age", dtype="float32", bias_initializer=keras.initializers.Constant(33.0)
        )(x)
        outputs = {"age": age}
    else:
        logits = keras.layers.Dense(NUM_AGES, name="logits", dtype="float32")(x)
        dist = keras.layers.Softmax(name="dist", dtype="float32")(logits)
        outputs = {"age": AgeExpectation(name="age", dtype="float32")(dist), "dist": dist}
    return keras.Model(inputs, outputs, name=f"age_{cfg.backbone}_{cfg.head}")


def backbone_of(model: keras.Model) -> keras.Model:
    return next(layer for layer in model.layers if isinstance(layer, keras.Model))


def set_backbone_trainable(model: keras.Model, trainable: bool) -> None:
    """Freeze or unfreeze the backbone; BatchNorm layers always stay frozen (keras-io recipe)."""
    backbone = backbone_of(model)
    backbone.trainable = trainable
    if trainable:
        for layer in backbone.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.trainable = False


@keras.saving.register_keras_serializable(package="auditor_model")
class GaussianLabelLoss(keras.losses.Loss):
    """KL divergence between N(age, sigma) over 0..100 and the predicted distribution (DLDL).

    With ``threshold_weight``, plus that weight times the mean over ``THRESHOLD_AGES`` of the
    binary cross-entropy of P(age < L) (the distribution's mass below L) against the label's
    "age < L" (labels are completed years).
    """

    def __init__(
        self,
        sigma: float = 2.0,
        threshold_weight: float = 0.0,
        name: str = "gaussian_label_loss",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        self.sigma = sigma
        self.threshold_weight = threshold_weight

    def call(self, y_true, y_pred):
        ages = ops.arange(NUM_AGES, dtype="float32")
        y = ops.clip(ops.cast(ops.reshape(y_true, (-1, 1)), "float32"), 0.0, NUM_AGES - 1.0)
        target = ops.exp(-0.5 * ops.square((ages - y) / self.sigma))
        target = target / ops.sum(target, axis=-1, keepdims=True)
        y_pred = ops.clip(ops.cast(y_pred, "float32"), 1e-7, 1.0)
        kl = ops.sum(target * (ops.log(ops.clip(target, 1e-7, 1.0)) - ops.log(y_pred)), axis=-1)
        if not self.threshold_weight:
            return kl
        limits = ops.convert_to_tensor(THRESHOLD_AGES, dtype="float32")
        below = ops.cast(ages[:, None] < limits[None, :], "float32")  # (ages, limits)
        p_under = ops.matmul(y_pred, below)  # (batch, limits)
        under = ops.cast(y < limits[None, :], "float32")
        bce = ops.binary_crossentropy(under, p_under)  # clipped by Keras's epsilon
        return kl + self.threshold_weight * ops.mean(bce, axis=-1)

    def get_config(self):
        return {
            **super().get_config(),
            "sigma": self.sigma,
            "threshold_weight": self.threshold_weight,
        }


@keras.saving.register_keras_serializable(package="auditor_model")
class AgeClassLoss(keras.losses.Loss):
    """Cross-entropy against the age rounded to a class 0..100 (DEX)."""

    def __init__(self, name: str = "age_class_loss", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        y = ops.clip(ops.round(ops.reshape(ops.cast(y_true, "float32"), (-1,))), 0, NUM_AGES - 1)
        return keras.losses.sparse_categorical_crossentropy(ops.cast(y, "int32"), y_pred)


def compile_model(model: keras.Model, cfg: ModelConfig, learning_rate: float | None = None) -> None:
    """Adam, and per head: MSE on the age (regression), cross-entropy (DEX) or KL + L1 (DLDL)."""
    optimizer = keras.optimizers.Adam(learning_rate or cfg.learning_rate)
    if cfg.head == "regression":
        losses, weights = {"age": "mse"}, {"age": 1.0}
    elif cfg.head == "dex":
        losses, weights = {"age": "mae", "dist": AgeClassLoss()}, {"age": 0.0, "dist": 1.0}
    else:
        losses = {"age": "mae", "dist": GaussianLabelLoss(cfg.dldl_sigma, cfg.threshold_loss)}
        weights = {"age": cfg.dldl_l1_weight, "dist": 1.0}
    # One name for the age MAE whatever the head, so checkpoints and early stopping find it.
    mae = keras.metrics.MeanAbsoluteError(name="age_mae") if cfg.head == "regression" else "mae"
    model.compile(optimizer=optimizer, loss=losses, loss_weights=weights, metrics={"age": [mae]})
