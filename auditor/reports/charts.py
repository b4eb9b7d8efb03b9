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
from datetime import datetime, time, timedelta
from typing import Any

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.axis import Axis
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PolyCollection
from matplotlib.dates import DateFormatter
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from matplotlib.typing import RcKeyType

from auditor.reports.figures import Hourly, TrendPoint

INK = "#1d2430"
MUTED = "#8a93a0"
LIGHT = "#c9d3e0"
ACCENT = "#1f5fbf"
WARN = "#b3261e"
# One colour per concept, the same in every chart: a reader learns it once.
PALETTE = {
    "sales": "#a9b8cc",  # alcohol sales (bars), buyers at or over the threshold
    "flagged": "#d9822b",  # flagged sales and the flag rate
    "under_age": "#b3261e",  # under-age flags, buyers estimated under the threshold
    "challenge": "#2e7d32",  # the challenge rate (ID checked)
    "threshold": INK,  # the age threshold
}
CHAIN_DASHES = (0, (4, 3))  # the chain's average: the rate's colour, dashed
TREND_WIDTH = 12.6  # inches: a page's width, so that 31 nights' dates stay readable

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
        ax.stairs(np.where(under, 0, counts), edges, fill=True, color=PALETTE["sales"])
        ax.stairs(np.where(under, counts, 0), edges, fill=True, color=PALETTE["under_age"])
        if threshold is not None:
            ax.axvline(threshold, color=PALETTE["threshold"], linestyle="--", linewidth=1.2)
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
        _bars(ax, hours.sales, PALETTE["sales"], "alcohol sales")
        _bars(ax, hours.flagged, PALETTE["flagged"], "flagged")
        _bars(ax, hours.under_age, PALETTE["under_age"], "under-age flags")
        ax.set_xticks(range(0, 24, 2))
        ax.set_xlim(-0.6, 23.6)
        ax.set_ylim(0, max(max(hours.sales), 1) * 1.05)
        ax.set_xlabel("hour of sale (store time)")
        ax.set_ylabel("sales")
        _whole_numbers(ax.yaxis)
        ax.legend(frameon=False, fontsize=8, loc="upper left")

    return chart("hours", draw)


def _bars(ax: Axes, heights: Sequence[int], colour: str, label: str, width: float = 0.8) -> None:
    """One bar per value at x = 0, 1, ... as a single collection (a chart of 24 hours and
    three series draws three shapes, not 72 rectangles: a fifth of its drawing time)."""
    half = width / 2
    bars = [
        [(x - half, 0), (x - half, h), (x + half, h), (x + half, 0)]
        for x, h in enumerate(heights)
        if h > 0
    ]
    ax.add_collection(PolyCollection(bars, facecolors=colour, edgecolors="none", label=label))


def nightly_trend(points: Sequence[TrendPoint], chain: Sequence[TrendPoint] = ()) -> str | None:
    """Flag rate and under-age rate night by night (gaps: nights without results), the
    chain's average of each dashed, tonight's points ringed and labelled."""
    if not any(p.alcohol_sales for p in points):
        return None

    def draw(fig: Figure, ax: Axes) -> None:
        lines = [
            ("flag rate", "flagged", lambda p: p.flag_rate),
            ("under-age rate", "under_age", lambda p: p.under_age_rate),
        ]
        for label, concept, value in lines:
            _rate_line(ax, points, chain, label, PALETTE[concept], value)
        ax.set_ylabel("% of alcohol sales")
        ax.set_ylim(bottom=0)
        _nights_axis(fig, ax, points)

    return chart("trend", draw, width=TREND_WIDTH, height=3.2)


def challenge_trend(points: Sequence[TrendPoint], chain: Sequence[TrendPoint] = ()) -> str | None:
    """The challenge rate night by night: of the sales estimated under the threshold whose till
    records age checks, the share with an ID check recorded (gaps: nights without such sales);
    the chain's average dashed, tonight's point ringed and labelled."""
    if not any(p.challenges is not None and p.challenges.due for p in points):
        return None

    def draw(fig: Figure, ax: Axes) -> None:
        def value(p: TrendPoint) -> float | None:
            return p.challenges.rate if p.challenges else None

        _rate_line(ax, points, chain, "challenge rate", PALETTE["challenge"], value)
        ax.set_ylabel("% with an ID check recorded")
        ax.set_ylim(0, 105)
        _nights_axis(fig, ax, points)

    return chart("challenges", draw, width=TREND_WIDTH, height=3.2)


def _rate_line(
    ax: Axes,
    points: Sequence[TrendPoint],
    chain: Sequence[TrendPoint],
    label: str,
    colour: str,
    value: Callable[[TrendPoint], float | None],
) -> None:
    """One rate over the nights in ``colour``; the chain's (when given) dashed in the same
    colour; tonight's (the last point) ringed with its value written beside."""
    # Any: matplotlib draws dates through its unit converters, but its stubs take numbers.
    days: list[Any] = [p.day for p in points]
    rates = [_percent(value(p)) for p in points]
    ax.plot(days, rates, color=colour, marker="o", markersize=3, linewidth=1.6, label=label)
    if chain:
        chain_days: list[Any] = [p.day for p in chain]
        chain_rates = [_percent(value(p)) for p in chain]
        ax.plot(
            chain_days,
            chain_rates,
            color=colour,
            label=f"{label}, chain",
            linestyle=CHAIN_DASHES,
            linewidth=1.3,
            alpha=0.8,
        )
    tonight = rates[-1]
    if tonight == tonight:  # not NaN: tonight has a rate
        ax.plot(
            days[-1:],
            [tonight],
            linestyle="none",
            marker="o",
            markersize=9,
            markerfacecolor=colour,
            markeredgecolor=INK,
            markeredgewidth=1.5,
            zorder=5,
        )
        ax.annotate(
            f"tonight {tonight:.1f} %",
            xy=(days[-1], tonight),
            xytext=(-8, 8),
            textcoords="offset points",
            ha="right",
            color=INK,
            fontsize=8,
        )


def _nights_axis(fig: Figure, ax: Axes, points: Sequence[TrendPoint]) -> None:
    days: list[Any] = [p.day for p in points]
    step = max(1, len(days) // 15)
    ax.set_xticks(days[::-1][::step][::-1])  # counted back from tonight, which has its tick
    # after the ticks, which would reset it; datetimes, as a date drops a part of a day
    first, last = (datetime.combine(d, time()) for d in (days[0], days[-1]))
    limits: list[Any] = [first - timedelta(hours=12), last + timedelta(hours=20)]
    ax.set_xlim(*limits)
    ax.xaxis.set_major_formatter(DateFormatter("%d %b"))
    ax.legend(frameon=False, fontsize=8, loc="lower left", bbox_to_anchor=(0, 1.0), ncol=4)
    fig.autofmt_xdate(rotation=45)


def _percent(value: float | None) -> float:
    return float("nan") if value is None else 100 * value
