"""``auditor flags`` on stored audit results, on SQLite and PostgreSQL: each row carries the
rules its night's run used and the sale's probabilities."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from datetime import date

from click.testing import Result
from sqlalchemy.engine import Engine

from tests.reports.chain import AUDIT_SETTINGS, ResultsBuilder, VerdictSpec

RunCli = Callable[..., Result]
DAY = date(2024, 3, 1)


def _night(engine: Engine) -> None:
    """S2 (New York) audited with its own rules (legal age 21, threshold 23); S1 by a run
    recorded before stores had rules."""
    b = ResultsBuilder(engine)
    b.store("S1", "Berlin Mitte")
    b.store("S2", "New York 5th Ave", "America/New_York")
    rules = {"legal_age": 21, "age_threshold": 23, "legal_hours_start": "10:00:00"}
    young = b.sale("S2", "ny-young", "2024-03-01 12:00", age_check="visual")
    checked = b.sale("S2", "ny-checked", "2024-03-01 13:00", age_check="id_checked")
    noface = b.sale("S2", "ny-noface", "2024-03-01 14:00")
    b.verdicts(
        b.run("S2", DAY, settings={**AUDIT_SETTINGS, "rules": rules}),
        [
            VerdictSpec(young, 19.04, 2.0, kinds=["no_id_check"], p_under_legal=0.84134,
                        p_under_threshold=0.97725, legal_age=21),
            VerdictSpec(checked, 20.0, 2.0, p_under_legal=0.69146, p_under_threshold=0.93319,
                        challenged=True, legal_age=21),
            VerdictSpec(noface, faces=0, kinds=["no_face"], legal_age=21),
        ],
        threshold=23,
    )  # fmt: skip
    berlin = b.sale("S1", "b-1", "2024-03-01 18:00")
    b.verdicts(b.run("S1", DAY), [VerdictSpec(berlin, 30.0, 3.0, legal_age=None)])


def test_each_row_carries_its_rules_probabilities_and_challenge(
    engine: Engine, run_cli: RunCli
) -> None:
    _night(engine)
    result = run_cli("flags", "--date", DAY.isoformat())
    assert result.exit_code == 0, result.output
    rows = {r["receipt_id"]: r for r in csv.DictReader(io.StringIO(result.stdout))}
    young = rows["ny-young"]
    assert (young["legal_age"], young["age_threshold"]) == ("21", "23")
    assert (young["p_under_legal"], young["p_under_threshold"]) == ("0.841", "0.977")
    assert (young["challenged"], young["flags"]) == ("false", "no_id_check")
    checked = rows["ny-checked"]
    assert (checked["challenged"], checked["flags"]) == ("true", "")
    assert (rows["ny-noface"]["p_under_legal"], rows["ny-noface"]["estimated_age"]) == ("", "")
    berlin = rows["b-1"]  # the rules of old: legal age 18, the [audit] threshold
    assert (berlin["legal_age"], berlin["age_threshold"], berlin["p_under_legal"]) == (
        "18",
        "25",
        "",
    )

    result = run_cli("flags", "--date", DAY.isoformat(), "--store", "S2", "--format", "json")
    assert result.exit_code == 0, result.output
    first = json.loads(result.stdout)[0]
    assert first["receipt_id"] == "ny-young"
    assert (first["legal_age"], first["age_threshold"], first["challenged"]) == (21, 23, False)
    assert (first["p_under_legal"], first["p_under_threshold"]) == (0.841, 0.977)
