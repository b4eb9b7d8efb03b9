"""The audit log, for administrators: who did what to which object, and when."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, render_template, request

from auditor.db.models import AuditLogEntry
from auditor.web.access import Right
from auditor.web.auth import requires
from auditor.web.state import db, page_arg

bp = Blueprint("admin", __name__)

PAGE_SIZE = 100


@bp.get("/audit-log")
@requires(Right.READ_LOG)
def audit_log() -> str:
    page = page_arg()
    action = request.args.get("action", "").strip()
    query = sa.select(AuditLogEntry).order_by(AuditLogEntry.at.desc(), AuditLogEntry.id.desc())
    if action:
        query = query.where(AuditLogEntry.action == action)
    entries = list(
        db().execute(query.limit(PAGE_SIZE + 1).offset((page - 1) * PAGE_SIZE)).scalars()
    )
    actions = list(
        db()
        .execute(sa.select(AuditLogEntry.action).distinct().order_by(AuditLogEntry.action))
        .scalars()
    )
    return render_template(
        "review/audit_log.html",
        entries=entries[:PAGE_SIZE],
        more=len(entries) > PAGE_SIZE,
        page=page,
        action=action,
        actions=actions,
    )
