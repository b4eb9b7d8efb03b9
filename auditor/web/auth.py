"""Logging in and out, the current user, and the decorator that checks a right.

The session is Flask's signed cookie (HttpOnly, SameSite=Lax): it holds the user's id, the
time of login and the login's token, whose row in ``web_sessions`` makes it valid. Each request
loads the user and that row again, so a disabled account is out at once, a login older than
``[web] session_hours`` is over whatever the cookie says, and a cookie kept from before a
logout or a password change opens nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    abort,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from werkzeug.wrappers import Response

from auditor.db.models import User
from auditor.users import authenticate, end_session, session_is_open, start_session
from auditor.web.access import CurrentUser, Right
from auditor.web.state import client_address, current_user, db, log_event, state

bp = Blueprint("auth", __name__)

F = TypeVar("F", bound=Callable[..., Any])


def load_user() -> None:
    """Set ``g.user`` from the session (before every request)."""
    g.user = None
    user_id, login_at = session.get("uid"), session.get("login_at")
    if not isinstance(user_id, int) or not isinstance(login_at, int | float):
        return
    if time.time() - login_at > state().settings.web.session_hours * 3600:
        session.clear()
        return
    user = db().get(User, user_id)
    if user is None or not user.active:
        session.clear()
        return
    if not session_is_open(session=db(), token=session.get("sid"), user_id=user.id):
        session.clear()
        return
    g.user = CurrentUser(user.id, user.username, user.role, user.store_id)


def requires(right: Right | None = None) -> Callable[[F], F]:
    """A logged-in user (else the login page), with ``right`` (else 403)."""

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            user = current_user()
            if user is None:
                return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
            if right is not None and not user.can(right):
                abort(403)
            return view(*args, **kwargs)

        return wrapped  # type: ignore[return-value]

    return decorate


def home_for(user: CurrentUser) -> str:
    if user.can(Right.REVIEW):
        return url_for("flags.index")
    if user.can(Right.ANALYSE):
        return url_for("analytics.threshold")
    return url_for("auth.login")


def _safe_next(target: str | None) -> str | None:
    """Only a path of this app: no scheme, no host, no ``//`` or backslash tricks, no control
    characters (a newline would split the redirect's headers)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in target):
        return None
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else None


@bp.get("/")
def root() -> Response:
    user = current_user()
    return redirect(home_for(user) if user is not None else url_for("auth.login"))


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    if request.method == "GET":
        return render_template("review/login.html", error=None, username="")
    username = request.form.get("username", "").strip()[:200]
    password = request.form.get("password", "")
    throttle = state().throttle
    keys = (f"user:{username.casefold()[:200]}", f"address:{client_address()[:200]}")
    locks = throttle.locks(*keys)
    if locks:
        why = [
            name for key, name in zip(keys, ("user_name", "address"), strict=True) if key in locks
        ]
        log_event(
            "login_refused",
            "user",
            username,
            actor=username or "anonymous",
            reason="locked",
            by=why,
        )
        db().commit()
        minutes = max(1, round(max(locks.values()) / 60))
        return render_template(
            "review/login.html", error=_lockout_message(why, minutes), username=username
        ), 429
    user = authenticate(session=db(), username=username, password=password)
    if user is None:
        throttle.failed(*keys)
        log_event("login_failed", "user", username, actor=username or "anonymous")
        db().commit()
        error = "Wrong user name or password."
        return render_template("review/login.html", error=error, username=username), 401
    throttle.succeeded(keys[0])
    me = CurrentUser(user.id, user.username, user.role, user.store_id)
    log_event("login", "user", user.username, user=me)
    db().commit()
    hours = timedelta(hours=state().settings.web.session_hours)
    token = start_session(session=db(), user=user, max_age=hours)
    db().commit()
    session.clear()  # nothing of a session from before the login survives it
    session["sid"] = token
    session["uid"] = user.id
    session["login_at"] = time.time()
    session.permanent = True
    return redirect(_safe_next(request.args.get("next")) or home_for(me))


def _lockout_message(why: list[str], minutes: int) -> str:
    """Why a login is refused: too many failures for the user name, from this address, or
    both, and when to try again."""
    reasons = {
        ("user_name",): "for this user name",
        ("address",): "from this address",
        ("user_name", "address"): "for this user name and from this address",
    }
    wait = f"{minutes} minute{'s' * (minutes > 1)}"
    return f"Too many failed logins {reasons[tuple(why)]}. Try again in {wait}."


@bp.post("/logout")
def logout() -> Response:
    user = current_user()
    if user is not None:
        end_session(session=db(), token=session.get("sid"))
        log_event("logout", "user", user.username)
        db().commit()
    session.clear()
    return redirect(url_for("auth.login"))
