"""Evaluate an age model on the held-out split: ``metrics.json``, predictions and an HTML page."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from model.charts import figure, to_svg
from model.data import DEFAULT_SPLIT, SPLITS, SplitSpec, load_images, read_sets
from model.errors import ModelError
from model.html import render
from model.inference import AgeModel, load_keras_model
from model.metrics import AGE_BANDS, evaluate_predictions

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
) -> tuple[pd.DataFrame, dict]:
    """Predict every face of one split; returns the labels with ``predicted_age`` and counts."""
    if split not in (*SPLITS, "all"):
        raise ModelError(f"split: unknown {split!r}; use one of {', '.join((*SPLITS, 'all'))}")
    df = read_sets(data, spec)
    if split != "all":
        df = df[df["split"] == split].reset_index(drop=True)
    if limit is not None:
        df = df.head(limit)
    if df.empty:
        raise ModelError(f"no faces in the {split} split of {', '.join(map(str, data))}")
    loaded = load_images(df, age_model.input_size)
    estimates = age_model.estimate(loaded.images)
    labels = loaded.labels.copy()
    labels["predicted_age"] = estimates.ages
    labels["spread"] = estimates.spreads
    return labels, {"listed": len(df), "unreadable_skipped": len(loaded.skipped)}


def evaluate(
    model_path: str | Path,
    data: Sequence[str | Path],
    out: str | Path,
    *,
    split: str = "test",
    spec: SplitSpec | None = None,
    limit: int | None = None,
    engine: str = "keras",
) -> dict:
    """Write ``metrics.json``, ``predictions.csv`` and ``evaluation.html`` into ``out``.

    The split rule is ``spec``, else the one in the model card, else the default.
    """
    age_model = load_any(model_path, engine)
    if spec is None:
        spec = SplitSpec(**age_model.card.get("training", {}).get("split_spec", {}))
    labels, counts = predict_split(age_model, data, split=split, spec=spec, limit=limit)
    metrics = evaluate_predictions(labels, labels["predicted_age"].to_numpy())
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
    render(
        "evaluate.html",
        out / "evaluation.html",
        metrics=metrics,
        charts=evaluation_charts(labels, metrics),
        bands=[b[0] for b in AGE_BANDS],
    )
    log.info("test MAE %.3f on %d faces -> %s", metrics["mae"], metrics["n"], out)
    return metrics


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
    return charts
