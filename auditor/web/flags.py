"""Flags for review: the list, a flag's page with its evidence, decisions, the evidence images.

Every flag is looked up through :meth:`~auditor.web.access.CurrentUser.scoped`: a store manager
asking for another store's flag gets 404, for the page and the images alike. Every view of a
flag's page and of each image, and every decision, is written to the audit log. Images are sent
with ``Cache-Control: no-store``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from PIL import Image, UnidentifiedImageError
from sqlalchemy.orm import aliased, defer
from werkzeug.wrappers import Response

from auditor.db.models import (
    AuditRun,
    Cashier,
    Flag,
    Register,
    Review,
    Sale,
    SaleLine,
    Snapshot,
    Store,
    User,
)
from auditor.db.queries import current_run_ids
from auditor.flag_filters import FlagFilter, Order
from auditor.notify.summary import Links
from auditor.retention import frame_file
from auditor.reviews import ReviewError, record_reviews, review_history
from auditor.vocabulary import AuditAction, Decision, FlagKind, ReviewFilter, kind_label
from auditor.web.access import Right
from auditor.web.auth import requires
from auditor.web.export import flag_rows, to_csv
from auditor.web.filters import matching_flags, matching_sales, neighbour
from auditor.web.listing import PAGE_SIZE, flag_page
from auditor.web.state import MAX_PAGE, current_user, db, log_event, page_arg, state

logger = logging.getLogger(__name__)

bp = Blueprint("flags", __name__)

MAX_BULK = 1000  # sales ticked in one bulk decision


def _current_flags() -> sa.Select[Any]:
    """Flags of the current (succeeded) runs, joined to their sale, in the user's scope."""
    user = current_user()
    assert user is not None
    query = (
        sa.select(Flag)
        .join(Sale, Sale.id == Flag.sale_id)
        .where(Flag.run_id.in_(current_run_ids()))
    )
    return user.scoped(query)


def _current_flag(flag_id: int, *, with_crop: bool = False) -> Flag | None:
    """The flag, if it is of a current run and in the user's scope."""
    query = _current_flags().where(Flag.id == flag_id)
    if not with_crop:
        query = query.options(defer(Flag.face_crop))
    return db().execute(query).scalar_one_or_none()


def _flag_or_404(flag_id: int, *, with_crop: bool = False) -> Flag:
    flag = _current_flag(flag_id, with_crop=with_crop)
    if flag is None:
        abort(404)
    return flag


def _successor_or_404(flag_id: int) -> int:
    """For a flag of a run since replaced (its night audited again), the id of the current flag
    on the same sale and kind. 404 when there is none, or the flag is not the user's to see.

    Links to a flag (in reports, bookmarks and messages) name its id, and a new audit of the
    night writes new flags: the link then leads to the new one.
    """
    earlier = aliased(Flag)
    query = (
        _current_flags()
        .join(earlier, sa.and_(earlier.sale_id == Flag.sale_id, earlier.kind == Flag.kind))
        .where(earlier.id == flag_id, Flag.id != flag_id)
        .with_only_columns(Flag.id)
    )
    successor = db().execute(query).scalar_one_or_none()
    if successor is not None:
        return int(successor)
    user = current_user()
    assert user is not None
    earlier_in_scope = user.scoped(
        sa.select(Flag.id).join(Sale, Sale.id == Flag.sale_id).where(Flag.id == flag_id)
    )
    if db().execute(earlier_in_scope).first() is not None:
        abort(
            404,
            description="This flag is from an earlier audit of its night. The night was audited "
            "again since, and the latest audit does not raise it.",
        )
    abort(404)


# -- the list ------------------------------------------------------------------------------------


def _filters() -> FlagFilter:
    """The list's filters from the query string (a GET) or the form's hidden fields (a POST)."""
    user = current_user()
    assert user is not None
    args = request.form if request.method == "POST" else request.args
    return FlagFilter.from_args(args, all_stores=user.all_stores)


