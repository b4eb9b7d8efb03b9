"""What the audit found on the demo chain, set against what the demo knows. Pure.

The truth is ``truth.csv`` (:func:`auditor.demo.build.truth_rows`); the verdicts are the rows of
``auditor flags`` (:data:`auditor.audit.export.EXPORT_COLUMNS`, flags as a ``;``-joined text or
a list), each with ``challenged`` (estimated under the threshold, with an ID check recorded)
where known. Sales are matched on ``(store_id, receipt_id)``.

The age checks the till recorded are set against *today*: the same audit without the POS's
age-check columns, which flags ``under_age_threshold`` on every sale estimated under the
threshold, that is on each sale flagged ``no_id_check`` or challenged here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from auditor.demo.chain import EMPTY, FACE, TWO_FACES
from auditor.vocabulary import AGE_KINDS, AgeCheck, FlagKind

# Flags that follow from what the camera and the clock did, not from the model's estimate.
EVIDENCE_KINDS = (FlagKind.NO_FRAME, FlagKind.UNREADABLE_FRAME, FlagKind.OUTSIDE_LEGAL_HOURS)
AGE_GROUPS = (("13-17", 0, 18), ("18-24", 18, 25), ("25-34", 25, 35), ("35 and over", 35, 200))
# The flags of the till's age checks, set against their truth one by one.
CHECK_KINDS = (FlagKind.NO_ID_CHECK, FlagKind.BIRTH_DATE_UNDER_AGE, FlagKind.ID_CONTRADICTS_FACE)
# The goals of the age checks: under-age flags to review against today, at most this share of
# them; a borrowed adult ID on a shopper under the legal age caught at least this often.
REVIEW_GOAL = 0.4
BORROWED_GOAL = 0.8


@dataclass
class CashierTally:
    store_id: str
    cashier_id: str
    name: str
    sales: int = 0
    minors: int = 0  # under the store's legal age
    id_checks: int = 0  # sales with an ID check recorded
    under_age_flags: int = 0  # sales with an under-age flag (AGE_KINDS)


@dataclass
class KindTally:
    """One flag kind against its truth: sales raised, sales expected, sales both."""

    raised: int = 0
    expected: int = 0
    both: int = 0


@dataclass
class CheckComparison:
    """The till's age checks and the flags they lead to, against today (see the module)."""

    checks: Counter[str] = field(default_factory=Counter)  # sales by AgeCheck recorded
    challenged: int = 0  # estimated under the threshold, with an ID check recorded
    to_review: int = 0  # sales with an under-age flag (AGE_KINDS)
    to_review_today: int = 0  # sales estimated under the threshold: flagged today
    kinds: dict[str, KindTally] = field(default_factory=dict)  # CHECK_KINDS
    unchecked_minors: int = 0  # under the legal age, face in view, no ID check recorded
    unchecked_caught: int = 0  # of them, with an under-age flag
    unchecked_caught_today: int = 0  # of them, estimated under the threshold
    no_id_check_minors: int = 0  # no_id_check raised on a shopper under the legal age
    borrowed: int = 0  # under the legal age with a borrowed adult ID, face in view
    borrowed_caught: int = 0  # of them, flagged id_contradicts_face

    @property
    def recorded(self) -> bool:
        """Whether the POS recorded age checks at all."""
        return bool(self.checks)


@dataclass
class Comparison:
    sales: int = 0  # alcohol sales the demo made
    audited: int = 0  # of them, with a verdict
    not_audited: list[str] = field(default_factory=list)  # "store/receipt" without a verdict
    unexpected: int = 0  # verdicts of sales the demo did not make
    flagged: int = 0
    flags: Counter[str] = field(default_factory=Counter)
    differences: dict[str, int] = field(default_factory=dict)  # EVIDENCE_KINDS: sales that differ
    faces_shown: int = 0  # sales whose frames show the shopper's face
    faces_missed: int = 0  # of them, flagged no_face: the detector found no face
    empty_checkouts: int = 0  # sales whose only frame shows nobody
    empty_flagged: int = 0  # of them, flagged no_face
    under_age_by_group: dict[str, tuple[int, int]] = field(default_factory=dict)  # (sales, flagged)
    cashiers: list[CashierTally] = field(default_factory=list)
    checks: CheckComparison = field(default_factory=CheckComparison)

    @property
    def minors(self) -> tuple[int, int]:
        return self.under_age_by_group.get(AGE_GROUPS[0][0], (0, 0))


