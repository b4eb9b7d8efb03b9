"""Threshold analytics: what each age threshold from 16 to 30 would mean, in figures.

For each threshold T, over the succeeded audit runs of the recent nights (the last ``nights``
business dates up to the latest audited one, or up to ``until``):

- **flags** = the audited alcohol sales whose stored estimated age is under T (a sale without a
  face has no estimate and is never counted); **flags per night** = flags / nights audited
  (distinct business dates with a succeeded run in the window): the review load;
- **confirmed share** = among the *reviewed* sales with an estimate under T, the share whose
  latest decision on the under-age flag is ``confirmed_violation`` (None when none is
  reviewed). Only sales flagged at the threshold of their night can have been reviewed, so above
  the configured threshold the share rests on those alone; the count it rests on is given;
- **minors flagged** / **adults flagged** = the model card's expected shares of minors aged
  10-17 and of adults aged 25 and over whose estimate is under T (its ``threshold_table``).

The figures are pure functions of plain data (:func:`threshold_rows`, :func:`change_sentence`);
:func:`load_inputs` reads that data from the database and :func:`build_report` puts it together.
Changing the threshold itself stays a change of ``audit.age_threshold``, which every audit run
records with its settings.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session

from auditor.audit.rules import UNDER_AGE
from auditor.db.models import AuditRun, SaleVerdict
from auditor.db.queries import current_runs
from auditor.reviews import CONFIRMED, latest_reviews

logger = logging.getLogger(__name__)

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


def threshold_rows(
    *,
    estimates: Iterable[float],
    nights: int,
    reviewed: Iterable[ReviewedSale],
    card_table: Iterable[Mapping[str, Any]] = (),
    thresholds: Sequence[int] = THRESHOLDS,
) -> list[ThresholdRow]:
    """One row per threshold; see the module's docstring for what each figure means."""
    ages = np.sort(np.asarray(list(estimates), dtype=float))
    reviewed = list(reviewed)
    reviewed_ages = np.sort(np.asarray([r.estimated_age for r in reviewed], dtype=float))
    confirmed_ages = np.sort(
        np.asarray([r.estimated_age for r in reviewed if r.confirmed], dtype=float)
    )
    card = {int(row["threshold"]): row for row in card_table if "threshold" in row}
    rows = []
    for t in thresholds:
        flags = int(np.searchsorted(ages, t, side="left"))
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


# -- reading the inputs --------------------------------------------------------------------------


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


def load_inputs(
    session: Session,
    *,
    nights: int = DEFAULT_NIGHTS,
    until: date | None = None,
    store_ids: Sequence[str] = (),
) -> ThresholdInputs:
    """The estimates, reviews and runs of the last ``nights`` business dates up to ``until``
    (default: the latest date with a succeeded run), of ``store_ids`` (default: every store)."""
    if nights < 1:
        raise ValueError("nights must be at least 1")
    stores = list(store_ids) or None
    if until is None:
        last_date = current_runs(store_ids=stores).with_only_columns(
            sa.func.max(AuditRun.business_date)
        )
        until = session.execute(last_date).scalar()
    if until is None:
        return ThresholdInputs(None, None, 0, 0, [], [], [], {})
    first = until - timedelta(days=nights - 1)
    window = current_runs(store_ids=stores, first=first, last=until)
    runs = session.execute(
        window.with_only_columns(
            AuditRun.id, AuditRun.store_id, AuditRun.business_date, AuditRun.settings
        )
    ).all()
    run_ids = window.with_only_columns(AuditRun.id)
    estimated = SaleVerdict.estimated_age.is_not(None)
    estimates = session.execute(
        sa.select(SaleVerdict.estimated_age).where(SaleVerdict.run_id.in_(run_ids), estimated)
    ).scalars()
    latest = latest_reviews()
    reviewed = session.execute(
        sa.select(SaleVerdict.estimated_age, latest.c.decision)
        .join(latest, latest.c.sale_id == SaleVerdict.sale_id)
        .where(SaleVerdict.run_id.in_(run_ids), estimated, latest.c.flag_kind == UNDER_AGE)
    ).all()
    used: Counter[int] = Counter()
    for run in runs:
        threshold = (run.settings or {}).get("audit", {}).get("age_threshold")
        if isinstance(threshold, int | float):
            used[int(threshold)] += 1
    return ThresholdInputs(
        first_night=first,
        last_night=until,
        nights=len({run.business_date for run in runs}),
        store_nights=len(runs),
        stores=sorted({run.store_id for run in runs}),
        estimates=[float(a) for a in estimates],
        reviewed=[ReviewedSale(float(age), decision == CONFIRMED) for age, decision in reviewed],
        run_thresholds=dict(sorted(used.items())),
    )


# -- the report ----------------------------------------------------------------------------------


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


def read_model_card(model_dir: Any) -> dict[str, Any] | None:
    """The model card of ``model_dir``, or None (logged) when it cannot be read."""
    from model import ModelError, read_card

    try:
        return read_card(model_dir)
    except ModelError as e:
        logger.warning("model card not readable: %s", e)
        return None


def threshold_chart(report: ThresholdReport) -> str | None:
    """Flags per night (bars, left) and the shares (lines, right) by threshold, as inline SVG."""
    from auditor.reports.charts import ACCENT, INK, LIGHT, WARN, chart

    rows = report.rows
    if not rows:
        return None

    def percent(values: Iterable[float | None]) -> list[float]:
        return [float("nan") if v is None else 100 * v for v in values]

    def draw(fig: Any, ax: Any) -> None:
        x = [r.threshold for r in rows]
        ax.bar(x, [r.flags_per_night or 0 for r in rows], color=LIGHT, label="flags per night")
        ax.set_xlabel("age threshold (years)")
        ax.set_ylabel("flags per night")
        ax.set_xticks(x)
        ax.axvline(report.configured, color=INK, linestyle="--", linewidth=1.2)
        share = ax.twinx()
        share.spines["right"].set_visible(True)
        share.plot(
            x,
            percent(r.minors_flagged for r in rows),
            color=ACCENT,
            marker="o",
            markersize=3,
            label="minors flagged (model card)",
        )
        share.plot(
            x,
            percent(r.adults_flagged for r in rows),
            color=WARN,
            marker="o",
            markersize=3,
            label="adults 25+ flagged (model card)",
        )
        share.plot(
            x,
            percent(r.confirmed_share for r in rows),
            color=INK,
            marker="s",
            markersize=3,
            linestyle=":",
            label="flags confirmed by reviews",
        )
        share.set_ylim(0, 100)
        share.set_ylabel("%")
        handles = ax.get_legend_handles_labels()
        more = share.get_legend_handles_labels()
        ax.legend(
            handles[0] + more[0],
            handles[1] + more[1],
            frameon=False,
            fontsize=8,
            loc="upper center",
            bbox_to_anchor=(0.5, -0.22),
            ncols=2,
        )

    return chart("threshold", draw, width=7.0, height=3.8)