def _choices(filters: FlagFilter) -> dict[str, list[tuple[str, str]]]:
    """The values the list's filter form offers: stores, cashiers and registers in scope."""
    user = current_user()
    assert user is not None
    session = db()
    stores = (
        [
            (s.id, f"{s.id} {s.name or ''}".strip())
            for s in session.execute(sa.select(Store.id, Store.name).order_by(Store.id))
        ]
        if user.all_stores
        else []
    )
    store = filters.store if user.all_stores else (user.store_id or "")
    cashiers = sa.select(Cashier.cashier_id, sa.func.min(Cashier.name)).group_by(Cashier.cashier_id)
    registers = sa.select(Register.register_id).distinct()
    if store:
        cashiers = cashiers.where(Cashier.store_id == store)
        registers = registers.where(Register.store_id == store)
    return {
        "stores": stores,
        "cashiers": [
            (c, f"{name} ({c})" if name else c)
            for c, name in session.execute(cashiers.order_by(Cashier.cashier_id))
        ],
        "registers": [
            (r, r) for r in session.execute(registers.order_by(Register.register_id)).scalars()
        ],
    }


def _form_page() -> int:
    raw = request.form.get("page", "")
    return min(int(raw), MAX_PAGE) if raw.isdigit() and len(raw) < 10 else 1


def _flag_url(flag_id: int, filters: FlagFilter, **extra: Any) -> str:
    values: dict[str, Any] = {**filters.args(), **extra}
    return url_for("flags.show", flag_id=flag_id, **values)


def _list_url(filters: FlagFilter, page: int = 1) -> str:
    values: dict[str, Any] = {**filters.args(), "page": page if page > 1 else None}
    return url_for("flags.index", **values)


# What each column head of the list sorts by: (order, title); the time head turns the order of
# time around when it is already in use.
SORT_HEADS: dict[str, tuple[Order, str]] = {
    "time": (Order.NEWEST, "newest first (again: oldest first)"),
    "store": (Order.STORE, "by store, then newest first"),
    "cashier": (Order.CASHIER, "by cashier, then newest first"),
    "age": (Order.AGE, "youngest estimate first, sales without one last"),
    "flags": (Order.RISK, "likely minors first"),
}


def _sort_links(filters: FlagFilter) -> dict[str, dict[str, str]]:
    """The list's column heads as links that sort by their column, keeping the filters (and
    going back to the first page)."""
    links = {}
    for column, (order, title) in SORT_HEADS.items():
        if column == "time" and filters.order == Order.NEWEST:
            order, title = Order.OLDEST, "oldest first (again: newest first)"
        values: dict[str, Any] = filters.args(order=order)
        href = url_for("flags.index", **values)
        links[column] = {"href": href, "title": f"Sort {title}"}
    return links


