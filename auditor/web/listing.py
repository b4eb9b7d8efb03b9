"""The flag list: flagged sales of the current runs in a user's scope, likely minors first (or
newest or oldest first), a page at a time, in the reports' flagged-sales table
(:func:`~auditor.reports.render.flagged_sales_table`).

Which sales are listed, in what order, and when one is *open*, is :mod:`auditor.web.filters`'s:
without filters, every flagged sale by risk, open while one of its flags has no decision yet.
In order of time, rows are grouped by store and store-local date, since the table shows times of
day; by risk, a page is one table whose rows carry their date (and store, for a user who sees
every store), since neighbours in risk may be of any night.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from zoneinfo import ZoneInfo

import pandas as pd
import sqlalchemy as sa
from markupsafe import Markup
from sqlalchemy.orm import Session

from auditor.audit.business_day import clocks_change
from auditor.db.models import (
    AuditRun,
    Cashier,
    Flag,
    Sale,
    SaleLine,
    SaleVerdict,
    Store,
)
from auditor.flag_filters import FlagFilter, Order
from auditor.reports.figures import FlaggedSale, flagged_sales
from auditor.reports.queries import (
    CASHIER_COLUMNS,
    FLAG_COLUMNS,
    LINE_COLUMNS,
    REVIEW_COLUMNS,
    VERDICT_COLUMNS,
    frame,
    review_rows,
    verdict_select,
)
from auditor.reports.render import flagged_sales_table
from auditor.settings import Settings
from auditor.vocabulary import Evidence
from auditor.web.access import CurrentUser
from auditor.web.filters import ordered_sales, status_counts

PAGE_SIZE = 50
# The column head each order sorts by, and whether ascending (render.flagged_sales_table).
SORTED_BY: dict[Order, tuple[str, bool]] = {
    Order.RISK: ("flags", False),
    Order.NEWEST: ("time", False),
    Order.OLDEST: ("time", True),
    Order.STORE: ("store", True),
    Order.CASHIER: ("cashier", True),
    Order.AGE: ("age", True),
}


@dataclass
class Group:
    """One table of the page: a store's night, or (``day`` None) the page's sales by risk."""

    store_id: str
    store_name: str
    day: date | None
    table: Markup


@dataclass
class FlagPage:
    groups: list[Group] = field(default_factory=list)
    open_count: int = 0
    reviewed_count: int = 0
    more: bool = False
    sale_ids: list[int] = field(default_factory=list)  # the page's sales, in order
    faces_shown: list[tuple[int, int]] = field(default_factory=list)  # (flag id, sale id)
    flag_ids: list[int] = field(default_factory=list)  # every current flag of the page's sales
    store_ids: list[str] = field(default_factory=list)  # the stores of the page's sales


def flag_page(
    session: Session,
    *,
    user: CurrentUser,
    settings: Settings,
    filters: FlagFilter,
    page: int,
    review_url: Callable[[int], str],
    sort_links: Mapping[str, Mapping[str, str]] | None = None,
) -> FlagPage:
    """One page of the list. ``review_url(flag_id)`` makes the link to a flag's page;
    ``sort_links`` the column heads' links (:func:`~auditor.reports.render.flagged_sales_table`)."""
    opened, matched = session.execute(status_counts(user, filters)).one()
    result = FlagPage(open_count=int(opened), reviewed_count=int(matched) - int(opened))
    query = ordered_sales(user, filters)
    listed = session.execute(query.limit(PAGE_SIZE + 1).offset((page - 1) * PAGE_SIZE)).all()
    result.more = len(listed) > PAGE_SIZE
    listed = listed[:PAGE_SIZE]
    sale_ids = result.sale_ids = [sale_id for sale_id, _ in listed]
    if not sale_ids:
        return result
    data = _read(session, sale_ids, sorted({run_id for _, run_id in listed}))
    names = dict(session.execute(sa.select(Store.id, Store.name)).all())
    flag_keys = data["flags"][["sale_id", "kind", "flag_id"]]
    flag_ids = {
        (int(sale_id), str(kind)): int(flag_id)
        for sale_id, kind, flag_id in flag_keys.itertuples(index=False)
    }
    result.flag_ids = sorted(flag_ids.values())
    verdicts = data["verdicts"]
    result.store_ids = sorted(set(verdicts["store_id"]))
    store_of: dict[int, str] = dict(zip(verdicts["sale_id"], verdicts["store_id"], strict=True))
    # One pass per time zone of the page's stores (a pass shows its times in one zone), the
    # cashiers' names after it, as a cashier id names a cashier only within its store.
    stores_in: dict[ZoneInfo, list[str]] = defaultdict(list)
    for store_id in verdicts["store_id"].unique():
        stores_in[settings.store_zone(store_id)].append(store_id)
    cashier_names = {
        (str(store_id), str(cashier_id)): str(name or "")
        for cashier_id, name, store_id in data["cashiers"].itertuples(index=False)
    }
    by_sale: dict[int, FlaggedSale] = {}
    for zone, store_ids in stores_in.items():
        rows = flagged_sales(
            verdicts=verdicts[verdicts["store_id"].isin(store_ids)],
            flags=data["flags"],
            lines=data["lines"],
            reviews=data["reviews"],
            cashiers=data["cashiers"].iloc[:0],
            zone=zone,
        )
        by_sale.update(
            (
                row.sale_id,
                replace(row, cashier_name=cashier_names.get((row.store_id, row.cashier_id), "")),
            )
            for row in rows
        )
    ordered = [by_sale[s] for s in sale_ids if s in by_sale]
    for row in ordered:
        shown = (row.sale_id, row.evidence_kind or "")
        if row.evidence == Evidence.CROP and shown in flag_ids:
            result.faces_shown.append((flag_ids[shown], row.sale_id))
    if not filters.order.by_time:
        groups: list[tuple[tuple[str, date | None], list[FlaggedSale]]] = [(("", None), ordered)]
    else:
        groups = list(_grouped(ordered, store_of))
    sorted_by, ascending = SORTED_BY[filters.order]
    zone_of = settings.store_zone
    for (store_id, day), rows in groups:
        links = {
            row.sale_id: review_url(flag_ids[(row.sale_id, _first_kind(row, filters.kind))])
            for row in rows
            if (row.sale_id, _first_kind(row, filters.kind)) in flag_ids
        }
        result.groups.append(
            Group(
                store_id=store_id,
                store_name=names.get(store_id, "") or store_id,
                day=day,
                table=flagged_sales_table(
                    rows,
                    review_links=links,
                    select_form="bulk",
                    with_date=day is None,
                    with_store=day is None and user.all_stores,
                    with_zone=any(
                        clocks_change(row.sold_at.date(), zone_of(store_of[row.sale_id]))
                        for row in rows
                    ),
                    sort_links=sort_links,
                    sorted_by=sorted_by,
                    ascending=ascending,
                ),
            )
        )
    return result


