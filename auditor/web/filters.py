"""The one query that applies the flag list's filters (:class:`~auditor.flag_filters.FlagFilter`,
defined with their URL parameters in :mod:`auditor.flag_filters`).

A filter narrows the *flags* considered: business date (of the flag's audit run), store,
cashier, register and flag kind. A sale is listed when one of its current flags matches, and it
is *open* while one of its matching flags has no decision; the review status then picks open or
reviewed sales. Without a kind, that is the list's meaning from before: open while any flag of
the sale is undecided.

Every query starts from the user's scope (:meth:`~auditor.web.access.CurrentUser.scoped`), so a
filter can only narrow it: a store manager's ``store`` is ignored.

Whether a flag has a decision, and a sale's open flags and sort keys in its run, are stored with
the flags and verdicts (:func:`~auditor.reviews.refresh_review_state`), not worked out from the
reviews on each request: the list reads a sale's verdict row, or with a kind its flag of that
kind, and the database can count them and page through them by index.

The list's default order is by risk (:attr:`Order.RISK`): sales with a hard violation among
their matching flags first (:attr:`~auditor.vocabulary.FlagKind.is_violation`), then by the
probability that the shopper is under the legal age (``flags.p_under_legal``), highest first and
sales without one (no face) last, then newest first, as the list was before.
"""

from __future__ import annotations

from typing import Any, TypeAlias

import sqlalchemy as sa

from auditor.db.models import NO_AGE, NO_PROBABILITY, AuditRun, Cashier, Flag, Sale, SaleVerdict
from auditor.db.queries import is_current_run
from auditor.flag_filters import FlagFilter, Order
from auditor.vocabulary import FlagKind, ReviewFilter
from auditor.web.access import CurrentUser

# A verdict with flags, as the list's partial indexes say it (models.FLAGGED): a literal, not a
# parameter, so that a plan the database keeps for the statement can still use them.
FLAGGED_VERDICT = SaleVerdict.flag_kinds != sa.literal_column("''")
Rows: TypeAlias = "sa.Select[*tuple[Any, ...]]"  # a select of any columns


def _narrowed(
    query: Rows,
    user: CurrentUser,
    filters: FlagFilter,
    run_id: Any,
    sale_id: Any,
    *,
    with_sale: bool = True,
) -> Rows:
    """``query`` (of rows with a ``run_id`` and a ``sale_id``) limited to the current runs, the
    user's scope and the filters (the kind and the status aside), joined to the rows' runs and,
    ``with_sale`` or when the scope or a filter needs it, their sales. The runs are joined
    rather than looked up by id, so that the database may start from the few runs of a store
    or a night, or, unfiltered, from the list's order."""
    query = query.join(AuditRun, AuditRun.id == run_id).where(is_current_run())
    store = filters.store if user.all_stores else user.store_id
    if store:  # a run's sales are its store's
        query = query.where(AuditRun.store_id == store)
    if filters.first is not None:
        query = query.where(AuditRun.business_date >= filters.first)
    if filters.last is not None:
        query = query.where(AuditRun.business_date <= filters.last)
    if not (with_sale or filters.cashier or filters.register or not user.all_stores):
        return query
    query = query.join(Sale, Sale.id == sale_id)
    for column, value in (
        (Sale.store_id, filters.store),
        (Sale.cashier_id, filters.cashier),
        (Sale.register_id, filters.register),
    ):
        if value:
            query = query.where(column == value)
    return user.scoped(query)


def matching_flags(user: CurrentUser, filters: FlagFilter) -> sa.Select[Any]:
    """Current flags in the user's scope that match the filters (the status aside): flag id,
    run id, sale id, kind, and whether the flag has no decision yet (``undecided``)."""
    query: Rows = sa.select(
        Flag.id.label("flag_id"),
        Flag.run_id,
        Flag.sale_id,
        Flag.kind,
        Flag.review_id.is_(None).label("undecided"),
    )
    if filters.kind:
        query = query.where(Flag.kind == filters.kind)
    return _narrowed(query, user, filters, Flag.run_id, Flag.sale_id)


