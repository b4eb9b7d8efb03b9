import math
from datetime import date, time

import pytest

from auditor.audit.rules import (
    MIN_SPREAD,
    FrameOutcome,
    Rules,
    TillCheck,
    age_on,
    combine_estimates,
    judge_sale,
    probability_under,
    within_legal_hours,
)
from auditor.settings import AuditSettings
from auditor.vocabulary import AgeCheck, FlagKind
from model.calibration import Calibration, read_calibration

RULES = Rules(age_threshold=25, legal_hours_start=time(8), legal_hours_end=time(23))
NOON = time(12)


def face(age: float, spread: float = 3.0) -> FrameOutcome:
    return FrameOutcome("estimated", age, spread)


NO_FACE = FrameOutcome("no_face")
BAD = FrameOutcome("unreadable_frame")


@pytest.mark.parametrize(
    "ages,spreads,age,spread",
    [
        ([30], [4], 30, 4),
        # equal spreads: the plain mean; the spread grows with the disagreement
        ([20, 30], [5, 5], 25, math.sqrt(25 + 25)),
        ([27, 27, 27], [2, 2, 2], 27, 2),
        # the sharper frame counts four times as much (spread half as wide)
        ([20, 40], [2, 4], (20 * 0.25 + 40 * 0.0625) / 0.3125, None),
        # spreads under the floor are taken as the floor
        ([22, 24], [0, 0], 23, math.sqrt(MIN_SPREAD**2 + 1)),
        ([22], [0.2], 22, MIN_SPREAD),
    ],
)
def test_combine_estimates(ages, spreads, age, spread):
    found_age, found_spread = combine_estimates(ages, spreads)
    assert found_age == pytest.approx(age)
    if spread is not None:
        assert found_spread == pytest.approx(spread)
    assert found_spread >= min(max(s, MIN_SPREAD) for s in spreads)


def test_combine_estimates_needs_pairs():
    with pytest.raises(ValueError):
        combine_estimates([], [])
    with pytest.raises(ValueError):
        combine_estimates([20, 30], [2])


@pytest.mark.parametrize(
    "local,start,end,legal",
    [
        (time(12), time(8), time(23), True),
        (time(8), time(8), time(23), True),  # the start is in
        (time(23), time(8), time(23), False),  # the end is out
        (time(22, 59, 59), time(8), time(23), True),
        (time(23, 30), time(8), time(23), False),
        (time(7, 59), time(8), time(23), False),
        (time(0, 30), time(8), time(23), False),
        # hours passing midnight: 06:00 to 02:00
        (time(1), time(6), time(2), True),
        (time(23), time(6), time(2), True),
        (time(2), time(6), time(2), False),
        (time(4), time(6), time(2), False),
        (time(6), time(6), time(2), True),
    ],
)
def test_within_legal_hours(local, start, end, legal):
    assert within_legal_hours(local, start, end) is legal


# fmt: off
@pytest.mark.parametrize(
    "frames,local,flags,age,read,faces,evidence",
    [
        # clean: one face over the threshold, by day
        ([face(40)], NOON, "", 40, 1, 1, {}),
        # under the threshold
        ([face(19)], NOON, "under_age_threshold", 19, 1, 1, {"under_age_threshold": 0}),
        # the threshold itself is not under it
        ([face(25)], NOON, "", 25, 1, 1, {}),
        # no frame in the window
        ([], NOON, "no_frame", None, 0, 0, {"no_frame": None}),
        # frames, none readable
        ([BAD, BAD], NOON, "unreadable_frame", None, 0, 0, {"unreadable_frame": 0}),
        # readable frames without a face; an unreadable one beside them changes nothing
        ([NO_FACE], NOON, "no_face", None, 1, 0, {"no_face": 0}),
        ([BAD, NO_FACE, BAD], NOON, "no_face", None, 1, 0, {"no_face": 1}),
        # judged on the good frames only
        ([BAD, face(20), NO_FACE], NOON, "under_age_threshold", 20, 2, 1,
         {"under_age_threshold": 1}),
        ([BAD, face(30)], NOON, "", 30, 1, 1, {}),
        # the evidence is the sharpest face, the nearest on a tie
        ([face(20, 6), face(22, 2), face(21, 2)], NOON, "under_age_threshold", None, 3, 3,
         {"under_age_threshold": 1}),
        # frames disagree: the weighted mean decides
        ([face(20, 2), face(40, 8)], NOON, "under_age_threshold", None, 2, 2,
         {"under_age_threshold": 0}),
        # outside legal hours, alone and with others
        ([face(40)], time(23, 30), "outside_legal_hours", 40, 1, 1, {"outside_legal_hours": 0}),
        ([face(18)], time(6), "under_age_threshold;outside_legal_hours", 18, 1, 1,
         {"under_age_threshold": 0, "outside_legal_hours": 0}),
        ([], time(23, 30), "no_frame;outside_legal_hours", None, 0, 0,
         {"no_frame": None, "outside_legal_hours": None}),
        ([NO_FACE, face(50, 4)], time(23, 30), "outside_legal_hours", 50, 2, 1,
         {"outside_legal_hours": 1}),
        ([BAD], time(23, 30), "unreadable_frame;outside_legal_hours", None, 0, 0,
         {"unreadable_frame": 0, "outside_legal_hours": 0}),
    ],
)
# fmt: on
def test_judge_sale(frames, local, flags, age, read, faces, evidence):
    verdict = judge_sale(frames, local, RULES)
    assert verdict.flag_text == flags
    if age is not None:
        assert verdict.estimated_age == pytest.approx(age)
    assert (verdict.estimated_age is None) == (faces == 0)
    assert (verdict.age_spread is None) == (faces == 0)
    assert verdict.frames_matched == len(frames)
    assert (verdict.frames_read, verdict.faces_found) == (read, faces)
    assert verdict.evidence == evidence


