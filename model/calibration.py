"""Calibrated probabilities that a face is under an age, from the model's age and spread.

Per face, with the model's estimate ``age`` and its ``spread`` (a standard deviation in years):

    sd = scale * max(spread, floor)
    P(true age < L) = Phi((L - (age - bias)) / sd)

``bias`` and ``scale`` are fitted on the validation split by minimising the mean log loss of
the events "true age < L" for L = 16..30; ``floor`` keeps a confident face from a probability
of exactly 0 or 1. How well the probabilities hold is measured on the test split: a
reliability table (equal-width bins of the predicted probability: faces, mean prediction,
observed share) and its expected calibration error (ECE, the bins' gaps weighted by faces).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from model.errors import ModelDirectoryError

METHOD = "gaussian"
FORMULA = "P(true age < L) = Phi((L - (age - bias)) / (scale * max(spread, floor)))"
#: The ages L whose events the fit scores.
FIT_LIMITS = tuple(range(16, 31))
#: The ages the card reports: the legal ages 18 and 21, and a policy threshold of 25.
REPORT_LIMITS = (18, 21, 25)
CLIP = 1e-6

_erfc = np.frompyfunc(math.erfc, 1, 1)


def normal_cdf(z) -> np.ndarray:
    """The standard normal CDF, elementwise (exact in the tails, through ``math.erfc``)."""
    z = np.asarray(z, dtype=float)
    return 0.5 * np.asarray(_erfc(-z / math.sqrt(2)), dtype=float)


@dataclass(frozen=True)
class Calibration:
    """How an estimate (age, spread) becomes P(true age < L); the identity by default."""

    bias: float = 0.0
    scale: float = 1.0
    floor: float = 1.0

    def __post_init__(self) -> None:
        for name in ("bias", "scale", "floor"):
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"calibration {name}: {getattr(self, name)} is not a number")
        if self.scale <= 0:
            raise ValueError(f"calibration scale: {self.scale} is not positive")
        if self.floor <= 0:
            raise ValueError(f"calibration floor: {self.floor} is not positive")

    def sd(self, spreads) -> np.ndarray:
        """The standard deviation in years of each face's true age."""
        return self.scale * np.maximum(np.asarray(spreads, dtype=float), self.floor)

    def p_under(self, ages, spreads, limit) -> np.ndarray:
        """P(true age < ``limit``) for each face; ``limit`` may be an array that broadcasts."""
        corrected = np.asarray(ages, dtype=float) - self.bias
        return normal_cdf((np.asarray(limit, dtype=float) - corrected) / self.sd(spreads))

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> Calibration:
        """From a dict holding ``bias``, ``scale`` and ``floor`` (missing: the default; other
        keys are ignored, so a card's whole ``calibration`` section can be passed)."""
        return cls(**{k: float(values[k]) for k in ("bias", "scale", "floor") if k in values})


def read_calibration(card: dict) -> Calibration:
    """The calibration recorded in a model card; the identity when the card has none."""
    section = card.get("calibration")
    if section is None:
        return Calibration()
    try:
        if section.get("method", METHOD) != METHOD:
            raise ValueError(f"method {section['method']!r} is not {METHOD!r}")
        return Calibration.from_dict(section)
    except (AttributeError, TypeError, ValueError) as exc:
        raise ModelDirectoryError(f"model card {card.get('version', '')}: {exc}") from exc


def _arrays(ages, spreads, true_ages) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    arrays = [np.asarray(a, dtype=float).reshape(-1) for a in (ages, spreads, true_ages)]
    if len({len(a) for a in arrays}) != 1:
        raise ValueError(
            f"{len(arrays[0])} ages, {len(arrays[1])} spreads and {len(arrays[2])} true ages"
        )
    if len(arrays[0]) == 0:
        raise ValueError("no faces to calibrate on")
    if not all(np.isfinite(a).all() for a in arrays):
        raise ValueError("ages, spreads and true ages must all be numbers")
    return arrays[0], arrays[1], arrays[2]


def log_loss(
    calibration: Calibration, ages, spreads, true_ages, limits: Sequence[float] = FIT_LIMITS
) -> float:
    """Mean log loss of the events "true age < L" over every face and limit (probabilities
    clipped to [1e-6, 1 - 1e-6])."""
    ages, spreads, true_ages = _arrays(ages, spreads, true_ages)
    return _log_loss(calibration, ages, spreads, true_ages, np.asarray(limits, dtype=float))


def _log_loss(calibration, ages, spreads, true_ages, limits) -> float:
    p = calibration.p_under(ages[:, None], spreads[:, None], limits[None, :])
    p = np.clip(p, CLIP, 1 - CLIP)
    under = true_ages[:, None] < limits[None, :]
    return float(-np.where(under, np.log(p), np.log1p(-p)).mean())


# The search: a coarse grid over bias (years) and log(scale), then a pattern search from its
# best point, halving its steps until they are below these; within these bounds.
_GRID_BIAS = np.arange(-8.0, 8.5, 1.0)
_GRID_LOG_SCALE = np.log([0.5, 0.7, 1.0, 1.4, 2.0, 2.8, 4.0])
_BIAS_BOUNDS = (-30.0, 30.0)
_LOG_SCALE_BOUNDS = (math.log(0.05), math.log(20.0))
_TOLERANCE = (1e-3, 1e-4)


