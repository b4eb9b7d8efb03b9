"""What the audit found on the demo chain, set against what the demo knows. Pure.

The truth is ``truth.csv`` (:func:`auditor.demo.build.truth_rows`); the verdicts are the rows of
``auditor flags`` (:data:`auditor.audit.export.EXPORT_COLUMNS`, flags as a ``;``-joined text or
a list). Sales are matched on ``(store_id, receipt_id)``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from auditor.demo.chain import EMPTY, FACE, TWO_FACES
from auditor.vocabulary import FlagKind

# Flags that follow from what the camera and the clock did, not from the model's estimate.
EVIDENCE_KINDS = (FlagKind.NO_FRAME, FlagKind.UNREADABLE_FRAME, FlagKind.OUTSIDE_LEGAL_HOURS)
AGE_GROUPS = (("13-17", 0, 18), ("18-24", 18, 25), ("25-34", 25, 35), ("35 and over", 35, 200))


@dataclass
class CashierTally:
    store_id: str
    cashier_id: str
    name: str
    sales: int = 0
    minors: int = 0
    under_age_flags: int = 0


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
    found = {(v["store_id"], v["receipt_id"]): _kinds(v["flags"]) for v in verdicts}
    result = Comparison()
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
        if row["camera"] in (FACE, TWO_FACES):
            result.faces_shown += 1
            result.faces_missed += FlagKind.NO_FACE in raised
            for name, low, high in AGE_GROUPS:
                if low <= age < high:
                    groups[name][0] += 1
                    groups[name][1] += FlagKind.UNDER_AGE_THRESHOLD in raised
        elif row["camera"] == EMPTY:
            result.empty_checkouts += 1
            result.empty_flagged += FlagKind.NO_FACE in raised
        tally = cashiers.setdefault(
            (row["store_id"], row["cashier_id"]),
            CashierTally(row["store_id"], row["cashier_id"], row["cashier_name"]),
        )
        tally.sales += 1
        tally.minors += age < 18
        tally.under_age_flags += FlagKind.UNDER_AGE_THRESHOLD in raised
    result.unexpected = len(set(found) - known)
    result.differences = {kind: differences[kind] for kind in EVIDENCE_KINDS}
    result.under_age_by_group = {name: (n, k) for name, (n, k) in groups.items()}
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
    lines.append(f"  flagged under the age threshold ({threshold}), by true age:")
    for name, (n, k) in result.under_age_by_group.items():
        lines.append(f"    {name:<12} {_share(k, n)}")
    ranked = [c for c in result.cashiers if c.minors][:top_cashiers]
    if ranked:
        lines.append("Cashiers who served the most minors:")
        for c in ranked:
            lines.append(
                f"  {c.store_id} {c.cashier_id} {c.name}: {c.minors} of {c.sales} alcohol "
                f"sales to minors; {c.under_age_flags} of the {c.sales} flagged under age"
            )
    return lines
