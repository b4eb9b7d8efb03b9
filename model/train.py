"""Train an age model with checkpoints, resume, early stopping and a training log.

Training runs in up to two stages: ``head`` (backbone frozen, a higher learning rate; only when
the backbone starts from pretrained weights) and ``finetune`` (everything but BatchNorm
trainable). Each stage backs itself up every epoch; a run interrupted at any point continues
where it stopped when started again with the same output directory.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from model.build import ModelConfig, build_model, compile_model, set_backbone_trainable
from model.data import CameraInput, FaceLoader, SplitSpec, load_images, read_sets, tf_dataset
from model.errors import ModelError

log = logging.getLogger(__name__)

STATE_FILE = "train_state.json"
LOG_FILE = "training_log.csv"
BEST_FILE = "best.keras"
FRAMINGS = ("aligned", "audit")
AUGMENTS = ("basic", "camera")


@dataclass(frozen=True)
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: tuple[str, ...] = ()
    backbone_weights: str | None = None
    batch_size: int = 32
    epochs: int = 30
    head_epochs: int = 2
    head_learning_rate: float = 1e-3
    patience: int = 5
    lr_patience: int = 2
    max_train: int | None = None
    max_val: int | None = None
    seed: int = 0
    split: SplitSpec = field(default_factory=SplitSpec)
    # Start from the weights of an exported model (a directory or a .keras file) of the same
    # architecture instead of from backbone_weights; no head stage then.
    init_model: str | None = None
    # Weight each face by (faces at the median age / faces at its age) ** age_balance, clipped
    # to [1/4, 4] and scaled to mean 1: 0 trains on the faces as they come, 0.5 lends the rare
    # ages (teens, the elderly) more say.
    age_balance: float = 0.0
    # Weight each face, within its age band (AGE_BANDS), by (faces of the band's average group /
    # faces of its own group) ** group_balance, where groups are the set's ``race`` column; it
    # multiplies the age weight. 0 leaves the mix as it comes; 0.5 lends the groups a set has
    # few of (in UTKFace, most minors are of one group) more say. Faces without the column's
    # value keep weight 1 from it.
    group_balance: float = 0.0
    # How the training faces are framed: "aligned" takes the labelled set's images as they are;
    # "audit" has them cut by the caller's face stage (``train(load_faces=...)``), stored with
    # ``context`` times the crop's side around them, so box jitter can be applied.
    framing: str = "aligned"
    context: float = 1.0
    # With framing "audit": the share of faces the face stage first places in a synthetic
    # checkout scene (``auditor.audit.photos``) and finds there.
    scenes: float = 0.0
    # "basic": flips, small shifts, brightness/contrast, loss of resolution; "camera": box
    # jitter, colour casts, low light, grayscale, noise, blur, JPEG, occlusion (model.augment).
    augment: str = "basic"

    def __post_init__(self) -> None:
        if self.framing not in FRAMINGS:
            raise ValueError(f"framing: unknown {self.framing!r}; use one of {FRAMINGS}")
        if self.augment not in AUGMENTS:
            raise ValueError(f"augment: unknown {self.augment!r}; use one of {AUGMENTS}")
        if self.framing == "aligned" and self.context != 1.0:
            raise ValueError("context: aligned faces have none; use framing 'audit'")
        if self.context != 1.0 and self.augment != "camera":
            raise ValueError("context: only the camera augmentation cuts crops from context")
        if not 1.0 <= self.context <= 2.5:
            raise ValueError(f"context: {self.context} is outside 1..2.5")
        if not 0.0 <= self.scenes <= 1.0:
            raise ValueError(f"scenes: {self.scenes} is not a share between 0 and 1")
        if self.scenes and self.framing != "audit":
            raise ValueError("scenes: only the audit's face stage places faces in scenes")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict) -> TrainConfig:
        raw = dict(raw)
        raw["model"] = ModelConfig(**raw.get("model", {}))
        raw["split"] = SplitSpec(**raw.get("split", {}))
        raw["data"] = tuple(raw.get("data", ()))
        return cls(**raw)

    def tag(self) -> str:
        """A checkpoint name that carries the settings."""
        m = self.model
        tag = f"{m.backbone}-{m.head}-{m.input_size}px-lr{m.learning_rate:g}-bs{self.batch_size}"
        if self.init_model:
            tag += "-warm"
        if self.age_balance:
            tag += f"-bal{self.age_balance:g}"
        if self.group_balance:
            tag += f"-grp{self.group_balance:g}"
        if m.threshold_loss:
            tag += f"-thr{m.threshold_loss:g}"
        if self.framing != "aligned":
            tag += f"-{self.framing}{self.context:g}"
        if self.scenes:
            tag += f"-scenes{self.scenes:g}"
        if self.augment != "basic":
            tag += f"-{self.augment}"
        return tag

    @property
    def stored_side(self) -> int:
        """The side of the images as loaded: the model's input times the context."""
        return round(self.model.input_size * self.context)


