"""What a request needs: the app's settings and engine, its database session, the audit log."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import current_app, g, request
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from auditor.db.models import AuditLogEntry
from auditor.settings import Settings
from auditor.web.access import CurrentUser
from auditor.web.throttle import LoginThrottle


@dataclass
class WebState:
    settings: Settings
    engine: Engine
    throttle: LoginThrottle


def state() -> WebState:
    return current_app.extensions["auditor"]  # type: ignore[no-any-return]


def db() -> Session:
    """The request's database session, opened when first used and closed after the request."""
    if "db" not in g:
        g.db = Session(state().engine, expire_on_commit=False)
    return g.db  # type: ignore[no-any-return]


def close_db(_error: BaseException | None = None) -> None:
    session = g.pop("db", None)
    if session is not None:
        session.close()


def current_user() -> CurrentUser | None:
    user: CurrentUser | None = g.get("user")
    return user


def client_address() -> str:
    return request.remote_addr or "unknown"


def log_event(
    action: str,
    object_type: str,
    object_id: object,
    *,
    user: CurrentUser | None = None,
    actor: str | None = None,
    **details: Any,
) -> None:
    """Add an audit-log row for the request (who, what, which object); the caller commits."""
    user = user or current_user()
    db().add(
        AuditLogEntry(
            user_id=user.id if user is not None else None,
            actor=actor or (user.username if user is not None else "anonymous"),
            action=action,
            object_type=object_type,
            object_id=str(object_id),
            details={**details, "address": client_address()},
        )
    )


# The largest page number a list accepts; a larger one is read as this (the list is empty there).
MAX_PAGE = 1_000_000


def int_arg(name: str, default: int, *, low: int, high: int) -> int:
    """An integer query parameter clamped to [low, high]; ``default`` when absent or not a
    whole number (a value too large for the database never reaches it)."""
    raw = request.args.get(name, "")
    value = int(raw) if raw.strip().lstrip("+-").isdigit() and len(raw) < 30 else default
    return min(max(value, low), high)


def page_arg() -> int:
    return int_arg("page", 1, low=1, high=MAX_PAGE)