def _first_kind(row: FlaggedSale, kind: str = "") -> str:
    """The flag a sale's review link opens: the filtered kind, else its first open one, else
    its first."""
    if kind in row.kinds:
        return kind
    return (row.open_kinds or row.kinds)[0]


def _grouped(
    rows: Sequence[FlaggedSale], store_of: dict[int, str]
) -> list[tuple[tuple[str, date | None], list[FlaggedSale]]]:
    groups: list[tuple[tuple[str, date | None], list[FlaggedSale]]] = []
    for row in rows:
        key = (store_of[row.sale_id], row.sold_at.date())
        if groups and groups[-1][0] == key:
            groups[-1][1].append(row)
        else:
            groups.append((key, [row]))
    return groups


def _read(session: Session, sale_ids: list[int], run_ids: list[int]) -> dict[str, pd.DataFrame]:
    """The page's sales as the reports' figures take them: verdicts, flags, lines, reviews;
    of the (current) runs the list found them in, ``run_ids``."""
    verdicts = session.execute(
        sa.select(*verdict_select())
        .join(Sale, Sale.id == SaleVerdict.sale_id)
        .join(AuditRun, AuditRun.id == SaleVerdict.run_id)
        .where(SaleVerdict.sale_id.in_(sale_ids), SaleVerdict.run_id.in_(run_ids))
    ).all()
    flags = session.execute(
        sa.select(*(getattr(Flag, "id" if c == "flag_id" else c) for c in FLAG_COLUMNS))
        .where(Flag.sale_id.in_(sale_ids), Flag.run_id.in_(run_ids))
        .order_by(Flag.sale_id, Flag.id)
    ).all()
    lines = session.execute(
        sa.select(*(getattr(SaleLine, c) for c in LINE_COLUMNS))
        .where(SaleLine.sale_id.in_(sale_ids))
        .order_by(SaleLine.sale_id, SaleLine.line_no)
    ).all()
    reviews = review_rows(session, sale_ids)
    stores = sa.select(Sale.store_id).where(Sale.id.in_(sale_ids))
    cashiers = session.execute(
        sa.select(Cashier.cashier_id, Cashier.name, Cashier.store_id).where(
            Cashier.store_id.in_(stores)
        )
    ).all()
    return {
        "verdicts": frame(verdicts, VERDICT_COLUMNS, ("sold_at",)),
        "flags": frame(flags, FLAG_COLUMNS, ("evidence_purged_at",)),
        "lines": frame(lines, LINE_COLUMNS),
        "reviews": frame(reviews, REVIEW_COLUMNS, ("reviewed_at",)),
        "cashiers": frame(cashiers, [*CASHIER_COLUMNS, "store_id"]),
    }
