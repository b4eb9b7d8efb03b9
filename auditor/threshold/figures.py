"""Threshold analytics: what each age threshold from 16 to 30 would mean, in figures.

For each threshold T, over the succeeded audit runs of the recent nights (the last ``nights``
business dates up to the latest audited one, or up to ``until``):

- **under threshold** = the audited alcohol sales whose stored estimated age is under T (a sale
  without a face has no estimate and is never counted);
- **cleared** = those of them whose till recorded an ID check (``age_check`` ``id_checked`` or
  ``id_scanned``, or a birth date typed or scanned): the audit does not flag them at T, it
  counts them as challenged;
- **flags** = under threshold - cleared, the sales T would flag (``under_age_threshold`` or
  ``no_id_check``); **flags per night** = flags / nights audited (distinct business dates with
  a succeeded run in the window): the review load the threshold costs once checks are known.
  The flags of a birth date under the legal age or of an ID that contradicts the face do not
  depend on T and are not counted. Where the POS records no checks, nothing is cleared and the
  flags are every sale under T;
- **confirmed share** = among the *reviewed* sales with an estimate under T, the share whose
  latest decision on its threshold flag (``under_age_threshold`` or ``no_id_check``) is
  ``confirmed_violation`` (None when none is
  reviewed). Only sales flagged at the threshold of their night can have been reviewed, so above
  the configured threshold the share rests on those alone; the count it rests on is given;
- **minors flagged** / **adults flagged** = the model card's expected shares of minors aged
  10-17 and of adults aged 25 and over whose estimate is under T (its ``threshold_table``).

The figures are pure functions of plain data (:func:`threshold_rows`, :func:`change_sentence`);
:func:`~auditor.threshold.inputs.load_inputs` reads that data from the database,
:func:`build_report` puts it together and :func:`~auditor.threshold.chart.threshold_chart`
draws it.
Changing the threshold itself stays a change of ``audit.age_threshold`` (or of a store's own
``age_threshold``), which every audit run records with its settings.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np

THRESHOLDS: tuple[int, ...] = tuple(range(16, 31))
DEFAULT_NIGHTS = 30


@dataclass(frozen=True)
class ReviewedSale:
    """A reviewed sale: its estimated age and whether its latest decision confirms a violation."""

    estimated_age: float
    confirmed: bool


@dataclass(frozen=True)
class ThresholdRow:
    threshold: int
    flags: int
    flags_per_night: float | None
    reviewed: int
    confirmed: int
    confirmed_share: float | None
    minors_flagged: float | None
    adults_flagged: float | None
    under_threshold: int = 0
    cleared: int = 0


def threshold_rows(
    *,
    estimates: Iterable[float],
    nights: int,
    reviewed: Iterable[ReviewedSale],
    card_table: Iterable[Mapping[str, Any]] = (),
    thresholds: Sequence[int] = THRESHOLDS,
    cleared: Iterable[float] = (),
) -> list[ThresholdRow]:
    """One row per threshold; see the module's docstring for what each figure means.
    ``estimates`` are every estimated age, ``cleared`` those of sales with an ID check
    recorded (a part of ``estimates``)."""
    ages = np.sort(np.asarray(list(estimates), dtype=float))
    checked = np.sort(np.asarray(list(cleared), dtype=float))
    reviewed = list(reviewed)
    reviewed_ages = np.sort(np.asarray([r.estimated_age for r in reviewed], dtype=float))
    confirmed_ages = np.sort(
        np.asarray([r.estimated_age for r in reviewed if r.confirmed], dtype=float)
    )
    card = {int(row["threshold"]): row for row in card_table if "threshold" in row}
    rows = []
    for t in thresholds:
        under = int(np.searchsorted(ages, t, side="left"))
        n_cleared = int(np.searchsorted(checked, t, side="left"))
        flags = under - n_cleared
        n_reviewed = int(np.searchsorted(reviewed_ages, t, side="left"))
        n_confirmed = int(np.searchsorted(confirmed_ages, t, side="left"))
        expected = card.get(t, {})
        rows.append(
            ThresholdRow(
                threshold=t,
                flags=flags,
                flags_per_night=flags / nights if nights > 0 else None,
                reviewed=n_reviewed,
                confirmed=n_confirmed,
                confirmed_share=n_confirmed / n_reviewed if n_reviewed else None,
                minors_flagged=_share(expected.get("minors_flagged")),
                adults_flagged=_share(expected.get("adults_flagged")),
                under_threshold=under,
                cleared=n_cleared,
            )
        )
    return rows


def _share(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def _pct(value: float | None) -> str:
    return "an unknown share" if value is None else f"{100 * value:.1f}%"


def change_sentence(current: ThresholdRow, other: ThresholdRow) -> str:
    """What moving the threshold from ``current`` to ``other`` would do, in one sentence."""
    verb = "Raising" if other.threshold > current.threshold else "Lowering"
    parts = [f"{verb} the threshold from {current.threshold} to {other.threshold} would"]
    if current.flags_per_night is not None and other.flags_per_night is not None:
        delta = other.flags_per_night - current.flags_per_night
        if round(delta, 1) == 0:
            parts.append(
                f"leave the review load as it is ({current.flags_per_night:.1f} flags per night)"
            )
        else:
            parts.append(
                f"flag {abs(delta):.1f} {'more' if delta > 0 else 'fewer'} sales per night "
                f"({other.flags_per_night:.1f} instead of {current.flags_per_night:.1f})"
            )
    else:
        parts.append("change the review load by an unknown amount (no audited night)")
    sentence = " ".join(parts)
    if current.minors_flagged is not None or other.minors_flagged is not None:
        sentence += (
            f"; the model card expects {_pct(other.minors_flagged)} of minors to be flagged "
            f"instead of {_pct(current.minors_flagged)}, and {_pct(other.adults_flagged)} of "
            f"adults 25+ instead of {_pct(current.adults_flagged)}"
        )
    return sentence + "."


@dataclass
class ThresholdInputs:
    """What the figures are computed from, read from the database."""

    first_night: date | None
    last_night: date | None
    nights: int
    store_nights: int
    stores: list[str]
    estimates: list[float]
    reviewed: list[ReviewedSale]
    run_thresholds: dict[int, int]  # threshold in a run's settings -> store-nights audited with it
    cleared: list[float] = field(default_factory=list)  # estimates of sales with an ID check
    with_checks: int = 0  # estimated sales whose till records age checks


@dataclass
class ThresholdReport:
    configured: int
    inputs: ThresholdInputs
    rows: list[ThresholdRow]
    operating_point: dict[str, float] | None = None
    model_version: str = ""
    changes: list[str] = field(default_factory=list)

    @property
    def current(self) -> ThresholdRow | None:
        return next((r for r in self.rows if r.threshold == self.configured), None)

    def as_json_dict(self) -> dict[str, Any]:
        i = self.inputs
        return {
            "configured_threshold": self.configured,
            "first_night": i.first_night.isoformat() if i.first_night else None,
            "last_night": i.last_night.isoformat() if i.last_night else None,
            "nights": i.nights,
            "store_nights": i.store_nights,
            "stores": i.stores,
            "run_thresholds": {str(k): v for k, v in i.run_thresholds.items()},
            "estimated_sales": len(i.estimates),
            "with_checks": i.with_checks,
            "id_checked": len(i.cleared),
            "model_version": self.model_version,
            "operating_point": self.operating_point,
            "rows": [r.__dict__ for r in self.rows],
            "changes": self.changes,
        }


def build_report(
    inputs: ThresholdInputs, *, configured: int, card: Mapping[str, Any] | None
) -> ThresholdReport:
    """The rows, and sentences on moving the configured threshold one and two years each way."""
    card = card or {}
    rows = threshold_rows(
        estimates=inputs.estimates,
        nights=inputs.nights,
        reviewed=inputs.reviewed,
        card_table=card.get("threshold_table") or [],
        cleared=inputs.cleared,
    )
    by_threshold = {r.threshold: r for r in rows}
    current = by_threshold.get(configured)
    changes = []
    if current is not None:
        for step in (-2, -1, 1, 2):
            other = by_threshold.get(configured + step)
            if other is not None:
                changes.append(change_sentence(current, other))
    point = (card.get("metrics") or {}).get("operating_point")
    return ThresholdReport(
        configured=configured,
        inputs=inputs,
        rows=rows,
        operating_point=point if isinstance(point, dict) else None,
        model_version=str(card.get("version") or card.get("name") or ""),
        changes=changes,
    )
