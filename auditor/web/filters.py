"""The flag list's filters: what they are, how they read from and go back into a URL, and the
one query that applies them.

A filter narrows the *flags* considered: business date (of the flag's audit run), store,
cashier, register and flag kind. A sale is listed when one of its current flags matches, and it
is *open* while one of its matching flags has no decision; the review status then picks open or
reviewed sales. Without a kind, that is the list's meaning from before: open while any flag of
the sale is undecided.

Every query starts from the user's scope (:meth:`~auditor.web.access.CurrentUser.scoped`), so a
filter can only narrow it: a store manager's ``store`` is ignored.

The list's default order is by risk (:attr:`Order.RISK`): sales with a hard violation among
their matching flags first (:attr:`~auditor.vocabulary.FlagKind.is_violation`), then by the
probability that the shopper is under the legal age (``flags.p_under_legal``), highest first and
sales without one (no face) last, then newest first, as the list was before.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from datetime import date
from enum import StrEnum
from typing import Any, TypeVarTuple, cast

import sqlalchemy as sa

from auditor.db.models import AuditRun, Cashier, Flag, Sale, SaleVerdict
from auditor.db.queries import current_run_ids
from auditor.reviews import latest_reviews
from auditor.vocabulary import FlagKind, ReviewFilter
from auditor.web.access import CurrentUser

MAX_VALUE_LENGTH = 64  # longer ids than the schema's are not ids: the filter is dropped, as is
# a value with control characters (PostgreSQL refuses NUL in a text parameter)


class Order(StrEnum):
    """The list's order: by risk (the default; see the module), by time of sale, or by store,
    cashier or estimated age (each then newest first)."""

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


VIOLATIONS = tuple(k.value for k in FlagKind if k.is_violation)
NO_PROBABILITY = -1.0  # sorts a sale without P(under the legal age) after every other
NO_AGE = 1000.0  # sorts a sale without an estimated age after every other, youngest first


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


def _current_runs(user: CurrentUser, filters: FlagFilter) -> sa.Select[int]:
    """The current runs the filters' store and dates allow (a short list for the database to
    look flags up by, where every current run would make it probe each sale once per run)."""
    store = filters.store if user.all_stores else user.store_id
    return current_run_ids(
        store_ids=[store] if store else None, first=filters.first, last=filters.last
    )


Ts = TypeVarTuple("Ts")


def with_sale(query: sa.Select[*Ts], latest: sa.Subquery) -> sa.Select[*Ts]:
    """``query`` (of flags) joined to each flag's sale and run, and, where they exist, the
    sale's cashier, its verdict in the flag's run and the flag's current review (``latest``,
    :func:`~auditor.reviews.latest_reviews`)."""
    return (
        query.join(Sale, Sale.id == Flag.sale_id)
        .join(AuditRun, AuditRun.id == Flag.run_id)
        .outerjoin(
            Cashier,
            sa.and_(Cashier.store_id == Sale.store_id, Cashier.cashier_id == Sale.cashier_id),
        )
        .outerjoin(
            SaleVerdict,
            sa.and_(SaleVerdict.run_id == Flag.run_id, SaleVerdict.sale_id == Flag.sale_id),
        )
        .outerjoin(
            latest, sa.and_(latest.c.sale_id == Flag.sale_id, latest.c.flag_kind == Flag.kind)
        )
    )


def matching_flags(user: CurrentUser, filters: FlagFilter) -> sa.Select[Any]:
    """Current flags in the user's scope that match the filters (the status aside): flag id,
    sale id, kind, whether the flag has no decision yet (``undecided``), the sale's
    probability of a shopper under the legal age (``p_under_legal``), and what the list sorts
    by: the sale's time, store, cashier (``cashier_name``: the name, else the id) and
    estimated age."""
    latest = latest_reviews()
    query = sa.select(
        Flag.id.label("flag_id"),
        Flag.sale_id,
        Flag.kind,
        latest.c.id.is_(None).label("undecided"),
        Flag.p_under_legal,
        Sale.sold_at,
        Sale.store_id,
        Sale.cashier_id,
        sa.func.coalesce(Cashier.name, Sale.cashier_id).label("cashier_name"),
        SaleVerdict.estimated_age,
    )
    query = with_sale(query, latest).where(Flag.run_id.in_(_current_runs(user, filters)))
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
    """(sale id, open?, violation?, risk, and the sort keys of :func:`sort_key`) of every
    sale with a matching flag; with ``status``, only those of the filters' review status.
    ``violation`` is 1 when a matching flag is a hard violation, else 0; ``risk`` the sale's
    P(under the legal age), or :data:`NO_PROBABILITY` without one; ``age`` its estimated age,
    or :data:`NO_AGE` without one."""
    flags = matching_flags(user, filters).subquery("matching")
    is_open = sa.func.max(sa.case((flags.c.undecided, 1), else_=0)) == 1
    violation = sa.func.max(sa.case((flags.c.kind.in_(VIOLATIONS), 1), else_=0))
    risk = sa.func.coalesce(sa.func.max(flags.c.p_under_legal), NO_PROBABILITY)
    query = sa.select(
        flags.c.sale_id,
        is_open.label("open"),
        violation.label("violation"),
        risk.label("risk"),
        # one value per sale: the max only carries it through the grouping
        sa.func.max(flags.c.sold_at).label("sold_at"),
        sa.func.max(flags.c.store_id).label("store_id"),
        sa.func.max(flags.c.cashier_id).label("cashier_id"),
        sa.func.max(flags.c.cashier_name).label("cashier_name"),
        sa.func.coalesce(sa.func.max(flags.c.estimated_age), NO_AGE).label("age"),
    ).group_by(flags.c.sale_id)
    if status and filters.status == ReviewFilter.OPEN:
        query = query.having(is_open)
    elif status and filters.status == ReviewFilter.REVIEWED:
        query = query.having(sa.not_(is_open))
    return query


def ordered_sales(user: CurrentUser, filters: FlagFilter) -> sa.Select[Any]:
    """The ids of the listed sales, in the list's order."""
    sales = matching_sales(user, filters).subquery("listed")
    return sa.select(sales.c.sale_id).order_by(*order_by(filters.order, sales))


