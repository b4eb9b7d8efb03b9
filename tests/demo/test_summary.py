"""Setting the verdicts against the demo's truth (pure)."""

from __future__ import annotations

from auditor.demo.summary import compare, describe


def truth_row(
    receipt: str,
    camera: str,
    age: int,
    expected: str,
    cashier: str = "C01",
    *,
    check: str = "",
    born: str = "",
    borrowed: bool = False,
) -> dict:
    return {
        "store_id": "S1",
        "receipt_id": receipt,
        "cashier_id": cashier,
        "cashier_name": f"Cashier {cashier}",
        "camera": camera,
        "shopper_age": str(age),
        "legal_age": "18",
        "age_check": check,
        "birth_date": born,
        "borrowed_id": "true" if borrowed else "false",
        "expected_flags": expected,
    }


TRUTH = [
    truth_row("1", "face", 15, "under_age_threshold", "C02"),
    truth_row("2", "face", 16, "under_age_threshold", "C02"),
    truth_row("3", "two_faces", 40, ""),
    truth_row("4", "no_frame", 30, "no_frame"),
    truth_row("5", "no_face", 30, "no_face;outside_legal_hours"),
    truth_row("6", "corrupt", 50, "unreadable_frame"),
    truth_row("7", "face", 22, "under_age_threshold"),
]
VERDICTS = [
    {"store_id": "S1", "receipt_id": "1", "flags": "under_age_threshold"},
    {"store_id": "S1", "receipt_id": "2", "flags": ""},
    {"store_id": "S1", "receipt_id": "3", "flags": ["under_age_threshold"]},
    {"store_id": "S1", "receipt_id": "4", "flags": "no_frame"},
    {"store_id": "S1", "receipt_id": "5", "flags": "outside_legal_hours"},
    {"store_id": "S1", "receipt_id": "6", "flags": "unreadable_frame;outside_legal_hours"},
    {"store_id": "S2", "receipt_id": "9", "flags": ""},
]

# A till that records age checks: each new flag kind, right and wrong.
CHECKED_TRUTH = [
    truth_row("1", "face", 15, "no_id_check", "C02", check="none"),  # caught
    truth_row("2", "face", 16, "no_id_check", "C02", check="visual"),  # missed
    truth_row("3", "face", 22, "", check="id_scanned", born="2002-01-01"),  # challenged
    truth_row("4", "face", 30, "", check="none"),  # estimated young: a false no_id_check
    truth_row(
        "5", "no_frame", 16, "birth_date_under_age;no_frame", check="id_checked", born="2008-01-01"
    ),
    truth_row(
        "6",
        "face",
        15,
        "id_contradicts_face",
        "C03",
        check="id_scanned",
        born="1999-01-01",
        borrowed=True,
    ),  # caught
    truth_row(
        "7",
        "face",
        16,
        "id_contradicts_face",
        "C03",
        check="id_checked",
        born="1998-01-01",
        borrowed=True,
    ),  # missed: challenged
    truth_row("8", "face", 45, "", check="visual"),
]
CHECKED_VERDICTS = [
    {"store_id": "S1", "receipt_id": "1", "flags": "no_id_check"},
    {"store_id": "S1", "receipt_id": "2", "flags": ""},
    {"store_id": "S1", "receipt_id": "3", "flags": "", "challenged": True},
    {"store_id": "S1", "receipt_id": "4", "flags": "no_id_check"},
    {"store_id": "S1", "receipt_id": "5", "flags": "birth_date_under_age;no_frame"},
    {"store_id": "S1", "receipt_id": "6", "flags": "id_contradicts_face", "challenged": True},
    {"store_id": "S1", "receipt_id": "7", "flags": "", "challenged": True},
    {"store_id": "S1", "receipt_id": "8", "flags": ""},
]


def test_compare() -> None:
    result = compare(TRUTH, VERDICTS)
    assert (result.sales, result.audited, result.unexpected) == (7, 6, 1)
    assert result.not_audited == ["S1/7"]
    assert result.flagged == 5
    assert result.flags["under_age_threshold"] == 2 and result.flags["outside_legal_hours"] == 2
    assert result.differences == {
        "no_frame": 0,
        "unreadable_frame": 0,
        "outside_legal_hours": 1,  # raised on 6, not expected there
    }
    assert (result.empty_checkouts, result.empty_flagged) == (1, 0)
    assert (result.faces_shown, result.faces_missed) == (3, 0)
    assert result.minors == (2, 1)
    assert result.under_age_by_group["35 and over"] == (1, 1)
    top = result.cashiers[0]
    assert (top.cashier_id, top.sales, top.minors, top.under_age_flags) == ("C02", 2, 2, 1)
    assert not result.checks.recorded
    assert (result.checks.to_review, result.checks.to_review_today) == (2, 2)


def test_compare_the_age_checks() -> None:
    result = compare(CHECKED_TRUTH, CHECKED_VERDICTS)
    checks = result.checks
    assert checks.checks == {"none": 2, "visual": 2, "id_scanned": 2, "id_checked": 2}
    assert checks.challenged == 3
    assert (checks.to_review, checks.to_review_today) == (4, 5)  # 1, 4, 5, 6 against 1, 3, 4, 6, 7
    tallies = {k: (t.raised, t.expected, t.both) for k, t in checks.kinds.items()}
    assert tallies == {
        "no_id_check": (2, 2, 1),
        "birth_date_under_age": (1, 1, 1),
        "id_contradicts_face": (1, 2, 1),
    }
    assert (checks.unchecked_minors, checks.unchecked_caught, checks.unchecked_caught_today) == (
        2,
        1,
        1,
    )
    assert checks.no_id_check_minors == 1
    assert (checks.borrowed, checks.borrowed_caught) == (2, 1)
    assert result.minors == (4, 3)  # estimated under the threshold: flagged or challenged
    by_cashier = {c.cashier_id: c for c in result.cashiers}
    assert (by_cashier["C03"].minors, by_cashier["C03"].id_checks) == (2, 2)
    assert by_cashier["C03"].under_age_flags == 1


def test_describe() -> None:
    text = "\n".join(describe(compare(TRUTH, VERDICTS), threshold=25))
    assert "Audit: 6 of 7 alcohol sales audited, 5 flagged" in text
    assert "not audited: 1 of the demo's sales; 1 verdicts of other sales" in text
    assert "outside_legal_hours differs on 1 sale" in text
    assert "13-17        1 of 2 (50%)" in text
    assert "S1 C02 Cashier C02: 2 of 2 alcohol sales under the legal age" in text
    assert "Age checks at the till" not in text


def test_describe_the_age_checks() -> None:
    text = "\n".join(describe(compare(CHECKED_TRUTH, CHECKED_VERDICTS), threshold=25))
    assert (
        "Age checks at the till: no check 2, judged by sight 2, ID checked 2, ID scanned 2;" in text
    )
    assert "under-age flags to review: 4 sales, against 5 flagged under_age_threshold" in text
    assert "20% fewer (goal: at least 60%, not met)" in text
    assert "no_id_check: 2 raised, of which 1 under the legal age without an ID check" in text
    assert (
        "caught 1 of 2 (50%), without the till's checks 1 of 2 (50%) (goal: as often, met)" in text
    )
    assert "birth_date_under_age: 1 of 1 expected, 1 raised" in text
    assert (
        "id_contradicts_face: caught 1 of 2 (50%) under the legal age with a borrowed adult ID"
        in text
    )
    assert "(goal: at least 80%, not met); 1 raised, 0 on other sales" in text
