"""The one vocabulary: stored values, labels, the schema's checks, and the labels pages show."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import pytest
import sqlalchemy as sa

from auditor.db.models import Base
from auditor.reports.figures import FlaggedSale, ReviewStatus
from auditor.reports.render import flagged_sales_table
from auditor.vocabulary import (
    NOT_REVIEWED,
    AgeCheck,
    AuditAction,
    Decision,
    EstimateOutcome,
    Evidence,
    FlagKind,
    NightState,
    ReviewFilter,
    Role,
    RunStatus,
    decision_label,
    kind_label,
    kind_short,
)
from tests.reports.html import parse

ALL: tuple[type[StrEnum], ...] = (
    FlagKind,
    AgeCheck,
    EstimateOutcome,
    Decision,
    ReviewFilter,
    RunStatus,
    NightState,
    Evidence,
    Role,
    AuditAction,
)


# The strings the database holds and exports carry: changing one needs a migration.
@pytest.mark.parametrize(
    "names, values",
    [
        (
            FlagKind,
            [
                "birth_date_under_age",
                "id_contradicts_face",
                "no_id_check",
                "under_age_threshold",
                "no_frame",
                "no_face",
                "unreadable_frame",
                "outside_legal_hours",
                "pos_error",
            ],
        ),
        (EstimateOutcome, ["estimated", "no_face", "unreadable_frame"]),
        (AgeCheck, ["none", "visual", "id_checked", "id_scanned"]),
        (Decision, ["confirmed_violation", "id_checked", "adult", "invalid_frame"]),
        (RunStatus, ["running", "succeeded", "failed", "replaced"]),
        (Role, ["store_manager", "loss_prevention", "analyst", "admin"]),
    ],
)
def test_stored_values_and_their_order(names: type[StrEnum], values: list[str]) -> None:
    assert [n.value for n in names] == values


@pytest.mark.parametrize("names", ALL, ids=lambda n: n.__name__)
def test_every_name_has_one_distinct_label(names: type[StrEnum]) -> None:
    labels = [n.label for n in names]  # type: ignore[attr-defined]
    assert all(label and label == label.strip() for label in labels)
    assert len(set(labels)) == len(labels)


def test_every_flag_kind_has_a_short_label() -> None:
    assert all(0 < len(k.short) <= len(k.label) for k in FlagKind)
    assert [kind_short(k) for k in FlagKind] == [k.short for k in FlagKind]


@pytest.mark.parametrize(
    "table, column, names",
    [
        ("flags", "kind", FlagKind),
        ("age_estimates", "outcome", EstimateOutcome),
        ("reviews", "decision", Decision),
        ("audit_runs", "status", RunStatus),
        ("users", "role", Role),
    ],
)
def test_the_schema_checks_exactly_these_values(
    table: str, column: str, names: type[StrEnum]
) -> None:
    checks = [
        str(c.sqltext)
        for c in Base.metadata.tables[table].constraints
        if isinstance(c, sa.CheckConstraint) and str(c.sqltext).startswith(f"{column} IN (")
    ]
    values = ", ".join(repr(n.value) for n in names)
    assert checks == [f"{column} IN ({values})"]


def test_label_helpers_and_unknown_names() -> None:
    assert [kind_label(k.value) for k in FlagKind] == [k.label for k in FlagKind]
    assert [decision_label(d.value) for d in Decision] == [d.label for d in Decision]
    assert decision_label(None) == NOT_REVIEWED
    assert kind_label("some_new_kind") == "some new kind"
    assert decision_label("some_new_decision") == "some_new_decision"


def test_the_reports_show_the_vocabularys_labels() -> None:
    kinds = [k.value for k in FlagKind]
    decisions = [*Decision, *[None] * (len(kinds) - len(Decision))]
    reviews = {
        kind: None
        if decision is None
        else ReviewStatus(decision.value, datetime(2024, 3, 1, 22), "rev", "")
        for kind, decision in zip(kinds, decisions, strict=True)
    }
    sale = FlaggedSale(
        sale_id=1,
        receipt_id="r-1",
        register_id="R1",
        cashier_id="C1",
        cashier_name="",
        sold_at=datetime(2024, 3, 1, 21),
        alcohol_items=[],
        estimated_age=None,
        age_spread=None,
        kinds=kinds,
        reviews=reviews,
        evidence=Evidence.REMOVED,
    )
    row = parse(str(flagged_sales_table([sale]))).find("tr", data_sale="1")
    shown = {t.attrs["data-kind"]: t.text for t in row.find_all(data_kind=True)}
    assert shown == {k.value: k.label for k in FlagKind}
    tags = [t.text for t in row.find_all(data_decision=True)]
    assert tags == [decision_label(d) for d in decisions]
    assert row.field("evidence") == Evidence.REMOVED.label
