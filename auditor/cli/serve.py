"""``auditor serve``: the review app, served by waitress."""

from __future__ import annotations

import ipaddress
import logging
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from auditor.cli import AppContext

logger = logging.getLogger(__name__)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@click.command("serve")
@click.option("--host", help="Address to listen on. Default: [web] host (127.0.0.1).")
@click.option("--port", type=click.IntRange(1, 65535), help="Default: [web] port (8080).")
@click.option("--threads", type=click.IntRange(1, 64), default=4, show_default=True)
@click.pass_obj
def serve_command(app: AppContext, host: str | None, port: int | None, threads: int) -> None:
    """Serve the review app until stopped (Ctrl-C or SIGTERM).

    Store managers review their store's flags with the evidence (frame, face crop, estimate,
    receipt) and record decisions; loss prevention reviews every store; analysts see the
    threshold analytics, never a face; admins also read the audit log. Accounts come from
    `auditor users add`. Listens on 127.0.0.1 by default: put an HTTPS proxy in front to
    serve other machines, and set [web] secure_cookie = true.
    """
    from waitress import serve

    from auditor.web import create_app

    settings = app.settings
    engine = app.migrated_engine()
    host = host or settings.web.host
    port = port or settings.web.port
    if not _is_loopback(host) and not settings.web.secure_cookie:
        logger.warning(
            "serving on %s without [web] secure_cookie: use HTTPS in front of the app", host
        )
    web_app = create_app(settings, engine)
    click.echo(f"review app on http://{host}:{port}/ (stop with Ctrl-C)", err=True)
    serve(web_app, host=host, port=port, threads=threads, ident="auditor")
