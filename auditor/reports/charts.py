"""The store page's charts as inline SVG, so a page is one file.

Each of the four charts is drawn by :class:`auditor.reports.svg.Plot` straight from its
figures: bars, steps and lines with their axes, ticks and legend as a few hundred SVG
elements. A chart is a pure function of its figures (the same figures give the same text, in
any order and any process), cheap enough for every page of a chain of a thousand stores.
Every function returns ``None`` when it has nothing to draw; the templates then say so in
words.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import date

from auditor.reports.figures import Hourly, TrendPoint
from auditor.reports.svg import (
    FONT,
    PAD,
    SMALL,
    TICK,
    LegendEntry,
    Plot,
    nice_ticks,
    text_width,
    tick_label,
)
from auditor.reports.svg import number as svg_number

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
CHAIN_WIDTH = 1.3
CHAIN_DASHES = f"{svg_number(4 * CHAIN_WIDTH)} {svg_number(3 * CHAIN_WIDTH)}"  # the chain's: dashed
CHAIN_OPACITY = 0.8
THRESHOLD_DASHES = "4.44 1.92"
RATE_WIDTH = 1.6
SIZE = (432.0, 216.0)  # points: 6 x 3 inches, half a page's width
TREND_SIZE = (907.2, 230.4)  # 12.6 x 3.2 inches: a page's width, so 31 nights' dates stay readable


def _headroom(values: Sequence[float]) -> float:
    """The top of a y axis from 0: the largest value and 5 % more (1 when all are 0)."""
    top = max((v for v in values if v == v), default=0.0)
    return top * 1.05 if top > 0 else 1.0


def _left_margin(labels: Sequence[str]) -> float:
    """Room for the y axis's label, its tick labels and marks."""
    widest = max((text_width(label, FONT) for label in labels), default=0.0)
    return FONT * 2.2 + widest + TICK + PAD + 2


