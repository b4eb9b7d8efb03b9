import math

import numpy as np
import pandas as pd
import pytest

from model.metrics import (
    age_band,
    evaluate_predictions,
    flag_rates,
    grouped,
    operating_point,
)


@pytest.mark.parametrize(
    "age,band",
    [
        (0, "0-9"),
        (9.9, "0-9"),
        (10, "10-17"),
        (17, "10-17"),
        (17.5, "10-17"),
        (18, "18-20"),
        (20, "18-20"),
        (21, "21-25"),
        (25, "21-25"),
        (26, "26-40"),
        (40, "26-40"),
        (41, "41-60"),
        (60, "41-60"),
        (61, "61+"),
        (116, "61+"),
    ],
)
def test_age_band(age, band):
    assert age_band(age) == band


def test_age_band_rejects_negative():
    with pytest.raises(ValueError):
        age_band(-1)


@pytest.mark.parametrize(
    "true,pred,expected",
    [
        ([10, 20], [12, 18], {"a": (1, 2.0, 2.0), "b": (1, 2.0, -2.0)}),
        ([30, 30, 30], [33, 27, 30], {"a": (1, 3.0, 3.0), "b": (2, 1.5, -1.5)}),
    ],
)
def test_grouped(true, pred, expected):
    groups = ["a", "b", "b"][: len(true)]
    result = grouped(np.array(true, float), np.array(pred, float), groups)
    assert {k: (v["n"], v["mae"], v["bias"]) for k, v in result.items()} == expected


def test_flag_rates_counts_strictly_under_threshold():
    true = np.array([12, 15, 17, 30, 40, 50, 60])
    pred = np.array([15, 20, 16, 22, 26, 40, 16])
    rows = {r["threshold"]: r for r in flag_rates(true, pred, thresholds=(16, 21, 23))}
    # minors: 15, 20, 16 -> under 16: one; under 21: three
    assert rows[16]["minors_flagged"] == pytest.approx(1 / 3)
    assert rows[21]["minors_flagged"] == pytest.approx(1.0)
    # adults 25+: 22, 26, 40, 16 -> under 16: none; under 23: 22 and 16
    assert rows[16]["adults_flagged"] == 0.0
    assert rows[23]["adults_flagged"] == pytest.approx(0.5)


def test_operating_point_flags_the_asked_share_of_adults():
    true = np.array([15] * 4 + [30] * 10)
    pred = np.array([18, 19, 22, 30] + [20, 24, 25, 26, 27, 28, 29, 30, 31, 32])
    point = operating_point(true, pred, adults_flagged=0.10)
    assert point["threshold"] == pytest.approx(20.0)
    assert point["threshold"] > 20.0  # just above, so the face estimated at 20 is flagged
    assert point["adults_flagged"] == pytest.approx(0.1)
    assert point["minors_flagged"] == pytest.approx(0.5)  # 18 and 19


def test_operating_point_without_minors_is_empty():
    point = operating_point(np.array([30.0, 40.0]), np.array([30.0, 40.0]))
    assert point["threshold"] is None and point["minors_flagged"] is None


def test_evaluate_predictions_hand_computed():
    labels = pd.DataFrame(
        {
            "real_age": [5, 15, 30, 70],
            "gender": pd.array([0, 1, 1, pd.NA], dtype="Int64"),
            "race": pd.array([0, 0, 2, 4], dtype="Int64"),
        }
    )
    pred = np.array([7, 14, 27, 70])
    m = evaluate_predictions(labels, pred)
    assert m["n"] == 4
    assert m["mae"] == pytest.approx((2 + 1 + 3 + 0) / 4)
    assert m["bias"] == pytest.approx((2 - 1 - 3 + 0) / 4)
    assert m["rmse"] == pytest.approx(math.sqrt((4 + 1 + 9) / 4))
    assert m["by_age_band"]["10-17"] == {"n": 1, "mae": 1.0, "bias": -1.0}
    assert m["by_age_band"]["18-20"]["n"] == 0
    assert m["by_gender"]["female"] == {"n": 2, "mae": 2.0, "bias": -2.0}
    assert "None" not in m["by_gender"]
    assert m["by_race"]["White"]["n"] == 2
    assert [r["threshold"] for r in m["thresholds"]] == list(range(16, 31))


def test_evaluate_predictions_rejects_length_mismatch():
    with pytest.raises(ValueError, match="2 labels but 1 predictions"):
        evaluate_predictions(pd.DataFrame({"real_age": [1, 2]}), np.array([1.0]))
