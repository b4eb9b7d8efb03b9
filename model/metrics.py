"""Pure measurements of age estimates: tables in, tables out, no model and no files."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

#: Age bands reported everywhere (inclusive bounds); "10-17" are the minors an audit must catch.
AGE_BANDS: tuple[tuple[str, int, int], ...] = (
    ("0-9", 0, 9),
    ("10-17", 10, 17),
    ("18-20", 18, 20),
    ("21-25", 21, 25),
    ("26-40", 26, 40),
    ("41-60", 41, 60),
    ("61+", 61, 10_000),
)
MINORS = (10, 17)
ADULTS_FROM = 25
THRESHOLDS = tuple(range(16, 31))
GENDERS = {0: "male", 1: "female"}
RACES = {0: "White", 1: "Black", 2: "Asian", 3: "Indian", 4: "Others"}


def age_band(age: float) -> str:
    for name, low, high in AGE_BANDS:
        if low <= age < high + 1:
            return name
    raise ValueError(f"age {age} is negative")


def _summary(true: np.ndarray, pred: np.ndarray) -> dict:
    if len(true) == 0:
        return {"n": 0, "mae": None, "bias": None}
    error = pred - true
    return {"n": int(len(true)), "mae": float(np.abs(error).mean()), "bias": float(error.mean())}


def grouped(
    true: np.ndarray, pred: np.ndarray, groups: pd.Series | np.ndarray | Sequence[str]
) -> dict:
    """MAE and bias (predicted minus true) per group label, in order of first appearance."""
    groups = pd.Series(np.asarray(groups))
    return {
        str(name): _summary(true[mask], pred[mask])
        for name in groups.dropna().unique()
        for mask in [(groups == name).to_numpy()]
    }


def flag_rates(true: np.ndarray, pred: np.ndarray, thresholds=THRESHOLDS) -> list[dict]:
    """For each threshold T: the share of minors (10-17) and of adults 25+ estimated under T."""
    minors = pred[(true >= MINORS[0]) & (true <= MINORS[1])]
    adults = pred[true >= ADULTS_FROM]
    return [
        {
            "threshold": int(t),
            "minors_flagged": _share(minors < t),
            "adults_flagged": _share(adults < t),
        }
        for t in thresholds
    ]


def _share(mask: np.ndarray) -> float | None:
    return float(mask.mean()) if len(mask) else None


def operating_point(true: np.ndarray, pred: np.ndarray, adults_flagged: float = 0.10) -> dict:
    """The threshold that flags ``adults_flagged`` of adults 25+, and the minors it catches."""
    minors = pred[(true >= MINORS[0]) & (true <= MINORS[1])]
    adults = pred[true >= ADULTS_FROM]
    if not len(adults) or not len(minors):
        return {"adults_flagged": adults_flagged, "threshold": None, "minors_flagged": None}
    threshold = float(np.quantile(adults, adults_flagged, method="inverted_cdf"))
    # "flagged" means strictly under the threshold; nudge it so the quantile face itself counts.
    threshold = math.nextafter(threshold, math.inf)
    return {
        "adults_flagged": float((adults < threshold).mean()),
        "threshold": threshold,
        "minors_flagged": float((minors < threshold).mean()),
    }


def evaluate_predictions(labels: pd.DataFrame, pred: np.ndarray) -> dict:
    """Every figure of ``metrics.json`` from true labels (``real_age``, optional ``gender``,
    ``race``) and predicted ages."""
    true = labels["real_age"].to_numpy(dtype=float)
    pred = np.asarray(pred, dtype=float).reshape(-1)
    if len(true) != len(pred):
        raise ValueError(f"{len(true)} labels but {len(pred)} predictions")
    metrics = _summary(true, pred)
    metrics["rmse"] = float(np.sqrt(np.mean((pred - true) ** 2))) if len(true) else None
    bands = [age_band(a) for a in true]
    by_band = grouped(true, pred, bands)
    metrics["by_age_band"] = {
        name: by_band.get(name, _summary(true[:0], pred[:0])) for name, _, _ in AGE_BANDS
    }
    for column, names in (("gender", GENDERS), ("race", RACES)):
        if column in labels:
            values = labels[column].map(
                lambda v, names=names: names.get(v) if pd.notna(v) else None
            )
            metrics[f"by_{column}"] = grouped(true, pred, values.to_numpy(dtype=object))
    metrics["thresholds"] = flag_rates(true, pred)
    metrics["operating_point"] = operating_point(true, pred)
    return metrics


def group_bounds(group: str) -> tuple[int, int]:
    """The inclusive ages of an age-group label: ``10-19`` is (10, 19), ``70+`` is (70, 200)."""
    text = str(group).strip()
    if text.endswith("+") and text[:-1].isdigit():
        return int(text[:-1]), 200
    low, sep, high = text.partition("-")
    if sep and low.isdigit() and high.isdigit() and int(low) <= int(high):
        return int(low), int(high)
    raise ValueError(f"{group!r} is not an age group such as 10-19 or 70+")


def by_age_group(groups, pred, thresholds=THRESHOLDS) -> list[dict]:
    """Per age group (youngest first): faces, median estimate, and the share estimated under
    each threshold."""
    table = pd.DataFrame({"group": np.asarray(groups, dtype=object), "pred": np.asarray(pred)})
    rows = []
    for group in sorted(table["group"].unique(), key=group_bounds):
        estimates = table.loc[table["group"] == group, "pred"].to_numpy(dtype=float)
        rows.append(
            {
                "group": str(group),
                "n": int(len(estimates)),
                "median": float(np.median(estimates)),
                "under": {str(t): float((estimates < t).mean()) for t in thresholds},
            }
        )
    return rows


def robustness_row(true, pred, threshold: int = ADULTS_FROM) -> dict:
    """MAE, bias and the share of minors 10-17 estimated under ``threshold``."""
    true = np.asarray(true, dtype=float)
    pred = np.asarray(pred, dtype=float)
    minors = pred[(true >= MINORS[0]) & (true <= MINORS[1])]
    return {**_summary(true, pred), "minors_under": _share(minors < threshold)}
