"""The charts as drawn: each concept in its one colour in every chart, the chain's average
dashed in the rate's colour, tonight's point labelled, the same figures giving the same SVG.
A legend entry repeats its series' style, so a style is drawn when it is there twice."""

from __future__ import annotations

import re
from collections import Counter
from datetime import date, timedelta

from auditor.reports import charts
from auditor.reports.charts import INK, PALETTE
from auditor.reports.figures import Challenges, Hourly, TrendPoint

DAY = date(2024, 3, 1)
STYLE = re.compile(r'style="([^"]*)"')


def styles(svg: str) -> list[dict[str, str]]:
    """Each element's ``style`` attribute as a dict."""
    found = []
    for text in STYLE.findall(svg):
        pairs = (part.split(":", 1) for part in text.split(";") if ":" in part)
        found.append({k.strip(): v.strip() for k, v in pairs})
    return found


def strokes(svg: str) -> set[tuple[str, bool]]:
    """(colour, dashed) of the lines drawn besides their legend's sample."""
    found = Counter(
        (s["stroke"], "stroke-dasharray" in s)
        for s in styles(svg)
        if s.get("fill") == "none" and "stroke" in s
    )
    return {style for style, n in found.items() if n >= 2}


def fills(svg: str, legend: bool = True) -> set[str]:
    """Colours of the shapes filled (besides their legend's sample, with a ``legend``)."""
    found = Counter(s["fill"] for s in styles(svg) if s.get("fill", "none") != "none")
    return {colour for colour, n in found.items() if n >= 1 + legend}


def trend(nights: int = 30, flag: float = 0.2, under: float = 0.05) -> list[TrendPoint]:
    return [
        TrendPoint(DAY - timedelta(days=n), 100, flag + n / 1000, under, Challenges(8 + n % 3, 10))
        for n in range(nights, -1, -1)
    ]


def test_the_trend_draws_each_rate_in_its_colour_and_the_chains_dashed_in_the_same() -> None:
    store, chain = trend(), trend(flag=0.1, under=0.02)
    svg = charts.nightly_trend(store, chain)
    assert svg is not None
    flagged, under_age = PALETTE["flagged"], PALETTE["under_age"]
    assert {(flagged, False), (flagged, True), (under_age, False), (under_age, True)} <= strokes(
        svg
    )
    # tonight's points: labelled with their value, ringed in ink
    assert "tonight 20.0 %" in svg and "tonight 5.0 %" in svg
    assert any(s.get("fill") == flagged and s.get("stroke") == INK for s in styles(svg))
    # no chain given: nothing dashed
    alone = charts.nightly_trend(store)
    assert alone is not None
    assert not any(dashed for _, dashed in strokes(alone))
    # the same figures, the same bytes (a page written again is the same file)
    assert charts.nightly_trend(store, chain) == svg


def test_the_challenge_trend_is_green_with_tonights_rate() -> None:
    svg = charts.challenge_trend(trend(), trend())
    assert svg is not None
    assert {(PALETTE["challenge"], False), (PALETTE["challenge"], True)} <= strokes(svg)
    assert "tonight 80.0 %" in svg  # 8 of 10 due sales checked tonight


def test_bars_share_the_colours_of_the_lines() -> None:
    hours = Hourly(
        sales=[0] * 8 + [10] * 16,
        flagged=[0] * 8 + [3] * 16,
        under_age=[0] * 8 + [1] * 16,
    )
    svg = charts.flags_by_hour(hours)
    assert svg is not None
    assert {PALETTE["sales"], PALETTE["flagged"], PALETTE["under_age"]} <= fills(svg)
    for label in ("alcohol sales", "flagged", "under-age flags"):
        assert label in svg
    assert charts.flags_by_hour(Hourly([0] * 24, [0] * 24, [0] * 24)) is None


def test_the_age_histogram_marks_the_buyers_under_the_threshold() -> None:
    svg = charts.age_histogram([16.5, 22.0, 30.0, 41.0, 55.0], 25)
    assert svg is not None
    assert {PALETTE["sales"], PALETTE["under_age"]} <= fills(svg, legend=False)
    assert "threshold 25" in svg
    assert charts.age_histogram([], 25) is None