def age_weights(ages, power: float) -> np.ndarray:
    """Per-face training weights that lend rare ages more say (see ``TrainConfig.age_balance``).

    Ages are counted in whole years; a face's weight is (count at the median age's count /
    count at its own age) ** power, clipped to [1/4, 4], then scaled so the weights average 1.
    """
    years = np.floor(np.asarray(ages, dtype="float64")).astype(int)
    if power == 0 or len(years) == 0:
        return np.ones(len(years), dtype="float32")
    values, counts = np.unique(years, return_counts=True)
    per_year = dict(zip(values, counts, strict=True))
    reference = float(np.median(counts))
    raw = np.array([(reference / per_year[y]) ** power for y in years])
    raw = np.clip(raw, 0.25, 4.0)
    return (raw / raw.mean()).astype("float32")


# Age bands within which the groups of ``group_balance`` are counted: a band must hold enough
# faces of each group for a ratio to mean something, yet keep minors apart from young adults.
AGE_BANDS = (0, 10, 18, 25, 40, 60)


def group_weights(ages, groups, power: float) -> np.ndarray:
    """Per-face weights that lend the groups an age band has few of more say.

    Within each band of ``AGE_BANDS`` a face weighs (mean count of the band's groups / count
    of its own group) ** power, clipped to [1/4, 4], then scaled so that the band's faces
    average 1: the balance moves weight between the groups of a band, never between bands
    (that is the age balance's part). Faces with no group (NA) weigh 1.
    """
    n = len(ages)
    if power == 0 or n == 0:
        return np.ones(n, dtype="float32")
    frame = pd.DataFrame(
        {
            "band": np.searchsorted(AGE_BANDS, np.asarray(ages, dtype="float64"), side="right"),
            "group": pd.array(groups, dtype="Int64"),
        }
    )
    known = frame["group"].notna().to_numpy()
    raw = np.ones(n)
    if known.any():
        counted = frame[known]
        per_cell = counted.groupby(["band", "group"])["group"].transform("size").to_numpy()
        cells = counted.groupby(["band", "group"]).size()
        per_band_mean = cells.groupby(level="band").mean()
        reference = counted["band"].map(per_band_mean).to_numpy()
        within = pd.Series(np.clip((reference / per_cell) ** power, 0.25, 4.0))
        band_mean = within.groupby(counted["band"].to_numpy()).transform("mean").to_numpy()
        raw[known] = within.to_numpy() / band_mean
    return (raw / raw.mean()).astype("float32")


def sample_weights(labels: pd.DataFrame, cfg: TrainConfig) -> np.ndarray | None:
    """The training faces' weights: the age balance times the group balance (None: all 1)."""
    if not cfg.age_balance and not cfg.group_balance:
        return None
    ages = labels["real_age"]
    weights = age_weights(ages, cfg.age_balance).astype("float64")
    if cfg.group_balance:
        if "race" not in labels.columns:
            raise ValueError("group_balance: the labelled sets have no race column to balance")
        weights *= group_weights(ages, labels["race"], cfg.group_balance)
    return (weights / weights.mean()).astype("float32")


@dataclass
class TrainResult:
    out: Path
    best_model: Path
    best_val_mae: float
    epochs_run: int
    seconds: float


def _use_mixed_precision_on_gpu() -> bool:
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        keras.mixed_precision.set_global_policy("mixed_float16")
        return True
    return False


def _subset(df: pd.DataFrame, limit: int | None, seed: int) -> pd.DataFrame:
    if limit is None or len(df) <= limit:
        return df
    return df.sample(limit, random_state=seed).reset_index(drop=True)


def _load_state(out: Path) -> dict:
    path = out / STATE_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def _save_state(out: Path, state: dict) -> None:
    tmp = out / (STATE_FILE + ".tmp")
    tmp.write_text(json.dumps(state, indent=2, default=str))
    tmp.replace(out / STATE_FILE)


def _best_so_far(out: Path) -> float | None:
    path = out / LOG_FILE
    if not path.is_file():
        return None
    try:
        history = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        return None
    if "val_age_mae" not in history or history["val_age_mae"].isna().all():
        return None
    return float(history["val_age_mae"].min())