def _kinds(value: Any) -> set[str]:
    if isinstance(value, str):
        return {k for k in value.split(";") if k}
    return set(value or ())


def compare(
    truth: Iterable[Mapping[str, str]], verdicts: Iterable[Mapping[str, Any]]
) -> Comparison:
    """Set the verdicts against the truth; see :class:`Comparison`."""
    found: dict[tuple[str, str], set[str]] = {}
    challenged: set[tuple[str, str]] = set()
    for v in verdicts:
        key = (v["store_id"], v["receipt_id"])
        found[key] = _kinds(v["flags"])
        if v.get("challenged"):
            challenged.add(key)
    result = Comparison()
    checks = result.checks
    tallies = {kind: KindTally() for kind in CHECK_KINDS}
    known: set[tuple[str, str]] = set()
    differences: Counter[str] = Counter()
    groups: dict[str, list[int]] = {name: [0, 0] for name, _, _ in AGE_GROUPS}
    cashiers: dict[tuple[str, str], CashierTally] = {}
    for row in truth:
        key = (row["store_id"], row["receipt_id"])
        known.add(key)
        result.sales += 1
        if key not in found:
            result.not_audited.append("/".join(key))
            continue
        raised = found[key]
        expected = _kinds(row["expected_flags"])
        result.audited += 1
        result.flagged += bool(raised)
        result.flags.update(raised)
        for kind in EVIDENCE_KINDS:
            differences[kind] += (kind in raised) != (kind in expected)
        age = int(row["shopper_age"])
        minor = age < int(row.get("legal_age") or 18)
        check = row.get("age_check", "")
        saw_id = bool(row.get("birth_date")) or (bool(check) and AgeCheck(check).saw_id)
        under_age = bool(raised & AGE_KINDS)
        # today's under_age_threshold: estimated under the threshold
        under_threshold = bool(
            raised & {FlagKind.UNDER_AGE_THRESHOLD, FlagKind.NO_ID_CHECK} or key in challenged
        )
        if check:
            checks.checks[check] += 1
        checks.challenged += key in challenged
        checks.to_review += under_age
        checks.to_review_today += under_threshold
        for kind, kind_tally in tallies.items():
            kind_tally.raised += kind in raised
            kind_tally.expected += kind in expected
            kind_tally.both += kind in raised and kind in expected
        checks.no_id_check_minors += minor and FlagKind.NO_ID_CHECK in raised
        if row["camera"] in (FACE, TWO_FACES):
            result.faces_shown += 1
            result.faces_missed += FlagKind.NO_FACE in raised
            for name, low, high in AGE_GROUPS:
                if low <= age < high:
                    groups[name][0] += 1
                    groups[name][1] += under_threshold
            if minor and not saw_id:
                checks.unchecked_minors += 1
                checks.unchecked_caught += under_age
                checks.unchecked_caught_today += under_threshold
            if minor and row.get("borrowed_id") == "true":
                checks.borrowed += 1
                checks.borrowed_caught += FlagKind.ID_CONTRADICTS_FACE in raised
        elif row["camera"] == EMPTY:
            result.empty_checkouts += 1
            result.empty_flagged += FlagKind.NO_FACE in raised
        tally = cashiers.setdefault(
            (row["store_id"], row["cashier_id"]),
            CashierTally(row["store_id"], row["cashier_id"], row["cashier_name"]),
        )
        tally.sales += 1
        tally.minors += minor
        tally.id_checks += saw_id
        tally.under_age_flags += under_age
    result.unexpected = len(set(found) - known)
    result.differences = {kind: differences[kind] for kind in EVIDENCE_KINDS}
    result.under_age_by_group = {name: (n, k) for name, (n, k) in groups.items()}
    checks.kinds = {kind: tallies[kind] for kind in CHECK_KINDS}
    result.cashiers = sorted(
        cashiers.values(), key=lambda c: (-c.minors, -c.under_age_flags, c.store_id, c.cashier_id)
    )
    return result


def _share(part: int, whole: int) -> str:
    return f"{part:,} of {whole:,}" + (f" ({100 * part / whole:.0f}%)" if whole else "")


