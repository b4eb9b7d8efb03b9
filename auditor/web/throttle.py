"""Login throttling: too many failed logins for a user name, or from an address, lock it out.

After ``attempts`` failures for one key within ``window_s`` (``[web] lockout_minutes``), logins
for that key are refused for ``window_s`` from the last failure. A good login clears the user
name's count. Counts live in the server process: a restart clears them.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable


class LoginThrottle:
    def __init__(
        self, attempts: int, window_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.attempts, self.window_s, self.clock = attempts, window_s, clock
        self._failures: dict[str, deque[float]] = defaultdict(deque)
        self._locked_until: dict[str, float] = {}
        self._lock = threading.Lock()

    def locked_for(self, *keys: str) -> float:
        """Seconds until every one of ``keys`` may try again (0 when none is locked)."""
        now = self.clock()
        wait = 0.0
        with self._lock:
            for key in keys:
                until = self._locked_until.get(key)
                if until is None:
                    continue
                if until <= now:
                    del self._locked_until[key]
                else:
                    wait = max(wait, until - now)
        return wait

    def failed(self, *keys: str) -> None:
        now = self.clock()
        with self._lock:
            for key in keys:
                failures = self._failures[key]
                while failures and now - failures[0] >= self.window_s:
                    failures.popleft()
                failures.append(now)
                if len(failures) >= self.attempts:
                    self._locked_until[key] = now + self.window_s
                    del self._failures[key]

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)
            self._locked_until.pop(key, None)
