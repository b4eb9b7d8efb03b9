"""Matplotlib figures as inline SVG, so a page is one self-contained file."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def figure(width: float = 6.0, height: float = 3.5, *, ncols: int = 1, sharey: bool = False):
    """A new figure and its axes (a row of ``ncols``) on the Agg backend; pass the figure to
    :func:`to_svg`."""
    return plt.subplots(1, ncols, figsize=(width, height), sharey=sharey)


def to_svg(fig) -> str:
    """The figure as an inline ``<svg>`` element; the figure is closed."""
    try:
        fig.tight_layout()
        buffer = io.StringIO()
        fig.savefig(buffer, format="svg")
    finally:
        plt.close(fig)
    svg = buffer.getvalue()
    return svg[svg.index("<svg") :]
