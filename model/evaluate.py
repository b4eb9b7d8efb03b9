"""Evaluate an age model on the held-out split: ``metrics.json``, predictions and an HTML page;
fit its calibration (``model.calibration``) on the validation split."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from model.augment import PERTURBATIONS, perturb
from model.calibration import (
    REPORT_LIMITS,
    Calibration,
    fit_calibration,
    log_loss,
    measure,
    read_calibration,
)
from model.charts import figure, to_svg
from model.data import (
    DEFAULT_SPLIT,
    SPLITS,
    FaceLoader,
    LoadedImages,
    SplitSpec,
    load_images,
    read_sets,
)
from model.errors import ModelError
from model.html import render
from model.inference import AgeModel, load_keras_model
from model.metrics import (
    ADULTS_FROM,
    AGE_BANDS,
    by_age_group,
    evaluate_predictions,
    robustness_row,
)

log = logging.getLogger(__name__)


def load_any(model_path: str | Path, engine: str = "keras") -> AgeModel:
    """A model directory (with its card) or a bare ``.keras`` file, e.g. a training checkpoint.

    A directory runs on ``engine``; Keras by default, which the card's metrics describe.
    """
    path = Path(model_path)
    if path.is_dir():
        return AgeModel.load(path, engine=engine)
    return AgeModel(load_keras_model(path), version=path.name)


def predict_split(
    age_model: AgeModel,
    data: Sequence[str | Path],
    *,
    split: str = "test",
    spec: SplitSpec = DEFAULT_SPLIT,
    limit: int | None = None,
    load_faces: FaceLoader | None = None,
) -> tuple[pd.DataFrame, dict]:
    """Predict every face of one split; returns the labels with ``predicted_age`` and counts.

    ``load_faces`` reads the faces (e.g. through a face stage that finds and cuts them); by
    default the images are taken as aligned crops.
    """
    if split not in (*SPLITS, "all"):
        raise ModelError(f"split: unknown {split!r}; use one of {', '.join((*SPLITS, 'all'))}")
    df = read_sets(data, spec)
    if split != "all":
        df = df[df["split"] == split].reset_index(drop=True)
    if limit is not None:
        df = df.head(limit)
    if df.empty:
        raise ModelError(f"no faces in the {split} split of {', '.join(map(str, data))}")
    loaded = (load_faces or load_images)(df, age_model.input_size)
    estimates = age_model.estimate(loaded.images)
    labels = loaded.labels.copy()
    labels["predicted_age"] = estimates.ages
    labels["spread"] = estimates.spreads
    counts = {"listed": len(df), "unreadable_skipped": len(loaded.skipped)}
    if load_faces is not None:
        counts["faces_not_found"] = len(loaded.not_found)
    return labels, counts


def evaluate(
    model_path: str | Path,
    data: Sequence[str | Path],
    out: str | Path,
    *,
    split: str = "test",
    spec: SplitSpec | None = None,
    limit: int | None = None,
    engine: str = "keras",
    load_faces: FaceLoader | None = None,
    calibration: Calibration | None = None,
) -> dict:
    """Write ``metrics.json``, ``predictions.csv`` and ``evaluation.html`` into ``out``.

    The split rule is ``spec``, else the one in the model card, else the default. A set
    labelled by age group is measured per group (``by_age_group``: median estimate, share
    under each threshold) and gets no HTML page. The probabilities of being under 18, 21 and
    25 are measured with ``calibration``, else the card's (``calibration`` in the metrics).
    """
    age_model = load_any(model_path, engine)
    if spec is None:
        spec = split_spec(age_model)
    labels, counts = predict_split(
        age_model, data, split=split, spec=spec, limit=limit, load_faces=load_faces
    )
    pred = labels["predicted_age"].to_numpy()
    if labels["real_age"].isna().all():
        metrics = {"n": len(labels), "by_age_group": by_age_group(labels["age_group"], pred)}
    else:
        metrics = evaluate_predictions(labels, pred)
        if calibration is None:
            calibration = read_calibration(age_model.card)
        metrics["calibration"] = calibration_figures(calibration, labels)
    metrics.update(
        model=str(model_path),
        model_version=age_model.version,
        engine=age_model.engine,
        data=[str(d) for d in data],
        split=split,
        **counts,
    )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    labels.drop(columns=["path"]).to_csv(out / "predictions.csv", index=False)
    if "by_age_group" in metrics:
        log.info("%d faces measured by age group -> %s", metrics["n"], out)
        return metrics
    render(
        "evaluate.html",
        out / "evaluation.html",
        metrics=metrics,
        charts=evaluation_charts(labels, metrics),
        bands=[b[0] for b in AGE_BANDS],
    )
    log.info("test MAE %.3f on %d faces -> %s", metrics["mae"], metrics["n"], out)
    return metrics


def calibration_figures(calibration: Calibration, labels: pd.DataFrame) -> dict:
    """The calibration and how it holds on these predictions (``model.calibration.measure``):
    ECE and reliability at 18, 21 and 25, calibrated and not, and the log losses."""
    known = labels[labels["real_age"].notna()]
    figures = measure(
        calibration,
        known["predicted_age"].to_numpy(float),
        known["spread"].to_numpy(float),
        known["real_age"].to_numpy(float),
    )
    return {**calibration.to_dict(), "n": len(known), **figures}


def fit_on_split(
    age_model: AgeModel,
    data: Sequence[str | Path],
    *,
    spec: SplitSpec,
    split: str = "val",
    limit: int | None = None,
    load_faces: FaceLoader | None = None,
) -> tuple[Calibration, dict]:
    """The calibration fitted on one split's predictions (the validation split: the test
    split measures it), and the faces and log losses it was fitted on."""
    labels, counts = predict_split(
        age_model, data, split=split, spec=spec, limit=limit, load_faces=load_faces
    )
    labels = labels[labels["real_age"].notna()]
    if labels.empty:
        sets = ", ".join(map(str, data))
        raise ModelError(f"no faces with an age in the {split} split of {sets}")
    ages, spreads, true = (
        labels[c].to_numpy(float) for c in ("predicted_age", "spread", "real_age")
    )
    fitted = fit_calibration(ages, spreads, true)
    identity = Calibration(floor=fitted.floor)
    fit = {
        "n": len(labels),
        **counts,
        "log_loss": log_loss(fitted, ages, spreads, true),
        "log_loss_uncalibrated": log_loss(identity, ages, spreads, true),
    }
    log.info("calibration fitted on %d %s faces: %s", len(labels), split, fitted)
    return fitted, fit


def split_spec(age_model: AgeModel) -> SplitSpec:
    """The split rule a model was trained with (its card), else the default."""
    return SplitSpec(**age_model.card.get("training", {}).get("split_spec", {}))


def robustness(
    age_model: AgeModel,
    faces: LoadedImages,
    context: float,
    *,
    perturbations: Sequence[str] = PERTURBATIONS,
    threshold: int = ADULTS_FROM,
) -> list[dict]:
    """MAE, bias and share of minors under ``threshold`` for each perturbation, and each
    one's change against clean: faces stored with ``context`` around the crop."""
    true = faces.labels["real_age"].to_numpy(dtype=float)
    rows = []
    for name in perturbations:
        crops = perturb(faces.images, context, name, age_model.input_size)
        row = {"perturbation": name, **robustness_row(true, age_model.estimate(crops).ages)}
        rows.append(row)
    clean = next((r for r in rows if r["perturbation"] == "clean"), None)
    for row in rows:
        for key in ("mae", "bias", "minors_under"):
            if clean is not None and None not in (row[key], clean[key]):
                row[f"{key}_change"] = row[key] - clean[key]
            else:
                row[f"{key}_change"] = None
    return rows


