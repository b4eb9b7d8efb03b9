"""Calibrated probabilities of being under an age: the formula, the fit and the measurements,
on synthetic faces whose true probabilities are known."""

import math
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from auditor.audit.photos import face_stage_loader
from auditor.cli import main
from model import AgeModel, Calibration, ModelDirectoryError, read_calibration, read_card
from model.calibration import (
    expected_calibration_error,
    fit_calibration,
    log_loss,
    measure,
    normal_cdf,
    reliability,
)
from model.data import read_sets
from model.evaluate import predict_split, split_spec


def faces(n=3000, *, bias=0.0, scale=1.0, seed=0):
    """Estimates whose true ages follow the calibrated formula exactly: given an estimate, the
    true age is normal around ``age - bias`` with sd ``scale * max(spread, 1)``."""
    rng = np.random.default_rng(seed)
    ages = rng.uniform(8, 45, n)
    spreads = rng.uniform(0.5, 6.0, n)
    true = ages - bias + scale * np.maximum(spreads, 1.0) * rng.standard_normal(n)
    return ages, spreads, true


@pytest.mark.parametrize(
    "calibration,age,spread,limit,expected",
    [
        (Calibration(), 18.0, 2.0, 18, 0.5),
        (Calibration(), 20.0, 2.0, 18, 0.5 * math.erfc(1 / math.sqrt(2))),  # Phi(-1)
        # the bias is taken off the estimate: a model 2 years high, estimating 20, means 18
        (Calibration(bias=2.0, scale=2.0), 20.0, 1.5, 21, 0.5 * math.erfc(-1 / math.sqrt(2))),
        # a spread under the floor counts as the floor: sd = 3 * 1.0
        (Calibration(scale=3.0), 25.0, 0.2, 22, 0.5 * math.erfc(1 / math.sqrt(2))),
        (Calibration(floor=0.5), 25.0, 0.2, 24, 0.5 * math.erfc(2 / math.sqrt(2))),
    ],
)
def test_p_under_is_the_documented_formula(calibration, age, spread, limit, expected):
    p = calibration.p_under(np.array([age]), np.array([spread]), limit)
    assert p.shape == (1,)
    assert p[0] == pytest.approx(expected, rel=1e-12)


def test_p_under_is_vectorised_and_exact_in_the_tails():
    p = Calibration().p_under([10.0, 30.0, 51.0], [1.0, 1.0, 1.0], [21, 21, 21])
    assert p[0] == pytest.approx(1 - 0.5 * math.erfc(11 / math.sqrt(2)))
    assert p[2] == pytest.approx(0.5 * math.erfc(30 / math.sqrt(2)), rel=1e-9)  # ~5e-198
    assert p[1] < 1e-18 and p[2] > 0
    assert normal_cdf(0.0) == 0.5


def test_dict_round_trip_and_the_card():
    calibration = Calibration(bias=1.25, scale=1.4, floor=1.0)
    assert Calibration.from_dict(calibration.to_dict()) == calibration
    card = {"calibration": {"method": "gaussian", "bias": 1.25, "scale": 1.4, "floor": 1.0}}
    assert read_calibration(card) == calibration
    assert read_calibration({"version": "abc"}) == Calibration()
    with pytest.raises(ModelDirectoryError, match="scale: -1.0 is not positive"):
        read_calibration({"calibration": {"bias": 0, "scale": -1}})
    with pytest.raises(ModelDirectoryError, match="method 'isotonic'"):
        read_calibration({"calibration": {"method": "isotonic"}})


def test_a_calibrated_generator_has_an_ece_near_zero_and_fits_the_identity():
    ages, spreads, true = faces()
    for limit in (18, 21, 25):
        p = Calibration().p_under(ages, spreads, limit)
        assert expected_calibration_error(p, true < limit) < 0.03
    fitted = fit_calibration(ages, spreads, true)
    assert fitted.bias == pytest.approx(0.0, abs=0.3)
    assert fitted.scale == pytest.approx(1.0, abs=0.08)


@pytest.mark.parametrize("bias,scale", [(3.0, 1.0), (-2.0, 1.0), (1.0, 1.8)])
def test_a_shifted_or_overconfident_model_is_fitted_back(bias, scale):
    ages, spreads, true = faces(bias=bias, scale=scale, seed=1)
    fitted = fit_calibration(ages, spreads, true)
    assert fitted.bias == pytest.approx(bias, abs=0.3)
    assert fitted.scale == pytest.approx(scale, rel=0.08)
    assert log_loss(fitted, ages, spreads, true) < log_loss(Calibration(), ages, spreads, true)
    # measured on other faces of the same model: calibrated, and the identity far off
    figures = measure(fitted, *faces(bias=bias, scale=scale, seed=2))
    for limit in ("18", "21", "25"):
        assert figures["ece"][limit] < 0.03
        assert figures["ece_uncalibrated"][limit] > 0.04
    assert fitted == fit_calibration(ages, spreads, true)  # deterministic


