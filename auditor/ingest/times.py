"""Times in the input files: ISO 8601, local to the store's zone unless they give an offset."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo


def parse_local_time(text: str, zone: ZoneInfo) -> datetime:
    """Parse an ISO 8601 time to aware UTC; a time without offset is local time in ``zone``.

    Local times at a daylight-saving change are read as :mod:`zoneinfo` reads them with
    ``fold=0``: a repeated time (clocks go back) is its first occurrence, and a skipped time
    (clocks go forward) is read with the offset in force before the change, as if the clock had
    not yet been put forward. Raises ``ValueError`` with a reason fit for a reject.
    """
    try:
        date.fromisoformat(text)
    except ValueError:
        pass
    else:
        raise ValueError(f"a date without a time of day: {text!r}")
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not an ISO 8601 time: {text[:40]!r}") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone, fold=0)
    try:
        return value.astimezone(UTC)
    except (OverflowError, ValueError):
        raise ValueError(f"time out of range: {text!r}") from None


def localize(value: datetime, zone: ZoneInfo) -> datetime:
    """A naive local wall time in ``zone`` as aware UTC, by the rule of :func:`parse_local_time`."""
    return value.replace(tzinfo=zone, fold=0).astimezone(UTC)
