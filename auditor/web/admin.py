"""The audit log, for administrators: who did what to which object, and when.

Filters, combinable and kept in the URL like the flag list's: ``user`` (the actor's name),
``action`` (:class:`~auditor.vocabulary.AuditAction`, shown by its label), ``store``, ``flag``
(a flag id) and ``from``/``to`` (dates in the chain's zone, ``[chain] default_timezone``, in
which the times are shown too).

A row is about a store when its details name the store (``store_id``, or ``store_ids`` for a
list page, a download or a decision on many sales) or a sale of the store (``sale_id``); it is
about a flag when its object is the flag, or its details list the flag (``flags``, as a list
page's and a bulk decision's rows do).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import Blueprint, render_template, request
from sqlalchemy.dialects import postgresql

from auditor.db.models import AuditLogEntry, Sale, Store
from auditor.flag_filters import clean_text, parse_date
from auditor.vocabulary import AuditAction, action_label, decision_label, kind_label
from auditor.web.access import Right
from auditor.web.auth import requires
from auditor.web.state import MAX_PAGE, db, page_arg, state

bp = Blueprint("admin", __name__)

PAGE_SIZE = 100
MAX_FLAG_ID = 2**63 - 1


@dataclass(frozen=True)
class LogFilter:
    user: str = ""
    action: str = ""
    store: str = ""
    flag: int | None = None
    first: date | None = None  # days in the chain's zone, from ...
    last: date | None = None  # ... through

    PARAMS = {"first": "from", "last": "to"}

    @classmethod
    def from_args(cls, args: Any) -> LogFilter:
        """The filters of a query string; a value that is not valid is dropped."""
        action = args.get("action", "")
        flag = args.get("flag", "").strip()
        return cls(
            user=clean_text(args.get("user", "")),
            action=action if action in tuple(AuditAction) else clean_text(action),
            store=clean_text(args.get("store", "")),
            flag=int(flag) if flag.isdigit() and 0 < int(flag) <= MAX_FLAG_ID else None,
            first=parse_date(args.get("from", "")),
            last=parse_date(args.get("to", "")),
        )

    def args(self, **changes: Any) -> dict[str, str]:
        """The query parameters that say these filters, empty ones left out."""
        current = replace(self, **changes)
        out = {}
        for f in fields(self):
            value = getattr(current, f.name)
            if value not in (None, ""):
                out[self.PARAMS.get(f.name, f.name)] = (
                    value.isoformat() if isinstance(value, date) else str(value)
                )
        return out


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(), zone)


def _listing(column: Any, key: str, value: str | int, dialect: str) -> Any:
    """Rows whose JSON ``column`` holds a list under ``key`` that contains ``value``."""
    if dialect == "postgresql":
        return sa.type_coerce(column, postgresql.JSONB)[key].contains([value])
    element = sa.func.json_each(column, f"$.{key}").table_valued("value")
    return sa.exists(sa.select(1).select_from(element).where(element.c.value == value))


def log_query(filters: LogFilter, *, zone: ZoneInfo, dialect: str) -> sa.Select[Any]:
    """The audit-log rows the filters match, newest first."""
    entry = AuditLogEntry
    query = sa.select(entry).order_by(entry.at.desc(), entry.id.desc())
    if filters.user:
        query = query.where(entry.actor == filters.user)
    if filters.action:
        query = query.where(entry.action == filters.action)
    if filters.first is not None:
        query = query.where(entry.at >= _midnight(filters.first, zone))
    if filters.last is not None:
        query = query.where(entry.at < _midnight(filters.last + timedelta(days=1), zone))
    if filters.flag is not None:
        query = query.where(
            sa.or_(
                sa.and_(entry.object_type == "flag", entry.object_id == str(filters.flag)),
                _listing(entry.details, "flags", filters.flag, dialect),
            )
        )
    if filters.store:
        sales = sa.select(Sale.id).where(Sale.store_id == filters.store)
        query = query.where(
            sa.or_(
                entry.details["store_id"].as_string() == filters.store,
                entry.details["sale_id"].as_integer().in_(sales),
                _listing(entry.details, "store_ids", filters.store, dialect),
            )
        )
    return query


# Details shown with their own wording; the rest as "key: value".
_DETAIL_LABELS = {"kind": kind_label, "decision": decision_label}
_LISTED = 12  # a list of ids longer than this is shown by its first ones and a count


def details_text(details: dict[str, Any] | None) -> str:
    """A row's details as a line of text, decisions and flag kinds by their labels."""
    parts = []
    for key, value in (details or {}).items():
        if key in _DETAIL_LABELS and isinstance(value, str):
            value = _DETAIL_LABELS[key](value)
        elif isinstance(value, list) and len(value) > _LISTED:
            shown = ", ".join(map(str, value[:_LISTED]))
            value = f"{shown} … ({len(value)} in all)"
        elif isinstance(value, list):
            value = ", ".join(map(str, value))
        elif isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items()) or "none"
        parts.append(f"{key}: {value}")
    return "; ".join(parts)


@bp.get("/audit-log")
@requires(Right.READ_LOG)
def audit_log() -> str:
    page = page_arg()
    filters = LogFilter.from_args(request.args)
    settings = state().settings
    zone = ZoneInfo(settings.chain.default_timezone)
    session = db()
    query = log_query(filters, zone=zone, dialect=session.get_bind().dialect.name)
    offset = (min(page, MAX_PAGE) - 1) * PAGE_SIZE
    entries = list(session.execute(query.limit(PAGE_SIZE + 1).offset(offset)).scalars())
    actors = list(
        session.execute(
            sa.select(AuditLogEntry.actor).distinct().order_by(AuditLogEntry.actor)
        ).scalars()
    )
    recorded = set(session.execute(sa.select(AuditLogEntry.action).distinct()).scalars())
    actions = [(a.value, a.label) for a in AuditAction]
    actions += [(a, action_label(a)) for a in sorted(recorded - set(AuditAction))]
    stores = [
        (s.id, f"{s.id} {s.name or ''}".strip())
        for s in session.execute(sa.select(Store.id, Store.name).order_by(Store.id))
    ]
    return render_template(
        "review/audit_log.html",
        entries=[
            {
                "at": e.at.astimezone(zone),
                "actor": e.actor,
                "action": e.action,
                "action_label": action_label(e.action),
                "object": f"{e.object_type} {e.object_id}",
                "details": details_text(e.details),
            }
            for e in entries[:PAGE_SIZE]
        ],
        more=len(entries) > PAGE_SIZE,
        page=page,
        filters=filters,
        actors=actors,
        actions=actions,
        stores=stores,
        zone=zone.key,
    )
