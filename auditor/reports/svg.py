"""A small SVG plotter for the report charts: one plot area with axes, ticks and a legend.

The store pages carry four simple charts (bars, steps, lines with markers) on every page of
every store, so they are drawn here as SVG text directly: a few hundred elements, pure and
deterministic (coordinates rounded to 0.01 pt), text left as text in the page's font. A
:class:`Plot` maps data to points through two linear :class:`Scale` objects; its methods add
elements in drawing order and :meth:`Plot.svg` returns the ``<svg>`` element.

Sizes are in points (1/72 inch) as the chart's ``width`` and ``height`` say; the page scales the
chart to its box (``viewBox``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from markupsafe import escape

TICK = 3.5  # length of a tick mark, outwards
PAD = 3.5  # between a tick mark and its label
FONT = 9.0  # ticks and axis labels
SMALL = 8.0  # legend and annotations
CHAR = 0.6  # an average character's width, in ems: enough room for the labels' text
_STEPS = (1.0, 2.0, 2.5, 5.0, 10.0)
_WHOLE_STEPS = (1.0, 2.0, 5.0, 10.0)


def number(value: float) -> str:
    """A coordinate as SVG text: at most two decimals, no trailing zeros (``12.5``, ``3``)."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def text_width(text: str, size: float) -> float:
    """About the width of ``text`` at font size ``size``: to make room, not to measure."""
    return len(text) * CHAR * size


def nice_ticks(low: float, high: float, most: int, *, whole: bool = False) -> list[float]:
    """Ticks between ``low`` and ``high`` at a round step (1, 2, 2.5 or 5 times a power of
    ten; whole numbers only with ``whole``): the smallest step that gives at most ``most``
    intervals, as matplotlib's ``MaxNLocator`` chooses."""
    span = high - low
    if span <= 0 or most < 1:
        return [low]
    raw = span / most
    scale = 10.0 ** math.floor(math.log10(raw))
    steps = _WHOLE_STEPS if whole else _STEPS
    for power in (scale, scale * 10):
        for step in (s * power for s in steps):
            if whole and step < 1:
                continue
            first, last = math.ceil(low / step - 1e-9), math.floor(high / step + 1e-9)
            if last - first <= most:
                return [round(n * step, 10) for n in range(first, last + 1)]
    return [low, high]


def tick_label(value: float) -> str:
    """A tick's number as the axis shows it: ``20``, ``2.5``."""
    return f"{value:.6g}"


@dataclass(frozen=True)
class Scale:
    """Data values from ``low`` to ``high`` onto points from ``start`` to ``end``."""

    low: float
    high: float
    start: float
    end: float

    def __call__(self, value: float) -> float:
        span = self.high - self.low
        return self.start + (value - self.low) * (self.end - self.start) / (span or 1.0)

    @property
    def length(self) -> float:
        return abs(self.end - self.start)


@dataclass(frozen=True)
class LegendEntry:
    """A legend's line: a filled square (``kind`` ``patch``) or a line (``line``, optionally
    dashed, with a ``marker`` in its middle) in ``colour``, and its label."""

    label: str
    colour: str
    kind: str = "patch"
    dashes: str | None = None
    marker: bool = False
    width: float = 1.6
    opacity: float | None = None