def test_flags_come_in_a_fixed_order():
    verdict = judge_sale([face(10)], time(3), RULES)
    assert list(verdict.flags) == [k for k in FlagKind if k in verdict.flags]


@pytest.mark.parametrize(
    "outcome",
    [
        dict(outcome="estimated"),
        dict(outcome="estimated", age=20.0),
        dict(outcome="no_face", age=20.0, spread=1.0),
        dict(outcome="blurry"),
    ],
)
def test_frame_outcomes_are_checked(outcome):
    with pytest.raises(ValueError):
        FrameOutcome(**outcome)


def test_rules_from_settings():
    audit = AuditSettings(age_threshold=21, legal_hours_start=time(6), legal_hours_end=time(22))
    assert Rules.from_settings(audit) == Rules(21, time(6), time(22))


@pytest.mark.parametrize(
    "frames, local, flags, evidence",
    [
        ([face(40)], NOON, "pos_error", {"pos_error": 0}),
        ([], NOON, "no_frame;pos_error", {"no_frame": None, "pos_error": None}),
        ([face(18)], time(6), "under_age_threshold;outside_legal_hours;pos_error",
         {"under_age_threshold": 0, "outside_legal_hours": 0, "pos_error": 0}),
    ],
)
def test_a_sale_with_pos_errors_is_flagged_and_names_them(frames, local, flags, evidence):
    problems = ["sales.csv:3: quantity: not a number: '1,0'", "sales.csv:4: sku: missing"]
    verdict = judge_sale(frames, local, RULES, problems)
    assert verdict.flag_text == flags
    assert verdict.evidence == evidence
    assert verdict.details == {"pos_error": "\n".join(problems)}
    assert judge_sale(frames, local, RULES).details == {}


# -- the till's age check ------------------------------------------------------------------------

SALE_DAY = date(2026, 6, 15)
CHECKS = [None, AgeCheck.NONE, AgeCheck.VISUAL, AgeCheck.ID_CHECKED, AgeCheck.ID_SCANNED]
BIRTHS = {  # age on SALE_DAY
    "no birth date": None,
    "16": date(2010, 1, 1),
    "19": date(2007, 2, 3),
    "20, 21 tomorrow": date(2005, 6, 16),
    "21 today": date(2005, 6, 15),
    "30": date(1996, 3, 1),
}
FACES = {
    "no face": [NO_FACE],
    "clearly 14": [face(14, 1.5)],
    "about 22": [face(22, 3)],
    "clearly 40": [face(40, 3)],
}


def expected_kinds(check, birth, frames, legal_age):
    """The rules as the issue states them, written out case by case."""
    kinds = set()
    age = None if frames[0].age is None else frames[0].age
    years = None if birth is None else age_on(birth, SALE_DAY)
    if years is not None and years < legal_age:
        kinds.add("birth_date_under_age")
    elif years is not None and age is not None and age < legal_age - 3:
        kinds.add("id_contradicts_face")  # a clear minor's face against an adult ID
    if age is not None and age < 25:
        recorded = check is not None or birth is not None
        id_seen = birth is not None or check in (AgeCheck.ID_CHECKED, AgeCheck.ID_SCANNED)
        if not recorded:
            kinds.add("under_age_threshold")
        elif not id_seen:
            kinds.add("no_id_check")
    if age is None:
        kinds.add("no_face")
    return kinds


@pytest.mark.parametrize("legal_age", [18, 21])
@pytest.mark.parametrize("face_name", list(FACES))
@pytest.mark.parametrize("birth_name", list(BIRTHS))
@pytest.mark.parametrize("check", CHECKS)
def test_every_combination_of_check_birth_date_estimate_and_legal_age(
    check, birth_name, face_name, legal_age
):
    rules = Rules(25, time(8), time(23), legal_age=legal_age)
    birth, frames = BIRTHS[birth_name], FACES[face_name]
    verdict = judge_sale(frames, NOON, rules, till=TillCheck(check, birth, SALE_DAY))
    assert set(verdict.flags) == expected_kinds(check, birth, frames, legal_age)
    under = frames[0].age is not None and frames[0].age < 25
    id_seen = birth is not None or (check is not None and check.saw_id)
    assert verdict.challenged == (under and id_seen)
    if frames[0].age is None:
        assert verdict.p_under_legal is None and verdict.p_under_threshold is None
    else:
        assert 0 <= verdict.p_under_legal <= verdict.p_under_threshold <= 1
    if FlagKind.BIRTH_DATE_UNDER_AGE in verdict.flags:
        assert f"under the legal age {legal_age}" in verdict.details["birth_date_under_age"]