def test_reliability_table_by_hand():
    p = [0.05, 0.15, 0.12, 0.95, 1.0, 0.5]
    outcome = [0, 1, 0, 1, 1, 0]
    rows = reliability(p, outcome, bins=10)
    assert [r["n"] for r in rows] == [1, 2, 0, 0, 0, 1, 0, 0, 0, 2]
    assert rows[1]["mean_predicted"] == pytest.approx(0.135)
    assert rows[1]["observed"] == 0.5
    assert rows[2]["mean_predicted"] is None and rows[2]["observed"] is None
    assert (rows[9]["lower"], rows[9]["upper"]) == (0.9, 1.0)
    assert rows[9]["mean_predicted"] == pytest.approx(0.975) and rows[9]["observed"] == 1.0
    # ECE: (1 * 0.05 + 2 * 0.365 + 1 * 0.5 + 2 * 0.025) / 6
    expected = (0.05 + 2 * 0.365 + 0.5 + 2 * 0.025) / 6
    assert expected_calibration_error(p, outcome, bins=10) == pytest.approx(expected)
    assert expected_calibration_error([0.3, 0.3], [1, 0], bins=1) == pytest.approx(0.2)


@pytest.mark.parametrize(
    "p,outcome,message",
    [([0.2], [1, 0], "1 probabilities for 2 outcomes"), ([1.2], [1], "lie in"), ([], [], "no ")],
)
def test_bad_probabilities_are_refused(p, outcome, message):
    with pytest.raises(ValueError, match=message):
        expected_calibration_error(p, outcome)


def test_fit_refuses_mismatched_or_missing_ages():
    with pytest.raises(ValueError, match="3 ages, 2 spreads and 3 true ages"):
        fit_calibration([1, 2, 3], [1, 1], [1, 2, 3])
    with pytest.raises(ValueError, match="numbers"):
        fit_calibration([1.0], [1.0], [float("nan")])


def test_calibrate_command_records_a_fitted_calibration(tiny_model_dir, faces_set, tmp_path):
    """A real (tiny) model and real faces through the audit's face stage: the card gets a
    calibration fitted on the validation split that does no worse there than the identity."""
    model_dir = shutil.copytree(tiny_model_dir, tmp_path / "model")
    before = read_card(model_dir)
    args = ["model", "calibrate", "--model", model_dir, "--data", faces_set, "--find-faces"]
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    assert "ECE on the test split" in result.output
    card = read_card(model_dir)
    section = card["calibration"]
    calibration = read_calibration(card)
    assert math.isfinite(calibration.bias) and 0 < calibration.scale < math.inf
    assert calibration.floor == 1.0 and section["method"] == "gaussian"
    assert section["faces"] == "face stage (blazeface-short detector, crop margin 0.01)"
    for key in ("ece", "ece_uncalibrated"):
        assert set(section[key]) == {"18", "21", "25"}
        assert all(0 <= v <= 1 for v in section[key].values())
    assert [len(section["reliability"][k]) for k in ("18", "21", "25")] == [10, 10, 10]
    assert {k: v for k, v in card.items() if k != "calibration"} == {
        k: v for k, v in before.items() if k != "calibration"
    }

    # The validation split read again through the same face stage, scored independently.
    age_model = AgeModel.load(model_dir)
    val, _ = predict_split(
        age_model,
        [faces_set],
        split="val",
        spec=split_spec(age_model),
        load_faces=face_stage_loader(margin=0.01),
    )
    assert section["fitted_on"] == f"validation split ({len(val)} faces)"
    test_split = read_sets([faces_set], split_spec(age_model)).query("split == 'test'")
    assert section["measured_on"].startswith("test split (")
    assert int(section["measured_on"].split("(")[1].split()[0]) <= len(test_split)
    arrays = [val[c].to_numpy(float) for c in ("predicted_age", "spread", "real_age")]
    assert log_loss(calibration, *arrays) <= log_loss(Calibration(), *arrays) + 1e-9
    assert section["log_loss"]["validation"]["calibrated"] == pytest.approx(
        log_loss(calibration, *arrays)
    )
