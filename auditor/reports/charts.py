"""The report charts: matplotlib figures rendered to inline SVG, so a page is one file.

Figures are built as :class:`matplotlib.figure.Figure` objects on the Agg canvas, never through
``pyplot``: no global figure registry, nothing left open, and safe from any thread (a report
rendered from the scheduler or, later, a web request). :func:`chart` is the one way to make a
figure; it applies the report style and returns the SVG text. Each SVG's ids are prefixed with
the chart's name so that several charts can share a page. Every function returns ``None`` when
it has nothing to draw; the templates then say so in words.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.axis import Axis
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import DateFormatter, DayLocator
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from matplotlib.typing import RcKeyType

from auditor.reports.figures import Hourly, PurchaseMix, TrendPoint

INK = "#1d2430"
MUTED = "#8a93a0"
LIGHT = "#c9d3e0"
ACCENT = "#1f5fbf"
WARN = "#b3261e"
MIX_COLOURS = [
    "#1f5fbf",
    "#e08a1e",
    "#2e8b57",
    "#b3261e",
    "#7b52ab",
    "#2aa1b3",
    "#a0743c",
    "#9aa3ad",
]

STYLE: dict[RcKeyType, Any] = {
    "font.family": "sans-serif",
    "font.size": 9,
    "axes.edgecolor": MUTED,
    "axes.labelcolor": INK,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "xtick.color": INK,
    "ytick.color": INK,
    "svg.fonttype": "none",  # text stays text: smaller files, selectable, the page's font
    "svg.hashsalt": "auditor-report",  # the same figure gives the same SVG
}

_ID = re.compile(r'\bid="([^"]+)"')


@contextmanager
def _figure(width: float, height: float) -> Iterator[tuple[Figure, Axes]]:
    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=(width, height))
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        yield fig, ax


def _whole_numbers(axis: Axis) -> None:
    """Ticks on whole numbers only, for counts (the default locator is a MaxNLocator)."""
    locator = axis.get_major_locator()
    if isinstance(locator, MaxNLocator):
        locator.set_params(integer=True)


def chart(
    name: str, draw: Callable[[Figure, Axes], None], width: float = 6.0, height: float = 3.0
) -> str:
    """Run ``draw(fig, ax)`` on a new styled figure and return it as an inline ``<svg>``."""
    with _figure(width, height) as (fig, ax):
        draw(fig, ax)
        fig.tight_layout()
        buffer = io.StringIO()
        fig.savefig(buffer, format="svg", metadata={"Date": None})
    svg = buffer.getvalue()
    return _scoped(svg[svg.index("<svg") :], name)


def _scoped(svg: str, prefix: str) -> str:
    """Prefix every id (and every reference to one) so that charts on one page do not clash."""
    ids = set(_ID.findall(svg))
    for old in sorted(ids, key=len, reverse=True):
        new = f"{prefix}-{old}"
        svg = svg.replace(f'id="{old}"', f'id="{new}"')
        svg = svg.replace(f"url(#{old})", f"url(#{new})")
        svg = svg.replace(f'href="#{old}"', f'href="#{new}"')
    return svg.replace("<svg ", '<svg role="img" ', 1)


# -- the charts ----------------------------------------------------------------------------------


def age_histogram(ages: Sequence[float], threshold: float | None) -> str | None:
    """Estimated ages of the night's alcohol buyers, one bar per year, and the threshold."""
    if not ages:
        return None

    def draw(fig: Figure, ax: Axes) -> None:
        low = max(int(min(min(ages), threshold or 99)) - 1, 0)
        high = int(max(max(ages), threshold or 0)) + 2
        edges = np.arange(low, high + 1)
        counts, _ = np.histogram(ages, bins=edges)
        # one filled outline per colour: bins under the threshold red, the others blue
        under = edges[:-1] < threshold if threshold is not None else np.zeros(len(counts), bool)
        ax.stairs(np.where(under, 0, counts), edges, fill=True, color=ACCENT)
        ax.stairs(np.where(under, counts, 0), edges, fill=True, color=WARN)
        if threshold is not None:
            ax.axvline(threshold, color=INK, linestyle="--", linewidth=1.2)
            ax.annotate(
                f"threshold {threshold:g}",
                xy=(threshold, 1),
                xycoords=("data", "axes fraction"),
                xytext=(4, -12),
                textcoords="offset points",
                color=INK,
            )
        ax.set_xlabel("estimated age (years)")
        ax.set_ylabel("alcohol sales")
        ax.set_ylim(bottom=0)
        _whole_numbers(ax.yaxis)

    return chart("ages", draw)