def evaluate_robustness(
    model_path: str | Path,
    data: Sequence[str | Path],
    out: str | Path,
    *,
    load_faces: FaceLoader,
    context: float,
    split: str = "test",
    min_age: float = 10,
    limit: int | None = None,
    engine: str = "keras",
) -> dict:
    """The robustness table of ``robustness`` on one split's faces aged ``min_age`` and up,
    read by ``load_faces`` with ``context``; written to ``robustness.json`` in ``out``."""
    age_model = load_any(model_path, engine)
    df = read_sets(data, split_spec(age_model))
    if split != "all":
        df = df[df["split"] == split]
    df = df[df["real_age"] >= min_age].reset_index(drop=True)
    if limit is not None:
        df = df.head(limit)
    if df.empty:
        raise ModelError(
            f"no faces aged {min_age:g}+ in the {split} split of {', '.join(map(str, data))}"
        )
    side = round(age_model.input_size * context)
    faces = load_faces(df, side)
    result = {
        "model_version": age_model.version,
        "engine": age_model.engine,
        "data": [str(d) for d in data],
        "split": split,
        "min_age": min_age,
        "faces": len(faces.labels),
        "faces_not_found": len(faces.not_found),
        "unreadable_skipped": len(faces.skipped),
        "minors_under": ADULTS_FROM,
        "table": robustness(age_model, faces, context),
    }
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "robustness.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    return result


