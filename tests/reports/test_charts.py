"""The store page's charts: SVG drawn straight from the figures, the same text every time."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import date, timedelta

import pytest

from auditor.reports.charts import (
    PALETTE,
    age_histogram,
    challenge_trend,
    flags_by_hour,
    nightly_trend,
)
from auditor.reports.figures import Challenges, Hourly, TrendPoint
from auditor.reports.svg import nice_ticks

SVG = "{http://www.w3.org/2000/svg}"
DAY = date(2024, 3, 1)


def parsed(svg: str | None) -> ET.Element:
    assert svg is not None
    root = ET.fromstring(svg)  # well-formed, one element
    assert root.tag == f"{SVG}svg" and root.attrib["role"] == "img"
    return root


def texts(svg: str | None) -> list[str]:
    return [t.text or "" for t in parsed(svg).iter(f"{SVG}text")]


def filled(svg: str | None, colour: str) -> list[ET.Element]:
    return [e for e in parsed(svg).iter() if e.attrib.get("fill") == colour and e.tag != "text"]


def trend(
    rates: list[float | None], challenged: list[int | None] | None = None
) -> list[TrendPoint]:
    """Nights up to DAY with these flag rates (None: no result that night), under-age rates a
    third of them, and ``challenged`` of 100 due."""
    points = []
    for n, flag_rate in enumerate(rates):
        day = DAY - timedelta(days=len(rates) - 1 - n)
        if flag_rate is None:
            points.append(TrendPoint(day, None, None, None))
            continue
        checks = challenged[n] if challenged else None
        points.append(
            TrendPoint(
                day,
                100,
                flag_rate,
                flag_rate / 3,
                Challenges(checks, 100) if checks is not None else Challenges(),
            )
        )
    return points


@pytest.mark.parametrize(
    "low,high,most,whole,ticks",
    [
        (0, 39.9, 9, True, [0, 5, 10, 15, 20, 25, 30, 35]),
        (0, 77.7, 9, True, [0, 10, 20, 30, 40, 50, 60, 70]),
        (0, 2.1, 9, True, [0, 1, 2]),
        (0, 1.0, 9, True, [0, 1]),
        (0, 25.7, 9, False, [0, 5, 10, 15, 20, 25]),
        (0, 105, 9, False, [0, 20, 40, 60, 80, 100]),
        (0, 0.9, 4, False, [0, 0.2, 0.4, 0.6, 0.8]),
        (0, 0.45, 9, False, [0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45]),
        (9.4, 88.6, 9, True, [10, 20, 30, 40, 50, 60, 70, 80]),
    ],
)
def test_ticks_fall_on_round_numbers(
    low: float, high: float, most: int, whole: bool, ticks: list[float]
) -> None:
    assert nice_ticks(low, high, most, whole=whole) == ticks


def test_the_age_histogram_colours_the_ages_under_the_threshold() -> None:
    svg = age_histogram([17.5, 19.2, 19.8, 30.1, 30.5, 41.0], 25)
    root = parsed(svg)
    assert (root.attrib["width"], root.attrib["height"]) == ("432pt", "216pt")
    assert root.attrib["viewBox"] == "0 0 432 216"
    under, over = filled(svg, PALETTE["under_age"]), filled(svg, PALETTE["sales"])
    assert len(under) == len(over) == 1  # one outline each
    words = texts(svg)
    assert {"threshold 25", "estimated age (years)", "alcohol sales"} <= set(words)
    assert [w for w in words if w.isdigit() and int(w) < 10] == ["0", "1", "2"]  # whole counts
    dashed = [e for e in root.iter(f"{SVG}line") if "stroke-dasharray" in e.attrib]
    assert len(dashed) == 1 and dashed[0].attrib["stroke"] == PALETTE["threshold"]


def test_hour_bars_one_per_hour_with_sales_flags_and_under_age_flags() -> None:
    sales, flagged, young = [0] * 24, [0] * 24, [0] * 24
    sales[9], sales[18], sales[22] = 12, 30, 7
    flagged[18], flagged[22] = 5, 7
    young[22] = 2
    svg = flags_by_hour(Hourly(sales, flagged, young))
    for concept, bars in (("sales", 3), ("flagged", 2), ("under_age", 1)):
        (path,) = filled(svg, PALETTE[concept])[:1]
        assert path.attrib["d"].count("M") == bars, concept
    words = texts(svg)
    assert {"alcohol sales", "flagged", "under-age flags", "hour of sale (store time)"} <= set(
        words
    )
    below = [t.text for t in parsed(svg).iter(f"{SVG}text") if t.get("text-anchor") == "middle"]
    assert below == [*(str(h) for h in range(0, 24, 2)), "hour of sale (store time)", "sales"]


def test_a_trend_breaks_at_nights_without_results_and_rings_tonight() -> None:
    rates = [0.2, 0.25, None, 0.1, 0.15, 0.125]
    chain = trend([0.18] * 6)
    svg = nightly_trend(trend(rates), chain)
    root = parsed(svg)
    assert (root.attrib["width"], root.attrib["height"]) == ("907.2pt", "230.4pt")
    flag_lines = [
        p for p in root.iter(f"{SVG}polyline") if p.attrib["stroke"] == PALETTE["flagged"]
    ]
    # the store's line in two pieces around the gap, the chain's whole and dashed
    store = [p for p in flag_lines if "stroke-dasharray" not in p.attrib]
    dashed = [p for p in flag_lines if "stroke-dasharray" in p.attrib]
    assert [len(p.attrib["points"].split()) for p in store] == [2, 3]
    assert [len(p.attrib["points"].split()) for p in dashed] == [6]
    words = texts(svg)
    assert {"tonight 12.5 %", "tonight 4.2 %", "flag rate, chain", "under-age rate"} <= set(words)
    assert words.count("01 Mar") == 1 and "% of alcohol sales" in words
    rings = [c for c in root.iter(f"{SVG}circle") if c.attrib["r"] == "4.5"]
    assert [c.attrib["fill"] for c in rings] == [PALETTE["flagged"], PALETTE["under_age"]]


def test_thirty_one_nights_are_ticked_every_other_night_back_from_tonight() -> None:
    words = texts(nightly_trend(trend([0.1] * 31)))
    dates = [w for w in words if re.fullmatch(r"\d\d [A-Z][a-z]{2}", w)]
    assert len(dates) == 16 and dates[0] == "31 Jan" and dates[-1] == "01 Mar"


def test_the_challenge_trend_runs_from_0_to_100_percent() -> None:
    svg = challenge_trend(trend([0.1, 0.1, 0.1], challenged=[40, 55, 70]))
    words = texts(svg)
    assert {"0", "20", "40", "60", "80", "100"} <= set(words)
    assert "tonight 70.0 %" in words and "% with an ID check recorded" in words
    assert filled(svg, PALETTE["challenge"])  # the ring and the dots


def test_nothing_to_draw_is_no_chart() -> None:
    assert age_histogram([], 25) is None
    assert flags_by_hour(Hourly([0] * 24, [0] * 24, [0] * 24)) is None
    assert nightly_trend(trend([None, None])) is None
    assert challenge_trend(trend([0.1, 0.2])) is None  # no till records age checks


def test_a_chart_depends_on_its_figures_only() -> None:
    """Two stores drawn in turn in one process: each gets the chart it gets drawn alone."""
    first = (trend([0.2, 0.3, 0.1]), Hourly([3] * 24, [1] * 24, [0] * 24), [19.0, 40.0] * 20)
    second = (trend([0.05, None, 0.4]), Hourly([9] * 12 + [0] * 12, [2] * 24, [1] * 24), [60.0])

    def drawn(points: list[TrendPoint], hours: Hourly, ages: list[float]) -> list[str | None]:
        return [
            nightly_trend(points, points),
            challenge_trend(points),
            flags_by_hour(hours),
            age_histogram(ages, 25),
        ]

    alone = drawn(*first)
    other = drawn(*second)
    assert drawn(*first) == alone and drawn(*second) == other
    assert alone != other