def _y_ticks(top: float, length: float, *, whole: bool = False) -> list[tuple[float, str]]:
    most = max(1, min(9, int(length // (2 * FONT))))
    return [(v, tick_label(v)) for v in nice_ticks(0.0, top, most, whole=whole)]


def _plot(
    size: tuple[float, float],
    x: tuple[float, float],
    top: float,
    *,
    whole: bool,
    margin_top: float = 10.0,
    margin_bottom: float = 34.0,
) -> tuple[Plot, list[tuple[float, str]]]:
    """A plot of ``size`` over ``x`` and 0 to ``top``, its left margin made to fit the ticks."""
    height = size[1] - margin_top - margin_bottom
    yticks = _y_ticks(top, height, whole=whole)
    plot = Plot(
        size[0],
        size[1],
        x,
        (0.0, top),
        left=_left_margin([label for _, label in yticks]),
        top=margin_top,
        bottom=margin_bottom,
        ink=INK,
        spine=MUTED,
    )
    return plot, yticks


# -- the charts ----------------------------------------------------------------------------------


def age_histogram(ages: Sequence[float], threshold: float | None) -> str | None:
    """Estimated ages of the night's alcohol buyers, one bar per year, and the threshold."""
    if not ages:
        return None
    low = max(int(min(min(ages), threshold or 99)) - 1, 0)
    high = int(max(max(ages), threshold or 0)) + 2
    edges = list(range(low, high + 1))
    counts = [0] * (len(edges) - 1)
    for age in ages:
        counts[min(max(int(math.floor(age)) - low, 0), len(counts) - 1)] += 1
    margin = 0.05 * (high - low)
    plot, yticks = _plot(SIZE, (low - margin, high + margin), _headroom(counts), whole=True)
    # one filled outline per colour: bins under the threshold red, the others blue
    under = [threshold is not None and edge < threshold for edge in edges[:-1]]
    plot.steps(edges, [0 if u else n for u, n in zip(under, counts, strict=True)], PALETTE["sales"])
    plot.steps(
        edges, [n if u else 0 for u, n in zip(under, counts, strict=True)], PALETTE["under_age"]
    )
    if threshold is not None:
        plot.vline(threshold, PALETTE["threshold"], width=1.2, dashes=THRESHOLD_DASHES)
        plot.text(plot.sx(threshold) + 4, plot.top + 12, f"threshold {threshold:g}")
    most = max(1, min(9, int(plot.sx.length // (3 * FONT))))
    xticks = [(v, tick_label(v)) for v in nice_ticks(low - margin, high + margin, most, whole=True)]
    plot.axes(
        xticks=xticks,
        yticks=yticks,
        xlabel="estimated age (years)",
        ylabel="alcohol sales",
    )
    return plot.svg()


def flags_by_hour(hours: Hourly) -> str | None:
    """Alcohol sales per store-local hour, with the flagged ones and the under-age ones."""
    if not any(hours.sales):
        return None
    plot, yticks = _plot(SIZE, (-0.6, 23.6), _headroom(hours.sales), whole=True)
    series = [
        ("alcohol sales", "sales", hours.sales),
        ("flagged", "flagged", hours.flagged),
        ("under-age flags", "under_age", hours.under_age),
    ]
    for _, concept, counts in series:
        plot.bars(range(24), counts, 0.8, PALETTE[concept])
    plot.axes(
        xticks=[(h, str(h)) for h in range(0, 24, 2)],
        yticks=yticks,
        xlabel="hour of sale (store time)",
        ylabel="sales",
    )
    entries = [LegendEntry(label, PALETTE[concept]) for label, concept, _ in series]
    plot.legend(entries, plot.left + SMALL, plot.top + SMALL, across=False)
    return plot.svg()


def nightly_trend(points: Sequence[TrendPoint], chain: Sequence[TrendPoint] = ()) -> str | None:
    """Flag rate and under-age rate night by night (gaps: nights without results), the
    chain's average of each dashed, tonight's points ringed and labelled."""
    if not any(p.alcohol_sales for p in points):
        return None
    lines = [
        ("flag rate", "flagged", _flag_rate),
        ("under-age rate", "under_age", _under_age_rate),
    ]
    return _trend(points, chain, lines, "% of alcohol sales", top=None)


def challenge_trend(points: Sequence[TrendPoint], chain: Sequence[TrendPoint] = ()) -> str | None:
    """The challenge rate night by night: of the sales estimated under the threshold whose till
    records age checks, the share with an ID check recorded (gaps: nights without such sales);
    the chain's average dashed, tonight's point ringed and labelled."""
    if not any(p.challenges is not None and p.challenges.due for p in points):
        return None
    lines = [("challenge rate", "challenge", _challenge_rate)]
    return _trend(points, chain, lines, "% with an ID check recorded", top=105.0)


# -- the trends ----------------------------------------------------------------------------------

Rate = Callable[[TrendPoint], float | None]


def _flag_rate(p: TrendPoint) -> float | None:
    return p.flag_rate


def _under_age_rate(p: TrendPoint) -> float | None:
    return p.under_age_rate


def _challenge_rate(p: TrendPoint) -> float | None:
    return p.challenges.rate if p.challenges else None


def _trend(
    points: Sequence[TrendPoint],
    chain: Sequence[TrendPoint],
    lines: Sequence[tuple[str, str, Rate]],
    ylabel: str,
    *,
    top: float | None,
) -> str:
    """Rates over the nights of ``points``, one line per entry of ``lines`` (label, concept,
    rate), each with the chain's dashed beside it; the nights on the x axis, tonight last."""
    first = points[0].day
    days = [_days(p.day, first) for p in points]
    rates = {label: [_percent(rate(p)) for p in points] for label, _, rate in lines}
    chain_days = [_days(p.day, first) for p in chain]
    chain_rates = {label: [_percent(rate(p)) for p in chain] for label, _, rate in lines}
    if top is None:
        top = _headroom([v for values in (*rates.values(), *chain_rates.values()) for v in values])
    # half a day before the first night, most of one after tonight: its ring is not cut
    x = (days[0] - 0.5, days[-1] + 20 / 24)
    plot, yticks = _plot(TREND_SIZE, x, top, whole=False, margin_top=24.0, margin_bottom=44.0)
    entries = []
    for label, concept, _ in lines:
        colour = PALETTE[concept]
        plot.line(days, rates[label], colour, width=RATE_WIDTH, marker=2.0)
        entries.append(LegendEntry(label, colour, kind="line", marker=True))
        if chain:
            plot.line(
                chain_days,
                chain_rates[label],
                colour,
                width=CHAIN_WIDTH,
                dashes=CHAIN_DASHES,
                opacity=CHAIN_OPACITY,
            )
            entries.append(
                LegendEntry(
                    f"{label}, chain",
                    colour,
                    kind="line",
                    dashes=CHAIN_DASHES,
                    width=CHAIN_WIDTH,
                    opacity=CHAIN_OPACITY,
                )
            )
    for label, concept, _ in lines:
        tonight = rates[label][-1]
        if tonight == tonight:  # not NaN: tonight has a rate
            at = (plot.sx(days[-1]), plot.sy(tonight))
            plot.dots([at], 4.5, PALETTE[concept], edge=INK, edge_width=1.5)
            plot.text(at[0] - 8, at[1] - 8, f"tonight {tonight:.1f} %", size=SMALL, anchor="end")
    step = max(1, len(days) // 15)
    ticked = list(range(len(points) - 1, -1, -step))[::-1]  # counted back from tonight
    plot.axes(
        xticks=[(days[n], f"{points[n].day:%d %b}") for n in ticked],
        yticks=yticks,
        ylabel=ylabel,
        rotate_x=True,
    )
    plot.legend(entries, plot.left, plot.top - SMALL * 1.5, across=True)
    return plot.svg()


def _days(day: date, first: date) -> float:
    return float((day - first).days)


def _percent(value: float | None) -> float:
    return float("nan") if value is None else 100 * value
