"""Sending one message: an e-mail over SMTP (STARTTLS, TLS or plain), or a webhook POST."""

from __future__ import annotations

import http.client
import smtplib
import ssl
import urllib.error
import urllib.request
from email.message import EmailMessage

from auditor.errors import AuditorError
from auditor.notify.summary import Message
from auditor.settings import NotifySettings


class SendFailed(AuditorError):
    """A message could not be handed over; it is tried again on the next night."""


def send(message: Message, notify: NotifySettings) -> None:
    """Hand ``message`` over; raise :class:`SendFailed` saying why not."""
    if message.channel == "webhook":
        post_webhook(message.recipient, message.body, timeout=notify.timeout_s)
    else:
        send_email(message, notify)


def send_email(message: Message, notify: NotifySettings) -> None:
    if notify.smtp_host is None:
        raise SendFailed("no SMTP server set (notify.smtp_host)")
    mail = EmailMessage()
    mail["Subject"] = message.subject
    mail["From"] = notify.sender
    mail["To"] = message.recipient
    mail.set_content(message.body)
    if message.html is not None:
        mail.add_alternative(message.html, subtype="html")
    where = f"{notify.smtp_host}:{notify.smtp_port}"
    try:
        if notify.smtp_security == "tls":
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                notify.smtp_host,
                notify.smtp_port,
                timeout=notify.timeout_s,
                context=ssl.create_default_context(),
            )
        else:
            client = smtplib.SMTP(notify.smtp_host, notify.smtp_port, timeout=notify.timeout_s)
        with client:
            if notify.smtp_security == "starttls":
                client.starttls(context=ssl.create_default_context())
            if notify.smtp_user is not None:
                password = notify.smtp_password.get_secret_value() if notify.smtp_password else ""
                client.login(notify.smtp_user, password)
            client.send_message(mail)
    except (OSError, smtplib.SMTPException) as e:
        raise SendFailed(f"SMTP {where}: {type(e).__name__}: {e}") from e


def post_webhook(url: str, body: str, *, timeout: float) -> None:
    request = urllib.request.Request(
        url,
        data=body.encode("utf-8"),
        headers={"Content-Type": "application/json", "User-Agent": "auditor"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status = response.status
    except urllib.error.HTTPError as e:
        raise SendFailed(f"webhook {url}: HTTP {e.code} {e.reason}") from e
    except (OSError, ValueError, http.client.HTTPException) as e:  # not HTTP at all, too
        raise SendFailed(f"webhook {url}: {type(e).__name__}: {e}") from e
    if not 200 <= status < 300:
        raise SendFailed(f"webhook {url}: HTTP {status}")