def flags_by_hour(hours: Hourly) -> str | None:
    """Alcohol sales per store-local hour, with the flagged ones and the under-age ones."""
    if not any(hours.sales):
        return None

    def draw(fig: Figure, ax: Axes) -> None:
        x = list(range(24))
        ax.bar(x, hours.sales, color=LIGHT, label="alcohol sales")
        ax.bar(x, hours.flagged, color=ACCENT, label="flagged")
        ax.bar(x, hours.under_age, color=WARN, label="under-age flags")
        ax.set_xticks(range(0, 24, 2))
        ax.set_xlim(-0.6, 23.6)
        ax.set_xlabel("hour of sale (store time)")
        ax.set_ylabel("sales")
        _whole_numbers(ax.yaxis)
        ax.legend(frameon=False, fontsize=8, loc="upper left")

    return chart("hours", draw)


def nightly_trend(points: Sequence[TrendPoint]) -> str | None:
    """Flag rate and under-age rate night by night (gaps: nights without results)."""
    if not any(p.alcohol_sales for p in points):
        return None

    def draw(fig: Figure, ax: Axes) -> None:
        # Any: matplotlib draws dates through its unit converters, but its stubs take numbers.
        days: list[Any] = [p.day for p in points]
        flagged = [_percent(p.flag_rate) for p in points]
        under = [_percent(p.under_age_rate) for p in points]
        ax.plot(days, flagged, color=ACCENT, marker="o", markersize=3, label="flag rate")
        ax.plot(days, under, color=WARN, marker="o", markersize=3, label="under-age rate")
        ax.plot(days[-1:], flagged[-1:], color=ACCENT, marker="o", markersize=7)
        ax.set_ylabel("% of alcohol sales")
        ax.set_ylim(bottom=0)
        ax.legend(frameon=False, fontsize=8, loc="upper left")
        ax.set_xlim(days[0] - timedelta(days=0.5), days[-1] + timedelta(days=0.5))
        ax.xaxis.set_major_locator(DayLocator(interval=max(1, len(days) // 8)))
        ax.xaxis.set_major_formatter(DateFormatter("%d %b"))
        fig.autofmt_xdate(rotation=45)

    return chart("trend", draw)


def challenge_trend(points: Sequence[TrendPoint]) -> str | None:
    """The challenge rate night by night: of the sales estimated under the threshold whose till
    records age checks, the share with an ID check recorded (gaps: nights without such sales)."""
    if not any(p.challenges is not None and p.challenges.due for p in points):
        return None

    def draw(fig: Figure, ax: Axes) -> None:
        days: list[Any] = [p.day for p in points]
        rates = [_percent(p.challenges.rate if p.challenges else None) for p in points]
        ax.plot(days, rates, color=ACCENT, marker="o", markersize=3, label="challenge rate")
        ax.plot(days[-1:], rates[-1:], color=ACCENT, marker="o", markersize=7)
        ax.set_ylabel("% with an ID check recorded")
        ax.set_ylim(0, 105)
        ax.set_xlim(days[0] - timedelta(days=0.5), days[-1] + timedelta(days=0.5))
        ax.xaxis.set_major_locator(DayLocator(interval=max(1, len(days) // 8)))
        ax.xaxis.set_major_formatter(DateFormatter("%d %b"))
        fig.autofmt_xdate(rotation=45)

    return chart("challenges", draw)


def purchase_mix(mix: PurchaseMix | None) -> str | None:
    """One 100 % bar per estimated-age band, split by category spend."""
    if mix is None or mix.empty:
        return None

    def draw(fig: Figure, ax: Axes) -> None:
        labels = [f"{band} ({n})" for band, n in zip(mix.bands, mix.sales, strict=True)]
        left = [0.0] * len(mix.bands)
        for j, category in enumerate(mix.categories):
            widths = [100 * row[j] for row in mix.shares]
            ax.barh(
                labels,
                widths,
                left=left,
                color=MIX_COLOURS[j % len(MIX_COLOURS)],
                label=category,
            )
            left = [a + b for a, b in zip(left, widths, strict=True)]
        ax.invert_yaxis()
        ax.set_xlim(0, 100)
        ax.set_xlabel("% of spend")
        ax.legend(frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))

    return chart("mix", draw, width=8.0, height=1.2 + 0.32 * max(len(mix.bands), 3))


def _percent(value: float | None) -> float:
    return float("nan") if value is None else 100 * value