# The list's orders as (column of a matching_sales subquery, descending?), most significant
# first; every order ends with the sale's time and id, so no two sales tie.
_NEWEST = (("sold_at", True), ("sale_id", True))
SORT_KEYS: dict[Order, tuple[tuple[str, bool], ...]] = {
    Order.RISK: (("violation", True), ("risk", True), *_NEWEST),
    Order.NEWEST: _NEWEST,
    Order.OLDEST: (("sold_at", False), ("sale_id", False)),
    Order.STORE: (("store_id", False), *_NEWEST),
    Order.CASHIER: (("cashier_name", False), ("cashier_id", False), ("store_id", False), *_NEWEST),
    Order.AGE: (("age", False), *_NEWEST),
}


def order_by(order: Order, listed: sa.Subquery) -> tuple[Any, ...]:
    """The list's order on ``listed`` (a :func:`matching_sales` subquery)."""
    return tuple(
        listed.c[name].desc() if descending else listed.c[name].asc()
        for name, descending in SORT_KEYS[order]
    )


def _beyond(key: list[tuple[Any, Any, bool]]) -> Any:
    """Rows whose ``key`` (columns, the values to compare them with, and whether the column
    must be smaller; most significant first) comes after the values, part by part."""
    (column, value, smaller), rest = key[0], key[1:]
    first = column < value if smaller else column > value
    if not rest:
        return first
    return sa.or_(first, sa.and_(column == value, _beyond(rest)))


def neighbour(user: CurrentUser, filters: FlagFilter, sale: Sale, *, after: bool) -> sa.Select[Any]:
    """The listed sale after (or before) ``sale`` in the list's order, whether or not ``sale``
    is itself still listed (a decision takes it off the list of open sales)."""
    sales = matching_sales(user, filters).subquery("listed")
    # The sale's own place in the order, from its matching flags whatever their status; what
    # the sale row itself says when none matches.
    mine = matching_sales(user, filters, status=False).subquery("mine")
    fallback = {
        "violation": 0,
        "risk": NO_PROBABILITY,
        "age": NO_AGE,
        "sold_at": sale.sold_at,
        "sale_id": sale.id,
        "store_id": sale.store_id,
        "cashier_id": sale.cashier_id,
        "cashier_name": sale.cashier_id,
    }
    key = []
    for name, descending in SORT_KEYS[filters.order]:
        own = sa.select(mine.c[name]).where(mine.c.sale_id == sale.id).scalar_subquery()
        value = sa.func.coalesce(own, sa.literal(fallback[name], type_=sales.c[name].type))
        # going down the list, a descending part gets smaller; going up, larger
        key.append((sales.c[name], value, descending == after))
    direction = [
        sales.c[name].desc() if descending == after else sales.c[name].asc()
        for name, descending in SORT_KEYS[filters.order]
    ]
    return sa.select(sales.c.sale_id).where(_beyond(key)).order_by(*direction).limit(1)