def train(
    cfg: TrainConfig,
    out: str | Path,
    *,
    progress: bool = True,
    callbacks: Sequence = (),
    load_faces: FaceLoader | None = None,
) -> TrainResult:
    """Train (or resume training) into ``out``; returns where the best model is.

    ``callbacks`` are extra Keras callbacks, run after the run's own (backup, log, checkpoint).
    ``load_faces`` reads the faces when ``cfg.framing`` is "audit" (the caller's face stage).
    """
    if cfg.framing == "audit" and load_faces is None:
        raise ModelError(
            "framing 'audit' cuts the training faces with the audit's face stage: "
            "train with `auditor model train --framing audit`"
        )
    if load_faces is None:
        load_faces = load_images
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    state = _load_state(out)
    if state.get("config") and (changed := config_changes(state["config"], cfg)):
        raise ModelError(
            f"{out / STATE_FILE}: this folder holds a run with other settings "
            f"({'; '.join(changed)}); use another --out to start anew"
        )
    state.setdefault("config", cfg.to_dict())
    state.setdefault("stages_done", [])
    state.setdefault("seconds", 0.0)

    keras.utils.set_random_seed(cfg.seed)
    mixed = _use_mixed_precision_on_gpu()
    df = read_sets(cfg.data, cfg.split)
    grouped = sorted(df.loc[df["real_age"].isna(), "source"].unique())
    if grouped:
        raise ModelError(f"{', '.join(grouped)}: labelled by age group; training needs real_age")
    train_df = _subset(df[df["split"] == "train"].reset_index(drop=True), cfg.max_train, cfg.seed)
    val_df = _subset(df[df["split"] == "val"].reset_index(drop=True), cfg.max_val, cfg.seed)
    if train_df.empty or val_df.empty:
        raise ModelError("training needs faces in both the train and the val split")
    t0 = time.perf_counter()
    train_set = load_faces(train_df, cfg.stored_side)
    val_set = load_faces(val_df, cfg.stored_side)
    log.info(
        "loaded %d train / %d val faces (%d unreadable skipped) in %.0fs",
        len(train_set.labels),
        len(val_set.labels),
        len(train_set.skipped) + len(val_set.skipped),
        time.perf_counter() - t0,
    )
    targets = ("age",) if cfg.model.head == "regression" else ("age", "dist")
    camera = CameraInput(cfg.model.input_size, cfg.context) if cfg.augment == "camera" else None
    train_ds = tf_dataset(
        train_set.images,
        train_set.labels["real_age"],
        batch_size=cfg.batch_size,
        training=True,
        targets=targets,
        seed=cfg.seed,
        weights=sample_weights(train_set.labels, cfg),
        camera=camera,
    )
    val_ds = tf_dataset(
        val_set.images,
        val_set.labels["real_age"],
        batch_size=cfg.batch_size * 2,
        training=False,
        targets=targets,
        camera=camera,
    )

    pretrained = cfg.backbone_weights is not None and cfg.init_model is None
    stages = [("head", cfg.head_epochs)] if pretrained and cfg.head_epochs > 0 else []
    stages.append(("finetune", cfg.epochs))

    if cfg.init_model is not None:
        model = build_model(cfg.model)
        _warm_start(model, Path(cfg.init_model))
        # which model it started from, by version: the path may hold another one later
        state.setdefault("previous_version", _card_version(Path(cfg.init_model)))
    else:
        model = build_model(cfg.model, backbone_weights=cfg.backbone_weights)
    # Only a run that could start is recorded: bad data or weights leave the folder reusable.
    _save_state(out, state)
    for done in state["stages_done"]:
        model.load_weights(out / f"stage_{done}.weights.h5")
    epochs_run = 0
    for stage, epochs in stages:
        if stage in state["stages_done"]:
            continue
        set_backbone_trainable(model, stage != "head")
        lr = cfg.head_learning_rate if stage == "head" else cfg.model.learning_rate
        compile_model(model, cfg.model, learning_rate=lr)
        stage_callbacks = [*_callbacks(cfg, out, stage), *callbacks]
        try:
            history = model.fit(
                train_ds,
                validation_data=val_ds,
                epochs=epochs,
                verbose=1 if progress else 2,
                shuffle=False,  # tf_dataset shuffles itself
                callbacks=stage_callbacks,
            )
        finally:
            _close_logs(stage_callbacks)
        epochs_run += len(history.epoch)
        model.save_weights(out / f"stage_{stage}.weights.h5")
        state = _load_state(out)  # the epoch timer (_StageMarker) has added the seconds
        state["stages_done"].append(stage)
        state["mixed_precision"] = mixed
        _save_state(out, state)
    plot_training_log(out)
    best = _best_so_far(out)
    return TrainResult(
        out,
        out / BEST_FILE,
        best if best is not None else float("nan"),
        epochs_run,
        float(state["seconds"]),
    )


_PATH_SETTINGS = ("data", "backbone_weights", "init_model")


