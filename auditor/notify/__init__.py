"""The nightly summary: after the reports, each recipient hears of the night in their scope.

:mod:`~auditor.notify.summary` works out the messages (pure), :mod:`~auditor.notify.figures`
reads the night's headline figures, :mod:`~auditor.notify.outbox` keeps the messages and
sends what is due through :mod:`~auditor.notify.send` (SMTP and a webhook).
"""

from auditor.notify.step import send_nightly_summary

__all__ = ["send_nightly_summary"]
