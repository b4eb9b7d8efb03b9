"""The flag list's filters: what they are, how they read from and go back into a URL, and the
one query that applies them.

A filter narrows the *flags* considered: business date (of the flag's audit run), store,
cashier, register and flag kind. A sale is listed when one of its current flags matches, and it
is *open* while one of its matching flags has no decision; the review status then picks open or
reviewed sales. Without a kind, that is the list's meaning from before: open while any flag of
the sale is undecided.

Every query starts from the user's scope (:meth:`~auditor.web.access.CurrentUser.scoped`), so a
filter can only narrow it: a store manager's ``store`` is ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from datetime import date
from enum import StrEnum
from typing import Any, cast

import sqlalchemy as sa

from auditor.db.models import AuditRun, Flag, Sale
from auditor.db.queries import current_run_ids
from auditor.reviews import latest_reviews
from auditor.vocabulary import FlagKind, ReviewFilter
from auditor.web.access import CurrentUser

MAX_VALUE_LENGTH = 64  # longer ids than the schema's are not ids: the filter is dropped, as is
# a value with control characters (PostgreSQL refuses NUL in a text parameter)


class Order(StrEnum):
    """The list's order: by time of sale."""

    NEWEST = "newest"
    OLDEST = "oldest"

    @property
    def label(self) -> str:
        return {Order.NEWEST: "newest first", Order.OLDEST: "oldest first"}[self]


@dataclass(frozen=True)
class FlagFilter:
    first: date | None = None  # business dates from ...
    last: date | None = None  # ... through
    store: str = ""
    cashier: str = ""
    register: str = ""
    kind: str = ""
    status: ReviewFilter = ReviewFilter.OPEN
    order: Order = Order.NEWEST

    # URL parameter of each field
    PARAMS = {"first": "from", "last": "to", "order": "sort"}

    @classmethod
    def from_args(cls, args: Mapping[str, str], *, all_stores: bool = True) -> FlagFilter:
        """The filters of a query string; a value that is not valid is dropped (the default).
        ``date=D`` is short for ``from=D&to=D``."""
        day = _date(args.get("date", ""))
        return cls(
            first=_date(args.get("from", "")) or day,
            last=_date(args.get("to", "")) or day,
            store=_text(args.get("store", "")) if all_stores else "",
            cashier=_text(args.get("cashier", "")),
            register=_text(args.get("register", "")),
            kind=_choice(args.get("kind", ""), tuple(FlagKind), ""),
            status=ReviewFilter(
                _choice(args.get("status", ""), tuple(ReviewFilter), ReviewFilter.OPEN)
            ),
            order=Order(_choice(args.get("sort", ""), tuple(Order), Order.NEWEST)),
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
        return bool(self.args(status=ReviewFilter.OPEN, order=Order.NEWEST))


def _date(raw: str) -> date | None:
    try:
        return date.fromisoformat(raw.strip()) if 0 < len(raw) <= 10 else None
    except ValueError:
        return None


def _text(raw: str) -> str:
    value = raw.strip()
    return value if len(value) <= MAX_VALUE_LENGTH and value.isprintable() else ""


def _choice(raw: str, allowed: tuple[str, ...], default: str) -> str:
    return raw if raw in allowed else default


def matching_flags(user: CurrentUser, filters: FlagFilter) -> sa.Select[Any]:
    """Current flags in the user's scope that match the filters (the status aside): flag id,
    sale id, kind, and whether the flag has no decision yet (``undecided``)."""
    latest = latest_reviews()
    query = (
        sa.select(
            Flag.id.label("flag_id"),
            Flag.sale_id,
            Flag.kind,
            latest.c.id.is_(None).label("undecided"),
        )
        .join(Sale, Sale.id == Flag.sale_id)
        .join(AuditRun, AuditRun.id == Flag.run_id)
        .outerjoin(
            latest, sa.and_(latest.c.sale_id == Flag.sale_id, latest.c.flag_kind == Flag.kind)
        )
        .where(Flag.run_id.in_(current_run_ids()))
    )
    if filters.first is not None:
        query = query.where(AuditRun.business_date >= filters.first)
    if filters.last is not None:
        query = query.where(AuditRun.business_date <= filters.last)
    for column, value in (
        (Sale.store_id, filters.store),
        (Sale.cashier_id, filters.cashier),
        (Sale.register_id, filters.register),
        (Flag.kind, filters.kind),
    ):
        if value:
            query = query.where(column == value)
    return user.scoped(cast("sa.Select[Any]", query))


def matching_sales(
    user: CurrentUser, filters: FlagFilter, *, status: bool = True
) -> sa.Select[Any]:
    """(sale id, open?) of every sale with a matching flag; with ``status``, only those of the
    filters' review status."""
    flags = matching_flags(user, filters).subquery("matching")
    is_open = sa.func.max(sa.case((flags.c.undecided, 1), else_=0)) == 1
    query = sa.select(flags.c.sale_id, is_open.label("open")).group_by(flags.c.sale_id)
    if status and filters.status == ReviewFilter.OPEN:
        query = query.having(is_open)
    elif status and filters.status == ReviewFilter.REVIEWED:
        query = query.having(sa.not_(is_open))
    return query


def ordered_sales(user: CurrentUser, filters: FlagFilter) -> sa.Select[Any]:
    """The ids of the listed sales, in the list's order."""
    sales = matching_sales(user, filters).subquery("listed")
    query = sa.select(sales.c.sale_id).join(Sale, Sale.id == sales.c.sale_id)
    return query.order_by(*order_by(filters.order))


def order_by(order: Order) -> tuple[Any, ...]:
    if order == Order.OLDEST:
        return (Sale.sold_at.asc(), Sale.id.asc())
    return (Sale.sold_at.desc(), Sale.id.desc())


def neighbour(user: CurrentUser, filters: FlagFilter, sale: Sale, *, after: bool) -> sa.Select[Any]:
    """The listed sale after (or before) ``sale`` in the list's order, whether or not ``sale``
    is itself still listed (a decision takes it off the list of open sales)."""
    forward = (filters.order == Order.NEWEST) == after  # towards older sales
    if forward:
        beyond = sa.or_(
            Sale.sold_at < sale.sold_at, sa.and_(Sale.sold_at == sale.sold_at, Sale.id < sale.id)
        )
    else:
        beyond = sa.or_(
            Sale.sold_at > sale.sold_at, sa.and_(Sale.sold_at == sale.sold_at, Sale.id > sale.id)
        )
    sales = matching_sales(user, filters).subquery("listed")
    return (
        sa.select(sales.c.sale_id)
        .join(Sale, Sale.id == sales.c.sale_id)
        .where(beyond)
        .order_by(*order_by(Order.NEWEST if forward else Order.OLDEST))
        .limit(1)
    )
