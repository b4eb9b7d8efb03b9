"""What the review app's list of flags can be narrowed to (:class:`FlagFilter`) and how that is
said in a URL's query string: a business date range, store, cashier, register, flag kind, the
review status and the order. The reports link the list with these parameters too, so they are
defined here, apart from the review app (:mod:`auditor.web.filters` holds the query that
applies them).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from datetime import date
from enum import StrEnum
from typing import Any

from auditor.vocabulary import FlagKind, ReviewFilter

MAX_VALUE_LENGTH = 64  # longer ids than the schema's are not ids: the filter is dropped, as is
# a value with control characters (PostgreSQL refuses NUL in a text parameter)


class Order(StrEnum):
    """The list's order: by risk (the default; see :mod:`auditor.web.filters`), by time of
    sale, or by store, cashier or estimated age (each then newest first)."""

    RISK = "risk"
    NEWEST = "newest"
    OLDEST = "oldest"
    STORE = "store"
    CASHIER = "cashier"
    AGE = "age"

    @property
    def label(self) -> str:
        return {
            Order.RISK: "likely minors first",
            Order.NEWEST: "newest first",
            Order.OLDEST: "oldest first",
            Order.STORE: "by store",
            Order.CASHIER: "by cashier",
            Order.AGE: "youngest estimate first",
        }[self]

    @property
    def by_time(self) -> bool:
        """Whether the list is in order of time (and so grouped by store and night)."""
        return self in (Order.NEWEST, Order.OLDEST)


@dataclass(frozen=True)
class FlagFilter:
    first: date | None = None  # business dates from ...
    last: date | None = None  # ... through
    store: str = ""
    cashier: str = ""
    register: str = ""
    kind: str = ""
    status: ReviewFilter = ReviewFilter.OPEN
    order: Order = Order.RISK

    # URL parameter of each field
    PARAMS = {"first": "from", "last": "to", "order": "sort"}

    @classmethod
    def from_args(cls, args: Mapping[str, str], *, all_stores: bool = True) -> FlagFilter:
        """The filters of a query string; a value that is not valid is dropped (the default).
        ``date=D`` is short for ``from=D&to=D``."""
        day = parse_date(args.get("date", ""))
        return cls(
            first=parse_date(args.get("from", "")) or day,
            last=parse_date(args.get("to", "")) or day,
            store=clean_text(args.get("store", "")) if all_stores else "",
            cashier=clean_text(args.get("cashier", "")),
            register=clean_text(args.get("register", "")),
            kind=_choice(args.get("kind", ""), tuple(FlagKind), ""),
            status=ReviewFilter(
                _choice(args.get("status", ""), tuple(ReviewFilter), ReviewFilter.OPEN)
            ),
            order=Order(_choice(args.get("sort", ""), tuple(Order), Order.RISK)),
        )

    def args(self, **changes: Any) -> dict[str, str]:
        """The query parameters that say these filters (with ``changes``), defaults left out:
        for ``url_for`` and the forms' hidden fields."""
        current = replace(self, **changes)
        default = FlagFilter()
        out: dict[str, str] = {}
        for f in fields(self):
            value = getattr(current, f.name)
            if value != getattr(default, f.name):
                out[self.PARAMS.get(f.name, f.name)] = (
                    value.isoformat() if isinstance(value, date) else str(value)
                )
        return out

    @property
    def narrowed(self) -> bool:
        """True when something other than the review status and the order is set."""
        return bool(self.args(status=ReviewFilter.OPEN, order=FlagFilter().order))


def parse_date(raw: str) -> date | None:
    try:
        return date.fromisoformat(raw.strip()) if 0 < len(raw) <= 10 else None
    except ValueError:
        return None


def clean_text(raw: str) -> str:
    value = raw.strip()
    return value if len(value) <= MAX_VALUE_LENGTH and value.isprintable() else ""


def _choice(raw: str, allowed: tuple[str, ...], default: str) -> str:
    return raw if raw in allowed else default
