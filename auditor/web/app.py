"""The review app's factory: :func:`create_app` wires settings, database, security and pages.

Security in one place: the session cookie is signed with ``[web] secret_key`` (see
:mod:`auditor.web.secret`), HttpOnly, SameSite=Lax (Secure with ``secure_cookie``); every POST
carries a CSRF token (Flask-WTF; a missing or wrong one is refused with 400); logins are
throttled (:mod:`auditor.web.throttle`); every response says ``Cache-Control: no-store`` and
carries a strict Content-Security-Policy (images from the app only; no script but the page's own
inline one, named by a nonce made afresh for each response).
"""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta
from typing import Any

from flask import Flask, g, render_template
from flask_wtf.csrf import CSRFError, CSRFProtect
from sqlalchemy.engine import Engine
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter
from werkzeug.wrappers import Response

from auditor.db.engine import make_engine
from auditor.reports import render
from auditor.settings import Settings
from auditor.web import admin, analytics, auth, flags
from auditor.web.access import Right
from auditor.web.secret import secret_key
from auditor.web.state import WebState, close_db, current_user
from auditor.web.throttle import LoginThrottle

logger = logging.getLogger(__name__)

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
ERROR_TITLES = {
    400: "Bad request",
    401: "Not logged in",
    403: "Not allowed",
    404: "Not found",
    405: "Not allowed",
    413: "Too large",
    429: "Too many attempts",
}


class RowId(IntegerConverter):
    """A row id in a URL: a positive integer that fits the database's 64-bit ids (a larger
    one is a 404, never an error from the database)."""

    def __init__(self, url_map: Any) -> None:
        super().__init__(url_map, min=1, max=2**63 - 1)


def create_app(settings: Settings, engine: Engine | None = None, **config: Any) -> Flask:
    """The review app on ``engine`` (default: one made from the settings).

    ``config`` overrides Flask settings (tests). The database must be at the current schema.
    """
    # The reports' templates and filters (auditor.reports.render); Flask's own globals on top.
    app = Flask(__name__, template_folder=str(render.TEMPLATES), static_folder=None)
    web = settings.web
    app.config.update(
        SECRET_KEY=secret_key(settings),
        SESSION_COOKIE_NAME="auditor_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=web.secure_cookie,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=web.session_hours),
        WTF_CSRF_TIME_LIMIT=int(web.session_hours * 3600),
        WTF_CSRF_SSL_STRICT=web.secure_cookie,
        MAX_CONTENT_LENGTH=64 * 1024,
    )
    app.config.update(config)
    engine = engine if engine is not None else make_engine(settings.database_url)
    app.extensions["auditor"] = WebState(
        settings=settings,
        engine=engine,
        throttle=LoginThrottle(engine, web.login_attempts, web.lockout_minutes * 60),
    )
    CSRFProtect(app)
    if web.proxies:  # the client's address and scheme as the proxies in front of the app saw them
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=web.proxies, x_proto=web.proxies)  # type: ignore[method-assign]

    env = render.configure(app.jinja_env)
    env.globals.update(
        Right=Right,
        chain_name=settings.chain.name,
    )

    app.url_map.converters["id"] = RowId
    for blueprint in (auth.bp, flags.bp, analytics.bp, admin.bp):
        app.register_blueprint(blueprint)
    app.before_request(auth.load_user)
    app.teardown_appcontext(close_db)

    @app.context_processor
    def _user() -> dict[str, Any]:
        return {"user": current_user(), "csp_nonce": _csp_nonce}

    @app.after_request
    def _headers(response: Response) -> Response:
        nonce = g.get("csp_nonce")
        if nonce is not None:  # the page has a script of its own
            policy = f"{CONTENT_SECURITY_POLICY}; script-src 'nonce-{nonce}'"
            response.headers.setdefault("Content-Security-Policy", policy)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    @app.errorhandler(CSRFError)
    def _csrf(error: CSRFError) -> tuple[str, int]:
        logger.warning("CSRF check failed: %s", error.description)
        message = "The form was out of date or not sent by this app. Reload the page and try again."
        return _error_page(400, message), 400

    @app.errorhandler(HTTPException)
    def _http(error: HTTPException) -> Any:
        if error.code is None or error.code < 400:
            return error
        return _error_page(error.code, error.description or ""), error.code

    return app


def _csp_nonce() -> str:
    """The nonce of the response's Content-Security-Policy, for a page's ``<script>``."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(18)
    return str(g.csp_nonce)


def _error_page(code: int, message: str) -> str:
    return render_template(
        "review/error.html", code=code, title=ERROR_TITLES.get(code, "Error"), message=message
    )