def describe(result: Comparison, threshold: int, top_cashiers: int = 3) -> list[str]:
    """The comparison as lines of text for the terminal."""
    lines = [
        f"Audit: {result.audited:,} of {result.sales:,} alcohol sales audited, "
        f"{result.flagged:,} flagged"
    ]
    width = max(len(k) for k in FlagKind)
    lines += [f"  {kind:<{width}}  {result.flags[kind]:>6,}" for kind in FlagKind]
    if result.not_audited or result.unexpected:
        lines.append(
            f"  not audited: {len(result.not_audited)} of the demo's sales; "
            f"{result.unexpected} verdicts of other sales"
        )
    lines.append("Against the truth:")
    off = {k: n for k, n in result.differences.items() if n}
    lines.append(
        "  no_frame, unreadable_frame, outside_legal_hours: "
        + (
            "exactly where the demo put them"
            if not off
            else ", ".join(f"{k} differs on {n} sale{'s' * (n > 1)}" for k, n in off.items())
        )
    )
    lines.append(
        f"  no_face: {_share(result.empty_flagged, result.empty_checkouts)} empty checkouts; "
        f"faces missed by the detector on {_share(result.faces_missed, result.faces_shown)} "
        "sales with a face"
    )
    lines.append(
        f"  estimated under the age threshold ({threshold}) by true age, flagged or challenged:"
    )
    for name, (n, k) in result.under_age_by_group.items():
        lines.append(f"    {name:<12} {_share(k, n)}")
    if result.checks.recorded:
        lines += _describe_checks(result.checks)
    ranked = [c for c in result.cashiers if c.minors][:top_cashiers]
    if ranked:
        lines.append("Cashiers who served the most shoppers under the legal age:")
        for c in ranked:
            lines.append(
                f"  {c.store_id} {c.cashier_id} {c.name}: {c.minors} of {c.sales} alcohol "
                f"sales under the legal age; ID checked on {c.id_checks}; "
                f"{c.under_age_flags} flagged under age"
            )
    return lines


def _describe_checks(checks: CheckComparison) -> list[str]:
    recorded = ", ".join(
        f"{AgeCheck(kind).label} {checks.checks[kind]:,}"
        for kind in AgeCheck
        if kind in checks.checks
    )
    today = checks.to_review_today
    fewer = 1 - checks.to_review / today if today else 0.0
    met = "met" if today and checks.to_review <= REVIEW_GOAL * today else "not met"
    kinds = checks.kinds
    id_check = kinds[FlagKind.NO_ID_CHECK]
    birth = kinds[FlagKind.BIRTH_DATE_UNDER_AGE]
    contradiction = kinds[FlagKind.ID_CONTRADICTS_FACE]
    borrowed_met = (
        "met"
        if checks.borrowed and checks.borrowed_caught >= BORROWED_GOAL * checks.borrowed
        else "not met"
    )
    as_often = "met" if checks.unchecked_caught >= checks.unchecked_caught_today else "not met"
    return [
        f"Age checks at the till: {recorded}; {checks.challenged:,} challenged (estimated under "
        "the threshold, ID checked)",
        f"  under-age flags to review: {checks.to_review:,} sales, against "
        f"{today:,} flagged under_age_threshold without the till's checks: "
        f"{100 * fewer:.0f}% fewer (goal: at least {100 * (1 - REVIEW_GOAL):.0f}%, {met})",
        f"  no_id_check: {id_check.raised:,} raised, of which {checks.no_id_check_minors:,} "
        f"under the legal age without an ID check (truth: {id_check.both:,} of "
        f"{id_check.expected:,} expected, the true age under the threshold)",
        f"  under the legal age without an ID check, face in view: caught "
        f"{_share(checks.unchecked_caught, checks.unchecked_minors)}, without the till's "
        f"checks {_share(checks.unchecked_caught_today, checks.unchecked_minors)} "
        f"(goal: as often, {as_often})",
        f"  birth_date_under_age: {birth.both:,} of {birth.expected:,} expected, "
        f"{birth.raised:,} raised",
        f"  id_contradicts_face: caught {_share(checks.borrowed_caught, checks.borrowed)} "
        f"under the legal age with a borrowed adult ID, face in view (goal: at least "
        f"{100 * BORROWED_GOAL:.0f}%, {borrowed_met}); {contradiction.raised:,} raised, "
        f"{contradiction.raised - contradiction.both:,} on other sales",
    ]