def test_without_a_till_record_the_verdict_is_as_before():
    for frames in FACES.values():
        assert judge_sale(frames, NOON, RULES).flags == judge_sale(
            frames, NOON, RULES, till=TillCheck(None, None, SALE_DAY)
        ).flags


def test_age_on_counts_completed_years():
    assert age_on(date(2008, 6, 15), date(2026, 6, 15)) == 18
    assert age_on(date(2008, 6, 16), date(2026, 6, 15)) == 17
    assert age_on(date(2008, 2, 29), date(2026, 2, 28)) == 17
    assert age_on(date(2008, 2, 29), date(2026, 3, 1)) == 18


def test_frames_mix_their_calibrated_probabilities_with_their_weights():
    plain = Calibration()
    assert probability_under([20], [2], 20, plain) == pytest.approx(0.5)
    assert probability_under([18], [2], 20, plain) == pytest.approx(0.8413, abs=1e-4)
    older = Calibration(bias=2.0)  # a model that runs 2 years old
    assert probability_under([22], [2], 20, older) == pytest.approx(0.5)
    # a sharp 15 and a blurred 30: weights 1 and 1/16
    p = probability_under([15, 30], [1, 4], 18, plain)
    w = [1.0, 1 / 16]
    each = plain.p_under([15, 30], [1, 4], 18)
    assert p == pytest.approx((w[0] * each[0] + w[1] * each[1]) / sum(w))
    assert 0.9 < p < 1
    with pytest.raises(ValueError):
        probability_under([], [], 18, plain)


def test_the_rules_take_the_calibration_of_the_model_card(tmp_path):
    card = {"calibration": {"method": "gaussian", "bias": -0.9, "scale": 0.9, "floor": 1.0}}
    calibration = read_calibration(card)
    rules = Rules(25, time(8), time(23), calibration=calibration)
    verdict = judge_sale([face(17, 2)], NOON, rules)
    assert verdict.p_under_legal == pytest.approx(float(calibration.p_under(17, 2, 18)))
    assert verdict.p_under_legal < judge_sale([face(17, 2)], NOON, RULES).p_under_legal


def test_an_id_contradicting_the_face_needs_the_set_probability():
    frames = [face(16.5, 1.5)]
    till = TillCheck(AgeCheck.ID_SCANNED, date(2007, 6, 15), SALE_DAY)  # 19 on the day
    strict = Rules(25, time(8), time(23), contradiction=0.99)
    loose = Rules(25, time(8), time(23), contradiction=0.7)
    p = judge_sale(frames, NOON, loose, till=till).p_under_legal
    assert 0.7 < p < 0.99
    assert "id_contradicts_face" in judge_sale(frames, NOON, loose, till=till).flags
    assert "id_contradicts_face" not in judge_sale(frames, NOON, strict, till=till).flags
    detail = judge_sale(frames, NOON, loose, till=till).details["id_contradicts_face"]
    assert detail.startswith("birth date 2007-06-15 says 19; the face is under 18")
    assert detail.endswith("19 or older with probability 0.05")


@pytest.mark.parametrize(
    ("estimate", "born", "contradicts"),
    [
        (16.0, date(2000, 1, 1), True),  # P(under 18) 0.79, P(26 or older) 0.00
        (16.0, date(2007, 1, 1), False),  # the same face, an ID of 19: P(19 or older) 0.12
        (18.3, date(2000, 1, 1), False),  # P(under 18) 0.45: not more likely than not a minor
        (14.0, date(2007, 1, 1), True),  # P(under 18) 0.95 is enough whatever the ID says
    ],
)
def test_a_face_that_rules_out_the_ids_age_contradicts_it_when_a_minor_is_likely(
    estimate, born, contradicts
):
    till = TillCheck(AgeCheck.ID_SCANNED, born, SALE_DAY)
    rules = Rules(25, time(8), time(23), calibration=Calibration())
    verdict = judge_sale([face(estimate, 2.5)], NOON, rules, till=till)
    years = age_on(born, SALE_DAY)
    p_id = 1 - probability_under([estimate], [2.5], years, Calibration())
    assert (verdict.p_under_legal >= 0.9 or (verdict.p_under_legal > 0.5 and p_id <= 0.1)) == (
        contradicts
    )
    assert ("id_contradicts_face" in verdict.flags) == contradicts