def fit_calibration(
    ages,
    spreads,
    true_ages,
    limits: Sequence[float] = FIT_LIMITS,
    *,
    floor: float = 1.0,
) -> Calibration:
    """The bias and scale that minimise :func:`log_loss` on these faces (deterministic)."""
    ages, spreads, true_ages = _arrays(ages, spreads, true_ages)
    grid = np.asarray(limits, dtype=float)

    def loss(bias: float, log_scale: float) -> float:
        calibration = Calibration(bias, math.exp(log_scale), floor)
        return _log_loss(calibration, ages, spreads, true_ages, grid)

    best = min(
        ((loss(b, s), float(b), float(s)) for b in _GRID_BIAS for s in _GRID_LOG_SCALE),
        key=lambda t: t[0],
    )
    value, bias, log_scale = best
    steps = [0.5, 0.17]
    while steps[0] > _TOLERANCE[0] or steps[1] > _TOLERANCE[1]:
        moves = [(steps[0], 0.0), (-steps[0], 0.0), (0.0, steps[1]), (0.0, -steps[1])]
        tried = [
            (loss(b, s), b, s)
            for b, s in ((bias + db, log_scale + ds) for db, ds in moves)
            if _BIAS_BOUNDS[0] <= b <= _BIAS_BOUNDS[1]
            and _LOG_SCALE_BOUNDS[0] <= s <= _LOG_SCALE_BOUNDS[1]
        ]
        better = min(tried, key=lambda t: t[0], default=None)
        if better is not None and better[0] < value:
            value, bias, log_scale = better
        else:
            steps = [steps[0] / 2, steps[1] / 2]
    return Calibration(bias, math.exp(log_scale), floor)


def reliability(p, outcome, bins: int = 10) -> list[dict]:
    """Per equal-width bin of the predicted probability ``p``: its bounds, the faces in it
    (``n``), their mean prediction and the observed share of ``outcome`` (None when empty)."""
    p, outcome = _probabilities(p, outcome)
    index = _bin_index(p, bins)
    rows = []
    for b in range(bins):
        inside = index == b
        n = int(inside.sum())
        rows.append(
            {
                "lower": round(b / bins, 6),
                "upper": round((b + 1) / bins, 6),
                "n": n,
                "mean_predicted": float(p[inside].mean()) if n else None,
                "observed": float(outcome[inside].mean()) if n else None,
            }
        )
    return rows


def expected_calibration_error(p, outcome, bins: int = 10) -> float:
    """The gap between mean prediction and observed share per equal-width bin, weighted by the
    bin's share of faces."""
    p, outcome = _probabilities(p, outcome)
    index = _bin_index(p, bins)
    n = np.bincount(index, minlength=bins)
    gap = np.abs(np.bincount(index, p, bins) - np.bincount(index, outcome, bins))
    return float(gap.sum() / n.sum())


def _probabilities(p, outcome) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(p, dtype=float).reshape(-1)
    outcome = np.asarray(outcome, dtype=float).reshape(-1)
    if len(p) != len(outcome):
        raise ValueError(f"{len(p)} probabilities for {len(outcome)} outcomes")
    if len(p) == 0:
        raise ValueError("no probabilities to measure")
    if not ((p >= 0) & (p <= 1)).all():
        raise ValueError("probabilities must lie in [0, 1]")
    return p, outcome


def _bin_index(p: np.ndarray, bins: int) -> np.ndarray:
    """Bins [0, 1/bins), [1/bins, 2/bins), ... [1 - 1/bins, 1]."""
    if bins < 1:
        raise ValueError(f"bins: {bins} is not a positive number")
    return np.minimum(np.floor(p * bins), bins - 1).astype(int)


def measure(
    calibration: Calibration,
    ages,
    spreads,
    true_ages,
    limits: Sequence[int] = REPORT_LIMITS,
    bins: int = 10,
) -> dict:
    """ECE and reliability table per limit, of ``calibration`` and of the identity, and both
    log losses over :data:`FIT_LIMITS`; keys are the limits as text, as in a card."""
    ages, spreads, true_ages = _arrays(ages, spreads, true_ages)
    result: dict = {
        "ece": {},
        "ece_uncalibrated": {},
        "reliability": {},
        "reliability_uncalibrated": {},
    }
    identity = Calibration(floor=calibration.floor)
    for suffix, used in (("", calibration), ("_uncalibrated", identity)):
        for limit in limits:
            p = used.p_under(ages, spreads, limit)
            under = true_ages < limit
            result[f"ece{suffix}"][str(limit)] = expected_calibration_error(p, under, bins)
            result[f"reliability{suffix}"][str(limit)] = reliability(p, under, bins)
    result["log_loss"] = log_loss(calibration, ages, spreads, true_ages)
    result["log_loss_uncalibrated"] = log_loss(identity, ages, spreads, true_ages)
    return result
