"""Setting the verdicts against the demo's truth (pure)."""

from __future__ import annotations

from auditor.demo.summary import compare, describe


def truth_row(receipt: str, camera: str, age: int, expected: str, cashier: str = "C01") -> dict:
    return {
        "store_id": "S1",
        "receipt_id": receipt,
        "cashier_id": cashier,
        "cashier_name": f"Cashier {cashier}",
        "camera": camera,
        "shopper_age": str(age),
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


def test_describe() -> None:
    text = "\n".join(describe(compare(TRUTH, VERDICTS), threshold=25))
    assert "Audit: 6 of 7 alcohol sales audited, 5 flagged" in text
    assert "not audited: 1 of the demo's sales; 1 verdicts of other sales" in text
    assert "outside_legal_hours differs on 1 sale" in text
    assert "13-17        1 of 2 (50%)" in text
    assert "S1 C02 Cashier C02: 2 of 2 alcohol sales to minors" in text