def evaluation_charts(labels: pd.DataFrame, metrics: dict) -> dict[str, str]:
    true = labels["real_age"].to_numpy(float)
    pred = labels["predicted_age"].to_numpy(float)
    charts = {}

    fig, ax = figure(5.5, 5)
    ax.scatter(true, pred, s=4, alpha=0.35)
    top = max(true.max(), pred.max()) + 2
    ax.plot([0, top], [0, top], "k--", lw=1)
    ax.set(xlabel="true age", ylabel="estimated age", title="Estimated vs true age")
    charts["scatter"] = to_svg(fig)

    fig, ax = figure(6.5, 3.5)
    per_year = (
        pd.DataFrame({"age": true.round(), "err": np.abs(pred - true)}).groupby("age")["err"].mean()
    )
    ax.plot(per_year.index, per_year.to_numpy(), lw=1.2)
    ax.set(xlabel="true age", ylabel="mean absolute error (years)", title="Error by age")
    charts["error_by_age"] = to_svg(fig)

    fig, ax = figure(6.5, 3.5)
    table = pd.DataFrame(metrics["thresholds"])
    ax.plot(table["threshold"], table["minors_flagged"], "o-", label="minors 10-17 flagged")
    ax.plot(table["threshold"], table["adults_flagged"], "s-", label="adults 25+ flagged")
    ax.set(xlabel="threshold (years)", ylabel="share", title="What a threshold flags", ylim=(0, 1))
    ax.legend()
    charts["thresholds"] = to_svg(fig)

    if "calibration" in metrics:
        charts["reliability"] = reliability_chart(metrics["calibration"])
    return charts


def reliability_chart(figures: dict) -> str:
    """Observed share against predicted probability of being under each reported age, per
    bin: as estimated and, when the calibration is not the identity, calibrated."""
    series = [("_uncalibrated", "as estimated", "s", "tab:grey")]
    if (figures["bias"], figures["scale"]) != (0.0, 1.0):
        series.append(("", "calibrated", "o", "tab:blue"))
    fig, axes = figure(3.2 * len(REPORT_LIMITS), 3.4, ncols=len(REPORT_LIMITS), sharey=True)
    for ax, limit in zip(axes, map(str, REPORT_LIMITS), strict=True):
        ax.plot([0, 1], [0, 1], "k--", lw=1)
        for suffix, label, marker, colour in series:
            rows = [r for r in figures[f"reliability{suffix}"][limit] if r["n"]]
            ece = figures[f"ece{suffix}"][limit]
            ax.plot(
                [r["mean_predicted"] for r in rows],
                [r["observed"] for r in rows],
                f"{marker}-",
                color=colour,
                ms=4,
                lw=1.2,
                label=f"{label} (ECE {ece:.3f})",
            )
        ax.set(xlim=(0, 1), ylim=(0, 1), title=f"P(true age < {limit})", xlabel="predicted")
        ax.legend(fontsize=7, loc="upper left")
    axes[0].set_ylabel("observed share")
    return to_svg(fig)