@bp.get("/flags")
@requires(Right.REVIEW)
def index() -> str:
    user = current_user()
    assert user is not None
    filters = _filters()
    page = page_arg()
    listing = flag_page(
        db(),
        user=user,
        settings=state().settings,
        filters=filters,
        page=page,
        review_url=lambda flag_id: _flag_url(flag_id, filters),
        sort_links=_sort_links(filters),
    )
    matched = {
        ReviewFilter.OPEN: listing.open_count,
        ReviewFilter.REVIEWED: listing.reviewed_count,
        ReviewFilter.ALL: listing.open_count + listing.reviewed_count,
    }
    page_html = render_template(
        "review/flags.html",
        listing=listing,
        page=page,
        pages=max(1, -(-matched[filters.status] // PAGE_SIZE)),
        filters=filters,
        matched=matched,
        choices=_choices(filters),
        Order=Order,
        FlagKind=FlagKind,
        status=filters.status,
        store=filters.store,
    )
    if listing.sale_ids:  # one row for the page, naming the flags shown and the faces
        log_event(
            AuditAction.VIEW_LIST,
            "flag_list",
            page,
            filters=filters.args(),
            sales=len(listing.sale_ids),
            flags=listing.flag_ids,
            faces=[flag_id for flag_id, _ in listing.faces_shown],
            store_ids=listing.store_ids,
        )
    db().commit()  # the faces leave only once their view is recorded
    return page_html


@bp.get("/flags.csv")
@requires(Right.REVIEW)
def download() -> Response:
    """Every flag the list's filters match, on every page, as CSV."""
    user = current_user()
    assert user is not None
    filters = _filters()
    rows = flag_rows(db(), user=user, filters=filters, zone=state().settings.store_zone)
    log_event(
        AuditAction.DOWNLOAD_FLAGS,
        "flag_list",
        "csv",
        filters=filters.args(),
        rows=len(rows),
        store_ids=sorted({row["store_id"] for row in rows}),
    )
    db().commit()
    return Response(
        to_csv(rows),
        mimetype="text/csv",
        headers={"Content-Disposition": 'attachment; filename="flags.csv"'},
    )


@bp.post("/flags/decisions")
@requires(Right.REVIEW)
def decide_many() -> Response:
    """One decision on many sales of the list: the open flags (of the filtered kind, if one)
    of the sales ticked, or of every sale the filters match. Each is its own review row and
    audit-log row; flags that already have a decision are left as they are."""
    user = current_user()
    assert user is not None
    filters = _filters()
    decision = request.form.get("decision", "")
    every = request.form.get("every") == "1"
    chosen = {int(v) for v in request.form.getlist("sale")[:MAX_BULK] if v.isdigit()}
    flags = matching_flags(user, filters).subquery("matching")
    listed = matching_sales(user, filters).subquery("listed")
    query = (
        sa.select(Flag)
        .options(defer(Flag.face_crop))
        .join(flags, flags.c.flag_id == Flag.id)
        .join(listed, sa.and_(listed.c.run_id == Flag.run_id, listed.c.sale_id == Flag.sale_id))
        .where(flags.c.undecided)
        .order_by(Flag.id)
    )
    if not every:
        query = query.where(Flag.sale_id.in_(chosen))
    targets = list(db().execute(query).scalars())
    reviewer = db().get(User, user.id)
    assert reviewer is not None
    _record(targets, reviewer, decision)  # a bad decision is refused even with nothing to do
    sales = len({flag.sale_id for flag in targets})
    log_event(
        "bulk_review",
        "flag_list",
        "decisions",
        decision=decision,
        flags=[flag.id for flag in targets],
        filters=filters.args(),
        every=every,
        store_ids=_stores_of(flag.sale_id for flag in targets),
    )
    db().commit()
    if targets:
        flash(
            f"Recorded “{Decision(decision).label}” on {len(targets)} "
            f"flag{'s' if len(targets) != 1 else ''} of {sales} sale{'s' if sales != 1 else ''}.",
            "ok",
        )
    else:
        flash("Nothing recorded: no open flag among those chosen.", "error")
    return redirect(_list_url(filters, _form_page()))


def _record(flags: list[Flag], reviewer: User, decision: str) -> None:
    """Record ``decision`` (and the form's comment) on ``flags``; a refused one is a 400."""
    try:
        record_reviews(
            session=db(),
            flags=flags,
            reviewer=reviewer,
            decision=decision,
            comment=request.form.get("comment", ""),
        )
    except ReviewError as e:
        db().rollback()
        abort(400, description=str(e))


def _stores_of(sale_ids: Iterable[int]) -> list[str]:
    wanted = set(sale_ids)
    if not wanted:
        return []
    query = sa.select(Sale.store_id).where(Sale.id.in_(wanted)).distinct()
    return sorted(db().execute(query).scalars())


# -- one flag ------------------------------------------------------------------------------------


@dataclass
class FrameView:
    """The frame shown on a flag's page, with the face box in percent of the picture and the
    picture's width to height (so the page can fit it in the window's height)."""

    url: str
    box: dict[str, float] | None
    ratio: float | None = None


def _frame_path(flag: Flag) -> Path | None:
    """The flag's frame file, if the evidence is still there and the file inside the root."""
    if flag.snapshot_id is None or flag.evidence_purged_at is not None:
        return None
    snapshot = db().get(Snapshot, flag.snapshot_id)
    if snapshot is None or snapshot.purged_at is not None:
        return None
    path = frame_file(state().settings.snapshot_root, snapshot.path)
    return path if path is not None and path.is_file() else None


def _frame_view(flag: Flag) -> FrameView | None:
    path = _frame_path(flag)
    if path is None:
        return None
    box = None
    try:
        with Image.open(path) as image:
            width, height = image.size
    except (OSError, UnidentifiedImageError):
        width = height = 0
    if None not in (flag.face_x, flag.face_y, flag.face_w, flag.face_h) and width and height:
        box = {
            "left": 100 * flag.face_x / width,  # type: ignore[operator]
            "top": 100 * flag.face_y / height,  # type: ignore[operator]
            "width": 100 * flag.face_w / width,  # type: ignore[operator]
            "height": 100 * flag.face_h / height,  # type: ignore[operator]
        }
    ratio = width / height if width and height else None
    return FrameView(url_for("flags.frame_image", flag_id=flag.id), box, ratio)


def _has_crop(flag: Flag) -> bool:
    return bool(
        db().execute(sa.select(Flag.face_crop.is_not(None)).where(Flag.id == flag.id)).scalar()
    )


def local_time(value: datetime, store_id: str) -> datetime:
    return value.astimezone(state().settings.store_zone(store_id))


@bp.get("/flags/<id:flag_id>")
@requires(Right.REVIEW)
def show(flag_id: int) -> str | Response:
    flag = _current_flag(flag_id)
    filters = _filters()
    if flag is None:
        return redirect(_flag_url(_successor_or_404(flag_id), filters))
    session = db()
    sale = session.get(Sale, flag.sale_id)
    assert sale is not None
    store = session.get(Store, sale.store_id)
    cashier = session.get(Cashier, (sale.store_id, sale.cashier_id))
    lines = session.execute(
        sa.select(SaleLine).where(SaleLine.sale_id == sale.id).order_by(SaleLine.line_no)
    ).scalars()
    siblings = session.execute(
        _current_flags()
        .outerjoin(Review, Review.id == Flag.review_id)
        .where(Flag.sale_id == sale.id)
        .with_only_columns(Flag.id, Flag.kind, Review.decision)
        .order_by(Flag.id)
    ).all()
    history = review_history(session, sale_id=sale.id, kind=flag.kind)
    nearby = {
        name: _flag_of(next_sale, filters)
        for name, after in (("next", True), ("prev", False))
        if (next_sale := _neighbour(sale, filters, after=after)) is not None
    }
    frame = _frame_view(flag)
    crop = _has_crop(flag)
    run = session.get(AuditRun, flag.run_id)
    assert run is not None
    reports = Links(reports_url=state().settings.reports_url)
    log_event(
        "view_flag",
        "flag",
        flag.id,
        sale_id=sale.id,
        kind=flag.kind,
        store_id=sale.store_id,
        images=[name for name, shown in (("face", crop), ("frame", frame)) if shown],
    )
    page = render_template(
        "review/flag.html",
        flag=flag,
        sale=sale,
        store=store,
        cashier=cashier,
        lines=list(lines),
        siblings=siblings,
        history=history,
        frame=frame,
        crop_url=url_for("flags.face_image", flag_id=flag.id) if crop else None,
        sold_local=local_time(sale.sold_at, sale.store_id),
        current=history[0][0] if history else None,
        filters=filters,
        list_url=_list_url(filters, page_arg()),
        page=page_arg(),
        nearby={name: _flag_url(i, filters) for name, i in nearby.items() if i is not None},
        business_date=run.business_date,
        report_url=reports.store_page(sale.store_id, run.business_date),
    )
    session.commit()  # the evidence leaves only once its view is recorded
    return page


@bp.post("/flags/<id:flag_id>/decision")
@requires(Right.REVIEW)
def decide(flag_id: int) -> Response:
    flag = _current_flag(flag_id)
    if flag is None:  # the page was opened before the night was audited again
        successor = _successor_or_404(flag_id)
        flash(
            "Not recorded: the night was audited again after that page was opened. This is the "
            "sale's flag from the latest audit; check its evidence and decide again.",
            "error",
        )
        return redirect(_flag_url(successor, _filters()))
    user = current_user()
    assert user is not None
    reviewer = db().get(User, user.id)
    assert reviewer is not None
    filters = _filters()
    decision = request.form.get("decision", "")
    covered = _covered(flag, request.form.getlist("cover"))
    _record(covered, reviewer, decision)
    db().commit()
    sale = db().get(Sale, flag.sale_id)
    assert sale is not None
    kinds = f" on {', '.join(kind_label(f.kind) for f in covered)}" if len(covered) > 1 else ""
    flash(
        f"Recorded “{Decision(decision).label}” for receipt {sale.receipt_id} "
        f"(store {sale.store_id}){kinds}.",
        "ok",
    )
    if request.form.get("then") == "next":
        following = _neighbour(sale, filters, after=True)
        next_flag = _flag_of(following, filters) if following is not None else None
        if next_flag is not None:
            return redirect(_flag_url(next_flag, filters))
        flash("That was the last flagged sale of the list.", "ok")
    return redirect(_list_url(filters, _form_page()))


def _covered(flag: Flag, kinds: list[str]) -> list[Flag]:
    """The sale's current flags a decision covers: those of ``kinds`` (the form's ticks),
    just ``flag`` when none is given."""
    if not kinds:
        return [flag]
    query = (
        _current_flags()
        .options(defer(Flag.face_crop))
        .where(Flag.sale_id == flag.sale_id, Flag.kind.in_(kinds[: len(FlagKind) + 1]))
        .order_by(Flag.id)
    )
    return list(db().execute(query).scalars()) or [flag]


def _neighbour(sale: Sale, filters: FlagFilter, *, after: bool) -> int | None:
    user = current_user()
    assert user is not None
    found = db().execute(neighbour(user, filters, sale, after=after)).scalar_one_or_none()
    return int(found) if found is not None else None


def _flag_of(sale_id: int, filters: FlagFilter) -> int | None:
    """The flag of a listed sale that its review opens: a matching one without a decision
    first, else the first matching one."""
    user = current_user()
    assert user is not None
    flags = matching_flags(user, filters).subquery("matching")
    query = (
        sa.select(flags.c.flag_id)
        .where(flags.c.sale_id == sale_id)
        .order_by(flags.c.undecided.desc(), flags.c.flag_id)
        .limit(1)
    )
    found = db().execute(query).scalar_one_or_none()
    return int(found) if found is not None else None


# -- evidence images -----------------------------------------------------------------------------


def _image(data: bytes) -> Response:
    return Response(
        data,
        mimetype="image/jpeg",
        headers={"Cache-Control": "no-store, private", "Content-Disposition": "inline"},
    )


@bp.get("/flags/<id:flag_id>/face.jpg")
@requires(Right.REVIEW)
def face_image(flag_id: int) -> Response:
    flag = _flag_or_404(flag_id, with_crop=True)
    if flag.face_crop is None or flag.evidence_purged_at is not None:
        abort(404)
    log_event("view_evidence", "flag", flag.id, image="face", sale_id=flag.sale_id)
    db().commit()
    return _image(flag.face_crop)


@bp.get("/flags/<id:flag_id>/frame.jpg")
@requires(Right.REVIEW)
def frame_image(flag_id: int) -> Response:
    flag = _flag_or_404(flag_id)
    path = _frame_path(flag)
    if path is None:
        abort(404)
    try:
        data = path.read_bytes()
    except OSError as e:
        logger.warning("cannot read frame %s of flag %s: %s", path, flag.id, e)
        abort(404)
    log_event("view_evidence", "flag", flag.id, image="frame", sale_id=flag.sale_id)
    db().commit()
    return _image(data)
