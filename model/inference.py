"""The inference API the auditor uses: load a model directory once, estimate ages in batches."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model.data import resize_square
from model.errors import ModelDirectoryError
from model.runtime import PERFORMANCE_HINT, KerasRunner, file_hash, open_runner

log = logging.getLogger(__name__)

MODEL_FILE = "age_model.keras"
CARD_FILE = "model_card.json"


@dataclass(frozen=True)
class Estimates:
    """Ages in years and their spread (a standard deviation in years), one per face."""

    ages: np.ndarray
    spreads: np.ndarray


#: The card's sections, each a table when present.
CARD_SECTIONS = (
    "architecture",
    "preprocessing",
    "training",
    "engine",
    "metrics",
    "calibration",
    "checks",
)


def read_card(model_dir: str | Path) -> dict:
    """The model card of a model directory (a table; its sections tables, its version text)."""
    path = Path(model_dir) / CARD_FILE
    if not path.is_file():
        raise ModelDirectoryError(f"{path}: not found; a model directory needs {CARD_FILE}")
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelDirectoryError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(card, dict):
        raise ModelDirectoryError(f"{path}: not a model card (a JSON object is expected)")
    for section in CARD_SECTIONS:
        if section in card and card[section] is None:
            del card[section]  # null: the same as no such section
        elif section in card and not isinstance(card[section], dict):
            raise ModelDirectoryError(f"{path}: {section}: not a JSON object")
    if "version" in card and not isinstance(card["version"], str):
        raise ModelDirectoryError(f"{path}: version: not text")
    return card


def write_card(model_dir: Path, card: dict) -> None:
    """Replace a model directory's card in one step (a reader never sees half of it)."""
    tmp = model_dir / (CARD_FILE + ".tmp")
    tmp.write_text(json.dumps(card, indent=2), encoding="utf-8")
    tmp.replace(model_dir / CARD_FILE)


def load_keras_model(path: str | Path):
    """Load a ``.keras`` file with the package's custom layers; one clear error if it fails."""
    import keras

    import model.build  # noqa: F401  (registers the custom losses)
    import model.layers  # noqa: F401  (registers the custom layers)

    path = Path(path)
    if not path.is_file():
        raise ModelDirectoryError(f"{path}: model file not found")
    try:
        return keras.saving.load_model(path, compile=False)
    except Exception as exc:  # keras raises many kinds for a bad file
        raise ModelDirectoryError(f"{path}: not a loadable Keras model ({exc})") from exc


class AgeModel:
    """An age model ready to estimate: ``AgeModel.load(dir).estimate(crops)``.

    Crops are RGB uint8 arrays of any size; they are resized to the model's input size here.
    With ``tta`` the mirrored face is estimated too and both are combined: for a distribution
    head the spread is the standard deviation of the averaged distribution, for a regression
    head half the gap between the two estimates. ``engine`` names what runs the model:
    ``keras``, ``openvino-fp32`` or ``openvino-int8``.
    """

    def __init__(
        self, keras_model=None, card: dict | None = None, version: str | None = None, *, runner=None
    ):
        self.keras_model = keras_model  # None when another engine runs the model
        self.runner = runner if runner is not None else KerasRunner(keras_model)
        self.card = card or {}
        self.version = version or self.card.get("version", "unversioned")
        self.engine: str = self.runner.name
        self.input_size: int = self.runner.input_size
        self.has_distribution: bool = self.runner.has_distribution

    @classmethod
    def load(
        cls, model_dir: str | Path, engine: str = "auto", hint: str = PERFORMANCE_HINT
    ) -> AgeModel:
        """Load a model directory with ``engine``: ``auto`` (the card's engine when its files
        check out, else Keras with a warning), ``keras`` or ``openvino`` (an error when its
        files are missing or altered). ``hint`` (``throughput`` or ``latency``) is OpenVINO's
        performance hint."""
        model_dir = Path(model_dir)
        if not model_dir.is_dir():
            raise ModelDirectoryError(f"{model_dir}: model directory not found")
        card = read_card(model_dir)
        path = model_dir / MODEL_FILE
        runner = open_runner(model_dir, card, engine, hint)
        keras_model = load_keras_model(path) if runner is None else None
        if not path.is_file():
            raise ModelDirectoryError(f"{path}: model file not found")
        version = card.get("version")
        if version and not file_hash(path).startswith(version):
            raise ModelDirectoryError(
                f"{path}: content hash does not match version {version} in {CARD_FILE}"
            )
        loaded = cls(keras_model, card, version, runner=runner)
        log.info("loaded age model %s from %s (%s engine)", version, model_dir, loaded.engine)
        return loaded

    def prepare(self, crops) -> np.ndarray:
        """Resize a batch of RGB crops to the model's input: float32 (n, size, size, 3)."""
        size = self.input_size
        if isinstance(crops, np.ndarray) and crops.ndim == 4 and crops.shape[1:3] == (size, size):
            return crops.astype("float32", copy=False)
        batch = [resize_square(np.asarray(c, dtype=np.uint8), size) for c in crops]
        if not batch:
            return np.zeros((0, size, size, 3), dtype="float32")
        return np.stack(batch).astype("float32")

    def _run(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        out = self.runner(x)
        ages = np.asarray(out["age"], dtype="float64").reshape(-1)
        dist = np.asarray(out["dist"], dtype="float64") if self.has_distribution else None
        return ages, dist

    def estimate(self, crops, *, batch_size: int = 64, tta: bool = True) -> Estimates:
        x = self.prepare(crops)
        ages, spreads = [], []
        for start in range(0, len(x), batch_size):
            chunk = x[start : start + batch_size]
            n = len(chunk)
            if tta:  # the faces and their mirror images in one engine call
                age, dist = self._run(np.concatenate([chunk, chunk[:, :, ::-1, :]]))
                if dist is not None:
                    dist = (dist[:n] + dist[n:]) / 2
                    age = dist @ np.arange(dist.shape[1])
                    spread = _distribution_std(dist, age)
                else:
                    spread = np.abs(age[:n] - age[n:]) / 2
                    age = (age[:n] + age[n:]) / 2
            else:
                age, dist = self._run(chunk)
                spread = _distribution_std(dist, age) if dist is not None else np.zeros_like(age)
            ages.append(age)
            spreads.append(spread)
        if not ages:
            return Estimates(np.zeros(0), np.zeros(0))
        return Estimates(np.concatenate(ages), np.concatenate(spreads))


def _distribution_std(dist: np.ndarray, mean: np.ndarray) -> np.ndarray:
    grid = np.arange(dist.shape[1])
    return np.sqrt(np.maximum((dist * (grid[None, :] - mean[:, None]) ** 2).sum(axis=1), 0.0))