def config_changes(saved: dict, asked: TrainConfig) -> list[str]:
    """The settings in which ``asked`` differs from a run's ``saved`` config, as
    ``name: then -> now``; a path given another way (relative, absolute) is the same path."""

    def flat(config: dict) -> dict:
        values: dict[str, object] = {}
        for key, value in config.items():
            if isinstance(value, dict):
                values |= {f"{key}.{k}": v for k, v in value.items()}
            elif key in _PATH_SETTINGS and value is not None:
                paths = value if isinstance(value, list | tuple) else [value]
                values[key] = tuple(str(Path(p).resolve()) for p in paths)
            else:
                values[key] = value
        return values

    then, now = flat(TrainConfig.from_dict(saved).to_dict()), flat(asked.to_dict())
    return [
        f"{key}: {then.get(key)!r} -> {now.get(key)!r}"
        for key in sorted(then.keys() | now.keys())
        if then.get(key) != now.get(key)
    ]


def _card_version(source: Path) -> str | None:
    """The version on the card of the model directory ``source`` (None without one)."""
    card = source / "model_card.json"
    try:
        return str(json.loads(card.read_text(encoding="utf-8"))["version"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _warm_start(model, source: Path) -> None:
    """Copy the weights of an exported model (directory or .keras file) into ``model``."""
    from model.inference import MODEL_FILE, load_keras_model

    path = source / MODEL_FILE if source.is_dir() else source
    donor = load_keras_model(path)
    try:
        model.set_weights(donor.get_weights())
    except ValueError as exc:
        raise ModelError(
            f"{path}: its architecture differs from this run's ({exc}); warm-start from a model "
            "with the same backbone, head and input size"
        ) from exc
    log.info("warm start from %s", path)


def _close_logs(callbacks: Sequence) -> None:
    """CSVLogger closes its file only when training ends normally; close it on any exit."""
    for callback in callbacks:
        handle = getattr(callback, "csv_file", None)
        if isinstance(callback, keras.callbacks.CSVLogger) and handle and not handle.closed:
            handle.close()


def _callbacks(cfg: TrainConfig, out: Path, stage: str) -> list:
    best = _best_so_far(out)
    checkpoint_kwargs = {"initial_value_threshold": best} if best is not None else {}
    callbacks = [
        keras.callbacks.BackupAndRestore(str(out / "backup" / stage), delete_checkpoint=True),
        keras.callbacks.CSVLogger(str(out / LOG_FILE), append=True),
        keras.callbacks.ModelCheckpoint(
            str(out / BEST_FILE),
            monitor="val_age_mae",
            mode="min",
            save_best_only=True,
            **checkpoint_kwargs,
        ),
        _StageMarker(out, stage),
    ]
    if stage == "finetune":
        callbacks += [
            keras.callbacks.EarlyStopping(
                monitor="val_age_mae",
                mode="min",
                patience=cfg.patience,
                restore_best_weights=True,
            ),
            keras.callbacks.ReduceLROnPlateau(
                monitor="val_age_mae",
                mode="min",
                factor=0.3,
                patience=cfg.lr_patience,
                min_lr=1e-7,
            ),
        ]
    return callbacks


class _StageMarker(keras.callbacks.Callback):
    """Records which stage each row of the training log belongs to (CSVLogger owns the log),
    and adds each finished epoch's time to the run's state, so an interrupted run counts it."""

    def __init__(self, out: Path, stage: str):
        super().__init__()
        self.out = out
        self.path = out / "training_stages.csv"
        self.stage = stage
        self.started = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        with open(self.path, "a") as fh:
            fh.write(f"{self.stage},{epoch},{time.time():.0f}\n")
        state = _load_state(self.out)
        state["seconds"] = float(state.get("seconds", 0.0)) + time.perf_counter() - self.started
        _save_state(self.out, state)


def plot_training_log(out: Path) -> Path | None:
    """Loss and MAE curves of the training log as ``training_curves.svg``."""
    path = out / LOG_FILE
    if not path.is_file():
        return None
    history = pd.read_csv(path)
    if history.empty:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    try:
        x = np.arange(1, len(history) + 1)
        for ax, metric in zip(axes, ("loss", "age_mae"), strict=True):
            for prefix, style in (("", "-"), ("val_", "--")):
                column = prefix + metric
                if column in history:
                    ax.plot(x, history[column], style, label=column)
            ax.set_xlabel("epoch")
            ax.set_title(metric)
            ax.legend()
        fig.tight_layout()
        target = out / "training_curves.svg"
        fig.savefig(target)
    finally:
        plt.close(fig)
    return target


def with_overrides(cfg: TrainConfig, **model_overrides) -> TrainConfig:
    return replace(cfg, model=replace(cfg.model, **model_overrides))
