"""Login throttling: too many failed logins for a user name, or from an address, lock it out.

After ``attempts`` failures for one key within ``window_s`` (``[web] lockout_minutes``), logins
for that key are refused for ``window_s`` from the last failure. A good login clears the user
name's failures.

Failures are rows of ``login_failures``, each written in a transaction of its own, so every
process of the review app (several behind one proxy, or one restarted) counts the same
failures. Rows older than two windows (no lock can still count them) are deleted as new
failures come in.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from auditor.db.models import LoginFailure


def _now() -> datetime:
    return datetime.now(UTC)


class LoginThrottle:
    def __init__(
        self,
        engine: Engine,
        attempts: int,
        window_s: float,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.engine, self.attempts, self.clock = engine, attempts, clock
        self.window = timedelta(seconds=window_s)

    def locked_for(self, *keys: str) -> float:
        """Seconds until every one of ``keys`` may try again (0 when none is locked)."""
        return max(self.locks(*keys).values(), default=0.0)

    def locks(self, *keys: str) -> dict[str, float]:
        """The locked ones of ``keys``, each with the seconds until it may try again."""
        now = self.clock()
        # a lock lasts a window from the failure that set it, which counts the window before it
        recent = (
            sa.select(LoginFailure.key, LoginFailure.failed_at)
            .where(LoginFailure.key.in_(keys), LoginFailure.failed_at > now - 2 * self.window)
            .order_by(LoginFailure.key, LoginFailure.failed_at)
        )
        with Session(self.engine) as session:
            rows = session.execute(recent).all()
        locked: dict[str, float] = {}
        for key, failures in itertools.groupby(rows, key=lambda row: row.key):
            times = [row.failed_at for row in failures]
            for i, failed_at in enumerate(times):
                counted = sum(failed_at - self.window < t <= failed_at for t in times[: i + 1])
                if failed_at > now - self.window and counted >= self.attempts:
                    wait = (failed_at + self.window - now).total_seconds()
                    locked[key] = max(locked.get(key, 0.0), wait)
        return locked

    def failed(self, *keys: str) -> None:
        now = self.clock()
        with Session(self.engine) as session, session.begin():
            expired = LoginFailure.failed_at <= now - 2 * self.window
            session.execute(sa.delete(LoginFailure).where(expired))
            session.add_all(LoginFailure(key=key, failed_at=now) for key in keys)

    def succeeded(self, key: str) -> None:
        with Session(self.engine) as session, session.begin():
            session.execute(sa.delete(LoginFailure).where(LoginFailure.key == key))