@dataclass
class Plot:
    """A chart of ``width`` x ``height`` points whose plot area leaves the margins ``left``,
    ``right``, ``top`` and ``bottom``; data ``x`` and ``y`` ranges give its scales."""

    width: float
    height: float
    x: tuple[float, float]
    y: tuple[float, float]
    left: float = 44.0
    right: float = 10.0
    top: float = 10.0
    bottom: float = 40.0
    ink: str = "#000000"  # text, ticks
    spine: str = "#808080"  # the axes' lines
    elements: list[str] = field(default_factory=list)

    @property
    def sx(self) -> Scale:
        return Scale(self.x[0], self.x[1], self.left, self.width - self.right)

    @property
    def sy(self) -> Scale:
        return Scale(self.y[0], self.y[1], self.height - self.bottom, self.top)

    # -- data --------------------------------------------------------------------------------

    def bars(
        self, centres: Sequence[float], heights: Sequence[float], width: float, colour: str
    ) -> None:
        """One bar from 0 to each height (none for 0), ``width`` in data units, centred."""
        sx, sy = self.sx, self.sy
        base = sy(0)
        parts = []
        for centre, value in zip(centres, heights, strict=True):
            if not value:
                continue
            x0, x1 = sx(centre - width / 2), sx(centre + width / 2)
            top = sy(value)
            parts.append(f"M{number(x0)} {number(base)}V{number(top)}H{number(x1)}V{number(base)}Z")
        if parts:
            self.elements.append(f'<path d="{"".join(parts)}" fill="{colour}"/>')

    def steps(self, edges: Sequence[float], heights: Sequence[float], colour: str) -> None:
        """A filled step outline over ``edges`` (one more than ``heights``), from 0."""
        sx, sy = self.sx, self.sy
        base = sy(0)
        path = [f"M{number(sx(edges[0]))} {number(base)}"]
        for right, value in zip(edges[1:], heights, strict=True):
            path.append(f"V{number(sy(value))}H{number(sx(right))}")
        path.append(f"V{number(base)}Z")
        if any(heights):
            self.elements.append(f'<path d="{"".join(path)}" fill="{colour}"/>')

    def line(
        self,
        xs: Sequence[float],
        ys: Sequence[float],
        colour: str,
        *,
        width: float = 1.6,
        dashes: str | None = None,
        opacity: float | None = None,
        marker: float = 0.0,
    ) -> None:
        """A line through the points, broken where a value is NaN (a gap); ``marker``: the
        radius of a dot on each point."""
        sx, sy = self.sx, self.sy
        runs: list[list[tuple[float, float]]] = [[]]
        for x, y in zip(xs, ys, strict=True):
            if y != y:  # NaN
                runs.append([])
            else:
                runs[-1].append((sx(x), sy(y)))
        style = f'fill="none" stroke="{colour}" stroke-width="{number(width)}"'
        if dashes:
            style += f' stroke-dasharray="{dashes}"'
        if opacity is not None:
            style += f' stroke-opacity="{number(opacity)}"'
        for run in runs:
            if len(run) > 1:
                points = " ".join(f"{number(x)},{number(y)}" for x, y in run)
                self.elements.append(f'<polyline points="{points}" {style}/>')
        if marker:
            dots = [point for run in runs for point in run]
            self.dots(dots, marker, colour)

    def dots(
        self,
        points: Iterable[tuple[float, float]],
        radius: float,
        colour: str,
        *,
        edge: str | None = None,
        edge_width: float = 0.0,
    ) -> None:
        """Filled circles at points (already in points, not data)."""
        stroke = f' stroke="{edge}" stroke-width="{number(edge_width)}"' if edge else ""
        for x, y in points:
            self.elements.append(
                f'<circle cx="{number(x)}" cy="{number(y)}" r="{number(radius)}" '
                f'fill="{colour}"{stroke}/>'
            )

    def vline(self, x: float, colour: str, *, width: float, dashes: str | None = None) -> None:
        """A vertical line across the plot area at data ``x``."""
        at = number(self.sx(x))
        dash = f' stroke-dasharray="{dashes}"' if dashes else ""
        self.elements.append(
            f'<line x1="{at}" y1="{number(self.top)}" x2="{at}" '
            f'y2="{number(self.height - self.bottom)}" stroke="{colour}" '
            f'stroke-width="{number(width)}"{dash}/>'
        )

    def text(
        self,
        x: float,
        y: float,
        text: str,
        *,
        size: float = FONT,
        anchor: str = "start",
        colour: str | None = None,
        rotate: float = 0.0,
    ) -> None:
        """``text`` with its baseline at (``x``, ``y``) points, in ``colour`` (default: the
        plot's ink); ``rotate`` in degrees."""
        turn = f' transform="rotate({number(rotate)} {number(x)} {number(y)})"' if rotate else ""
        self.elements.append(
            f'<text x="{number(x)}" y="{number(y)}" font-size="{number(size)}" '
            f'text-anchor="{anchor}" fill="{colour or self.ink}"{turn}>{escape(text)}</text>'
        )

    # -- axes --------------------------------------------------------------------------------

    def axes(
        self,
        *,
        xticks: Sequence[tuple[float, str]],
        yticks: Sequence[tuple[float, str]],
        xlabel: str = "",
        ylabel: str = "",
        rotate_x: bool = False,
    ) -> None:
        """The left and bottom spines, ticks and their labels; x labels turned 45 degrees with
        ``rotate_x`` (dates)."""
        sx, sy = self.sx, self.sy
        bottom, left = self.height - self.bottom, self.left
        marks = [f"M{number(sx(v))} {number(bottom)}v{number(TICK)}" for v, _ in xticks]
        marks += [f"M{number(left)} {number(sy(v))}h{number(-TICK)}" for v, _ in yticks]
        if marks:
            self.elements.append(
                f'<path d="{"".join(marks)}" stroke="{self.ink}" stroke-width="0.8"/>'
            )
        self.elements.append(
            f'<path d="M{number(left)} {number(self.top)}V{number(bottom)}'
            f'H{number(self.width - self.right)}" fill="none" stroke="{self.spine}" '
            'stroke-width="0.8" stroke-linecap="square"/>'
        )
        for value, label in yticks:
            self.text(left - TICK - PAD, sy(value) + FONT * 0.35, label, anchor="end")
        below = bottom + TICK + PAD
        for value, label in xticks:
            if rotate_x:
                at = sx(value)
                self.text(at + 3, below + 3, label, anchor="end", rotate=-45)
            else:
                self.text(sx(value), below + FONT * 0.8, label, anchor="middle")
        if xlabel:
            centre = (left + self.width - self.right) / 2
            self.text(centre, below + FONT * 2.1, xlabel, anchor="middle")
        if ylabel:
            middle = (self.top + bottom) / 2
            self.text(FONT * 1.3, middle, ylabel, anchor="middle", rotate=-90)

    def legend(self, entries: Sequence[LegendEntry], x: float, y: float, *, across: bool) -> None:
        """The entries from (``x``, ``y``), the middle of the first handle: across in one row,
        else one under the other."""
        handle = 2 * SMALL
        for entry in entries:
            middle = x + handle / 2
            if entry.kind == "patch":
                self.elements.append(
                    f'<rect x="{number(x)}" y="{number(y - 0.35 * SMALL)}" '
                    f'width="{number(handle)}" height="{number(0.7 * SMALL)}" '
                    f'fill="{entry.colour}"/>'
                )
            else:
                dash = f' stroke-dasharray="{entry.dashes}"' if entry.dashes else ""
                fade = f' stroke-opacity="{number(entry.opacity)}"' if entry.opacity else ""
                self.elements.append(
                    f'<line x1="{number(x)}" y1="{number(y)}" x2="{number(x + handle)}" '
                    f'y2="{number(y)}" stroke="{entry.colour}" '
                    f'stroke-width="{number(entry.width)}"{dash}{fade}/>'
                )
                if entry.marker:
                    self.dots([(middle, y)], 2.0, entry.colour)
            label_x = x + handle + 0.8 * SMALL
            self.text(label_x, y + SMALL * 0.35, entry.label, size=SMALL)
            if across:
                x = label_x + text_width(entry.label, SMALL) + 2 * SMALL
            else:
                y += 1.5 * SMALL

    def svg(self) -> str:
        """The chart as an inline ``<svg>`` element."""
        head = (
            f'<svg role="img" xmlns="http://www.w3.org/2000/svg" width="{number(self.width)}pt" '
            f'height="{number(self.height)}pt" viewBox="0 0 {number(self.width)} '
            f'{number(self.height)}" stroke-linejoin="round">'
        )
        return head + "".join(self.elements) + "</svg>\n"