def matching_sales(
    user: CurrentUser, filters: FlagFilter, *, status: bool = True, keys: bool = True
) -> sa.Select[Any]:
    """The listed sales, a row per sale and current run with a matching flag: run id, sale id,
    open? and, with ``keys``, violation?, risk and the other sort keys of :data:`SORT_KEYS`;
    with ``status``, only those of the filters' review status. A sale is audited in its
    night's run, so this is a row per sale (two only for a sale whose time a later POS export
    moved into another night that was audited too, while its first night was not again).

    Without a kind every flag of the sale matches, and the sale's verdict in the run holds
    what the list needs (:func:`~auditor.reviews.refresh_review_state`): open while one of
    its flags has no decision, ``violation`` true when one is a hard violation, ``risk`` the
    highest P(under the legal age) among them, ``age`` its estimated age. With a kind, the
    sale's flag of that kind says it: open while it has no decision. A sale without a
    probability or an estimated age has :data:`NO_PROBABILITY` or :data:`NO_AGE`."""
    if filters.kind:
        is_open: sa.ColumnElement[bool] = Flag.review_id.is_(None)
        run_id, sale_id = Flag.run_id, Flag.sale_id
        query: Rows = sa.select(run_id, sale_id).where(Flag.kind == filters.kind)
    else:
        is_open = SaleVerdict.open_flags > 0
        run_id, sale_id = SaleVerdict.run_id, SaleVerdict.sale_id
        query = sa.select(run_id, sale_id).where(FLAGGED_VERDICT)
    query = _narrowed(
        query.add_columns(is_open.label("open")), user, filters, run_id, sale_id, with_sale=keys
    )
    if keys:
        query = _with_keys(query, filters.kind)
    if status and filters.status == ReviewFilter.OPEN:
        query = query.where(is_open)
    elif status and filters.status == ReviewFilter.REVIEWED:
        query = query.where(sa.not_(is_open))
    return query


def _with_keys(query: Rows, kind: str) -> Rows:
    """The sort keys beside a :func:`matching_sales` query's rows (joined to their sales)."""
    if kind:
        verdict = sa.and_(SaleVerdict.run_id == Flag.run_id, SaleVerdict.sale_id == Flag.sale_id)
        query = query.outerjoin(SaleVerdict, verdict)
        violation: Any = sa.true() if FlagKind(kind).is_violation else sa.false()
        risk: Any = sa.func.coalesce(Flag.p_under_legal, NO_PROBABILITY)
        age: Any = sa.func.coalesce(SaleVerdict.estimated_age, NO_AGE)
    else:
        violation, risk, age = SaleVerdict.violation, SaleVerdict.risk, SaleVerdict.age_key
    return query.add_columns(
        violation.label("violation"),
        risk.label("risk"),
        Sale.sold_at,
        Sale.store_id,
        Sale.cashier_id,
        sa.func.coalesce(Cashier.name, Sale.cashier_id).label("cashier_name"),
        age.label("age"),
    ).outerjoin(
        Cashier,
        sa.and_(Cashier.store_id == Sale.store_id, Cashier.cashier_id == Sale.cashier_id),
    )


def status_counts(user: CurrentUser, filters: FlagFilter) -> sa.Select[int, int]:
    """One row: how many sales the filters list when open, and in all (the status aside)."""
    sales = matching_sales(user, filters, status=False, keys=False).subquery("flagged")
    return sa.select(
        sa.func.count(sa.case((sales.c.open, 1))).label("open"), sa.func.count().label("all")
    )


def ordered_sales(user: CurrentUser, filters: FlagFilter) -> sa.Select[Any]:
    """The listed sales (sale id, run id), in the list's order."""
    sales = matching_sales(user, filters).subquery("listed")
    return sa.select(sales.c.sale_id, sales.c.run_id).order_by(*order_by(filters.order, sales))


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
        own = (
            sa.select(mine.c[name])
            .where(mine.c.sale_id == sale.id)
            .order_by(*order_by(filters.order, mine))
            .limit(1)
            .scalar_subquery()
        )
        value = sa.func.coalesce(own, sa.literal(fallback[name], type_=sales.c[name].type))
        # going down the list, a descending part gets smaller; going up, larger
        key.append((sales.c[name], value, descending == after))
    direction = [
        sales.c[name].desc() if descending == after else sales.c[name].asc()
        for name, descending in SORT_KEYS[filters.order]
    ]
    return sa.select(sales.c.sale_id).where(_beyond(key)).order_by(*direction).limit(1)
