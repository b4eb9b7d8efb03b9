"""The threshold chart: flags per night and the shares by threshold, as inline SVG."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from auditor.threshold.figures import ThresholdReport


def threshold_chart(report: ThresholdReport) -> str | None:
    """Flags per night (bars, left; above them, hatched, the sales an ID check cleared) and the
    shares (lines, right) by threshold, as inline SVG."""
    from auditor.reports.charts import ACCENT, INK, LIGHT, WARN, chart

    rows = report.rows
    if not rows:
        return None

    def percent(values: Iterable[float | None]) -> list[float]:
        return [float("nan") if v is None else 100 * v for v in values]

    def draw(fig: Any, ax: Any) -> None:
        x = [r.threshold for r in rows]
        per_night = [r.flags_per_night or 0 for r in rows]
        ax.bar(x, per_night, color=LIGHT, label="flags per night")
        nights = report.inputs.nights
        if nights and any(r.cleared for r in rows):
            ax.bar(
                x,
                [r.cleared / nights for r in rows],
                bottom=per_night,
                color="none",
                edgecolor=LIGHT,
                hatch="///",
                label="cleared by an ID check",
            )
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
