"""matplotlib figures as inline SVG, for the threshold chart (twin axes, hatching).

Figures are built as :class:`matplotlib.figure.Figure` objects on the Agg canvas, never through
``pyplot``: no global figure registry, nothing left open, and safe from any thread (the review
app draws it in a request). :func:`chart` is the one way to make a figure; it applies the style
and returns the SVG text, its ids prefixed with the chart's name so that it can share a page.
The colours are the reports' (:mod:`auditor.reports.charts`).
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import matplotlib
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.typing import RcKeyType

from auditor.reports.charts import INK, MUTED

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
